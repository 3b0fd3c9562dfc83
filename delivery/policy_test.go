package delivery

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestPolicyDelay(t *testing.T) {
	p := RetryPolicy{
		Schedule: []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second},
		MaxDelay: time.Minute,
		Jitter:   0.2,
	}
	noJitter := func() float64 { return 0 }
	fullJitter := func() float64 { return 0.999999 }

	tests := []struct {
		failures int
		random   func() float64
		want     time.Duration
	}{
		{1, noJitter, 3 * time.Second},
		{2, fullJitter, 5 * time.Second}, // the schedule is used as it is
		{3, noJitter, 10 * time.Second},
		{4, noJitter, 20 * time.Second},
		{5, noJitter, 40 * time.Second},
		{6, noJitter, time.Minute},
		{60, noJitter, time.Minute},
		{4, fullJitter, 16 * time.Second},
		{60, fullJitter, 48 * time.Second},
	}
	for _, tt := range tests {
		got := p.Delay(tt.failures, tt.random).Round(time.Millisecond)
		if got != tt.want {
			t.Errorf("Delay(%d) = %s, want %s", tt.failures, got, tt.want)
		}
	}

	capped := RetryPolicy{Schedule: p.Schedule, MaxDelay: 4 * time.Second}
	if got := capped.Delay(3, noJitter); got != 4*time.Second {
		t.Errorf("Delay(3) with a 4s cap = %s, want 4s: the cap applies to the schedule too", got)
	}

	for range 1000 {
		if d := p.Delay(30, nil); d > p.MaxDelay || d < 48*time.Second {
			t.Fatalf("Delay(30) = %s, want within [48s, 1m]", d)
		}
	}
}

func TestPolicyExhausted(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := RetryPolicy{MaxAttempts: 5, MaxAge: time.Hour}

	tests := []struct {
		name     string
		attempts int
		now      time.Time
		want     bool
	}{
		{"fresh", 1, first, false},
		{"attempts left", 4, first.Add(59 * time.Minute), false},
		{"max attempts", 5, first, true},
		{"max age", 2, first.Add(time.Hour), true},
	}
	for _, tt := range tests {
		if got := p.Exhausted(tt.attempts, first, tt.now); got != tt.want {
			t.Errorf("%s: Exhausted = %v, want %v", tt.name, got, tt.want)
		}
	}
	if (RetryPolicy{}).Exhausted(1000, first, first.Add(1000*time.Hour)) {
		t.Error("a policy without limits gave up")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"-3", 0},
		{"0", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.value, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.value, got, tt.want)
		}
	}

	p := RetryPolicy{MaxDelay: time.Hour}
	if got := p.RetryAfterDelay(time.Millisecond); got != time.Second {
		t.Errorf("RetryAfterDelay(1ms) = %s, want 1s", got)
	}
	if got := p.RetryAfterDelay(48 * time.Hour); got != time.Hour {
		t.Errorf("RetryAfterDelay(48h) = %s, want the 1h cap", got)
	}
}

func TestAddressPolicyCheck(t *testing.T) {
	tests := []struct {
		addr                 string
		allowed, allowedPriv bool // by the default policy, and with BlockPrivate
	}{
		// Always refused.
		{"169.254.169.254", false, false},
		{"169.254.0.1", false, false},
		{"fe80::1", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"::ffff:0.0.0.0", false, false},
		{"224.0.0.1", false, false},
		{"239.255.255.250", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		// Loopback and private: allowed unless BlockPrivate.
		{"127.0.0.1", true, false},
		{"127.8.9.10", true, false},
		{"::1", true, false},
		{"::ffff:127.0.0.1", true, false},
		{"10.1.2.3", true, false},
		{"172.16.0.1", true, false},
		{"192.168.1.1", true, false},
		{"::ffff:192.168.1.1", true, false},
		{"100.64.0.1", true, false},
		{"fc00::1", true, false},
		{"fd12:3456::1", true, false},
		// Public: always allowed.
		{"203.0.113.7", true, true},
		{"2001:db8::1", true, true},
		{"::ffff:203.0.113.7", true, true},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.addr)
		for _, policy := range []AddressPolicy{{}, {BlockPrivate: true}} {
			want := tt.allowed
			if policy.BlockPrivate {
				want = tt.allowedPriv
			}
			err := policy.Check(ip)
			if got := err == nil; got != want {
				t.Errorf("%+v.Check(%s) = %v, want allowed %v", policy, tt.addr, err, want)
			}
			if err != nil && !errors.Is(err, ErrRefusedAddress) {
				t.Errorf("%+v.Check(%s) = %v, want it to wrap ErrRefusedAddress", policy, tt.addr, err)
			}
		}
	}
}
