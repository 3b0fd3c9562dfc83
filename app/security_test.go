package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooklog/hooklog/internal/diskspace"
	"github.com/hooklog/hooklog/signature"
)

// createWithSecret creates a webhook and returns it with its secret.
func (s *server) createWithSecret(body map[string]any) (webhookJSON, string) {
	s.t.Helper()
	resp, answer := s.do(http.MethodPost, "/api/v1/webhooks", body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("create webhook: %d %s", resp.StatusCode, answer)
	}
	var out struct {
		webhookJSON
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		s.t.Fatalf("decode %s: %v", answer, err)
	}
	return out.webhookJSON, out.Secret
}

func verifies(t *testing.T, secret string, d request) bool {
	t.Helper()
	key, err := signature.ParseSecret(secret)
	if err != nil {
		t.Fatalf("parse secret: %v", err)
	}
	ts, err := strconv.ParseInt(d.Timestamp, 10, 64)
	if err != nil {
		t.Fatalf("webhook-timestamp %q: %v", d.Timestamp, err)
	}
	return signature.Verify(key, d.Header.Get("webhook-signature"), d.WebhookID, ts, d.Body)
}

// Deliveries are signed with the webhook's secret; the secret is shown at
// creation and by its endpoint, and nowhere else.
func TestSignedDeliveryAndSecretHiding(t *testing.T) {
	var logs lockedBuffer
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	watcher := newReceiver(t, nil)
	s.createWebhook("webhook.created", watcher.URL)

	recv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError // so the log has a failed attempt
		}
		return http.StatusOK
	})
	const credential = "Bearer receiver-credential-42"
	hook, secret := s.createWithSecret(map[string]any{
		"event": "task.created", "url": recv.URL, "headers": map[string]string{"Authorization": credential, "X-Tenant": "t-1"},
	})
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret = %q, want whsec_…", secret)
	}
	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	got := recv.waitFor(t, 2, 10*time.Second)

	for _, d := range got {
		if !verifies(t, secret, d) {
			t.Errorf("delivery signature %q does not verify", d.Header.Get("webhook-signature"))
		}
		if d.Header.Get("Authorization") != credential || d.Header.Get("X-Tenant") != "t-1" {
			t.Errorf("custom headers not sent: %v", d.Header)
		}
	}

	resp, body := s.do(http.MethodGet, "/api/v1/webhooks/"+hook.UUID+"/secret", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), secret) {
		t.Errorf("secret endpoint = %d %s", resp.StatusCode, body)
	}

	// The secret and the header value appear nowhere else.
	watcher.waitFor(t, 2, 10*time.Second)
	var shown []string
	for _, path := range []string{"/api/v1/webhooks", "/api/v1/webhooks/" + hook.UUID, "/api/v1/webhooks/executions",
		"/api/v1/events", "/api/v1/webhooks/" + hook.UUID + "/status"} {
		_, body := s.do(http.MethodGet, path, nil)
		shown = append(shown, path+": "+string(body))
	}
	for _, d := range watcher.got() {
		shown = append(shown, "webhook.created delivery: "+string(d.Body))
	}
	shown = append(shown, "log: "+logs.String())
	for _, text := range shown {
		for _, hidden := range []string{secret, strings.TrimPrefix(secret, "whsec_"), "receiver-credential-42"} {
			if strings.Contains(text, hidden) {
				t.Errorf("%q shows %q", text[:min(len(text), 200)], hidden)
			}
		}
	}
	_, body = s.do(http.MethodGet, "/api/v1/webhooks/"+hook.UUID, nil)
	if !strings.Contains(string(body), `"Authorization":"[redacted]"`) {
		t.Errorf("webhook JSON = %s, want the header name with a redacted value", body)
	}
}

// A rotation signs with both secrets for the overlap, so receivers switch
// without downtime.
func TestSecretRotation(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook, oldSecret := s.createWithSecret(map[string]any{"event": "task.created", "url": recv.URL})

	answer := s.post("/api/v1/webhooks/"+hook.UUID+"/secret/rotate", nil, http.StatusOK)
	var rotated struct {
		Secret            string     `json:"secret"`
		Previous          string     `json:"previous"`
		PreviousExpiresAt *time.Time `json:"previousExpiresAt"`
	}
	if err := json.Unmarshal(answer, &rotated); err != nil {
		t.Fatalf("decode %s: %v", answer, err)
	}
	if rotated.Secret == oldSecret || rotated.Previous != oldSecret || rotated.PreviousExpiresAt == nil ||
		rotated.PreviousExpiresAt.Sub(time.Now()) < 23*time.Hour {
		t.Fatalf("rotation = %s, want a new secret and the old one for 24 h", answer)
	}

	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	d := recv.waitFor(t, 1, 10*time.Second)[0]
	if n := len(strings.Fields(d.Header.Get("webhook-signature"))); n != 2 {
		t.Errorf("webhook-signature %q has %d signatures, want 2", d.Header.Get("webhook-signature"), n)
	}
	if !verifies(t, rotated.Secret, d) || !verifies(t, oldSecret, d) {
		t.Error("the delivery does not verify with both the new and the old secret")
	}
}

func TestClientSuppliedSecret(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	const mine = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	_, secret := s.createWithSecret(map[string]any{"event": "task.created", "url": recv.URL, "secret": mine})
	if secret != mine {
		t.Errorf("secret = %q, want the supplied one", secret)
	}
	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	if d := recv.waitFor(t, 1, 10*time.Second)[0]; !verifies(t, mine, d) {
		t.Error("delivery does not verify with the supplied secret")
	}

	for _, bad := range []string{"not-a-secret", "whsec_short", "whsec_" + strings.Repeat("A", 200)} {
		resp, body := s.do(http.MethodPost, "/api/v1/webhooks", map[string]any{"event": "task.created", "url": recv.URL, "secret": bad})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "secret") || strings.Contains(string(body), bad) {
			t.Errorf("secret %q = %d %s, want 400 naming the field but not the value", bad, resp.StatusCode, body)
		}
	}
}

func TestAPITokens(t *testing.T) {
	s := startWith(t, t.TempDir(), func(cfg *Config) { cfg.API.Tokens = []string{"first-token", "second-token"} })

	check := func(method, path, token string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(`{"event":"task.created","data":{}}`))
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s with %q = %d, want %d", method, path, token, resp.StatusCode, want)
		}
		if want == http.StatusUnauthorized && (!strings.Contains(body.String(), `"err":"unauthorized"`) || resp.Header.Get("WWW-Authenticate") == "") {
			t.Errorf("401 answer = %s, want FFmate's error JSON and WWW-Authenticate", body.String())
		}
	}

	check(http.MethodGet, "/api/v1/webhooks", "", http.StatusUnauthorized)
	check(http.MethodPost, "/api/v1/events", "", http.StatusUnauthorized)
	check(http.MethodGet, "/api/v1/webhooks", "Bearer wrong", http.StatusUnauthorized)
	check(http.MethodGet, "/api/v1/webhooks", "Bearer first-token-and-more", http.StatusUnauthorized)
	check(http.MethodGet, "/api/v1/webhooks", "Basic first-token", http.StatusUnauthorized)
	check(http.MethodGet, "/api/v1/no-such-route", "", http.StatusUnauthorized)
	check(http.MethodGet, "/api/v1/webhooks", "Bearer first-token", http.StatusOK)
	check(http.MethodPost, "/api/v1/events", "bearer second-token", http.StatusCreated)
	check(http.MethodGet, "/health", "", http.StatusOK)
	check(http.MethodGet, "/metrics", "", http.StatusOK)

	_, body := s.do(http.MethodGet, "/api/v1/events", nil)
	if strings.Count(string(body), `"seq"`) != 0 {
		t.Errorf("an unauthorized request changed the log: %s", body)
	}

	p := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.API.Tokens = []string{"t"}
		cfg.API.ProtectObservability = true
	})
	for _, path := range []string{"/health", "/metrics"} {
		resp, _ := http.Get(p.url + path)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("protected %s = %d, want 401", path, resp.StatusCode)
		}
	}
}

func TestInputLimits(t *testing.T) {
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.MaxBodyBytes = 4096
		cfg.MaxEventBytes = 100
		cfg.API.MaxJSONDepth = 5
		cfg.WebhookLimits.MaxHeaders = 2
	})

	tests := []struct {
		name, path string
		body       string
		status     int
		mentions   string
	}{
		{"body", "/api/v1/events", `{"event":"task.created","data":"` + strings.Repeat("x", 5000) + `"}`, 413, "4096 bytes"},
		{"event", "/api/v1/events", `{"event":"task.created","data":"` + strings.Repeat("x", 200) + `"}`, 413, "limit 100"},
		{"depth", "/api/v1/events", `{"event":"task.created","data":[[[[[[1]]]]]]}`, 400, "at most 5"},
		{"headers", "/api/v1/webhooks", `{"event":"task.created","url":"http://h/","headers":{"a":"1","b":"2","c":"3"}}`, 400, "at most 2"},
		{"header name", "/api/v1/webhooks", `{"event":"task.created","url":"http://h/","headers":{"a b":"1"}}`, 400, "header name"},
		{"header value", "/api/v1/webhooks", `{"event":"task.created","url":"http://h/","headers":{"a":"1\r\nInjected: x"}}`, 400, "control characters"},
		{"reserved header", "/api/v1/webhooks", `{"event":"task.created","url":"http://h/","headers":{"webhook-signature":"x"}}`, 400, "hooklog sets this header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(http.MethodPost, tt.path, tt.body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.mentions) || !strings.Contains(string(body), `"err":`) {
				t.Errorf("status %d body %s, want %d mentioning %q", resp.StatusCode, body, tt.status, tt.mentions)
			}
		})
	}
	if _, body := s.do(http.MethodGet, "/api/v1/events", nil); strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("rejected requests changed the log: %s", body)
	}
}

// Concurrent publishes with one Idempotency-Key append once; all get the
// same record.
func TestIdempotentPublish(t *testing.T) {
	s := start(t, t.TempDir())
	body := `{"event":"task.created","data":{"uuid":"6e0dc9c1"}}`

	publish := func(key, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("publish: %v", err)
			return nil, nil
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	replays := 0
	for range 16 {
		wg.Go(func() {
			resp, answer := publish("task-6e0dc9c1-created", body)
			if resp == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("publish = %d %s", resp.StatusCode, answer)
			}
			answers[string(answer)]++
			if resp.Header.Get("Idempotent-Replayed") == "true" {
				replays++
			}
		})
	}
	wg.Wait()

	if len(answers) != 1 || replays != 15 {
		t.Errorf("%d distinct answers and %d replays, want 1 and 15: %v", len(answers), replays, answers)
	}
	_, events := s.do(http.MethodGet, "/api/v1/events", nil)
	if n := strings.Count(string(events), `"seq"`); n != 1 {
		t.Errorf("log has %d events, want 1", n)
	}

	resp, answer := publish("task-6e0dc9c1-created", `{"event":"task.created","data":{"uuid":"other"}}`)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(answer), "task-6e0dc9c1-created") {
		t.Errorf("same key, other body = %d %s, want 409", resp.StatusCode, answer)
	}
	for _, key := range []string{strings.Repeat("k", 300), "", "  "} {
		resp, answer = publish(key, body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("key %q = %d %s, want 400", key, resp.StatusCode, answer)
		}
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPublishRejectsInvalidUTF8(t *testing.T) {
	s := start(t, t.TempDir())
	resp, body := s.do(http.MethodPost, "/api/v1/events", []byte("{\"event\":\"task.created\",\"data\":\"\xff\xfe\"}"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "UTF-8") {
		t.Errorf("invalid UTF-8 = %d %s, want 400", resp.StatusCode, body)
	}
}

// A full disk fails the publish with 507 and appends nothing; the server
// keeps running and accepts events again once there is room.
func TestPublishOnFullDisk(t *testing.T) {
	var full atomic.Bool
	s := startWith(t, t.TempDir(), nil)
	s.app.log.SetSpaceCheck(func(int) error {
		if full.Load() {
			return fmt.Errorf("test disk: %w", diskspace.ErrFull)
		}
		return nil
	})

	full.Store(true)
	resp, body := s.do(http.MethodPost, "/api/v1/events", eventBody("task.created", map[string]int{"n": 1}))
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), "insufficient.storage") {
		t.Errorf("publish on a full disk = %d %s, want 507", resp.StatusCode, body)
	}
	if head := s.app.log.Head(); head != 0 {
		t.Errorf("head = %d, want 0", head)
	}

	full.Store(false)
	if rec := s.publish(eventBody("task.created", map[string]int{"n": 2})); rec.Seq != 1 {
		t.Errorf("seq after the disk has room = %d, want 1", rec.Seq)
	}
}

// A receiver's URL query may hold a token: errors and logs leave it out.
func TestURLQueryStaysOutOfLogs(t *testing.T) {
	var logs lockedBuffer
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()

	hook := s.createWebhook("task.created", "http://"+addr+"/hook?token=SECRET123")
	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Attempts >= 1 })

	if strings.Contains(logs.String(), "SECRET123") {
		t.Errorf("the log shows the URL's token:\n%s", logs.String())
	}
	if st := s.status(hook.UUID); strings.Contains(st.LastError, "SECRET123") || !strings.Contains(st.LastError, "redacted") {
		t.Errorf("last error = %q, want the query redacted", st.LastError)
	}
}

// A webhook that subscribes to webhook.updated gets the event of a change
// of its own URL at the new URL, every time.
func TestOwnURLChangeGoesToNewURL(t *testing.T) {
	s := start(t, t.TempDir())
	first := newReceiver(t, nil)
	second := newReceiver(t, nil)
	hook := s.createWebhook("webhook.updated", first.URL)

	for i := range 10 {
		to := second.URL
		if i%2 == 1 {
			to = first.URL
		}
		resp, body := s.do(http.MethodPut, "/api/v1/webhooks/"+hook.UUID, map[string]string{"event": "webhook.updated", "url": to})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("update: %d %s", resp.StatusCode, body)
		}
	}
	got := append(first.waitFor(t, 5, 10*time.Second), second.waitFor(t, 5, 10*time.Second)...)
	for _, d := range got {
		var change struct {
			Data webhookJSON `json:"data"`
		}
		json.Unmarshal(d.Body, &change)
		arrivedAtFirst := false
		for _, f := range first.got() {
			if f.Seq == d.Seq {
				arrivedAtFirst = true
			}
		}
		if wantFirst := change.Data.URL == first.URL; arrivedAtFirst != wantFirst {
			t.Errorf("seq %d changed the URL to %s but arrived at the other receiver", d.Seq, change.Data.URL)
		}
	}
}
