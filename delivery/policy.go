package delivery

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides how long to wait after a failed attempt and when to
// give up on an event and park it.
type RetryPolicy struct {
	// Schedule holds the first delays, used as they are: after the first
	// failure Schedule[0], after the second Schedule[1], and so on.
	Schedule []time.Duration
	// MaxDelay caps every delay: those of Schedule, those that follow it,
	// which double from its last entry, and the waits asked for by
	// Retry-After.
	MaxDelay time.Duration
	// Jitter shortens each doubling delay by a random part of up to this
	// fraction, so that retries of many webhooks spread out and no delay
	// exceeds MaxDelay.
	Jitter float64
	// MaxAttempts is the number of attempts after which an event is parked;
	// zero means no limit.
	MaxAttempts int
	// MaxAge is how long after its first attempt an event is parked if it
	// has still not been delivered; zero means no limit. It counts from the
	// first attempt, not from the event's time, so that replaying old
	// events gets the full retry period.
	MaxAge time.Duration
}

// DefaultRetryPolicy starts with FFmate's documented 3 s, 5 s and 10 s, then
// doubles up to one hour, and parks an event after 100 attempts or three days,
// whichever comes first. The hourly cap keeps the wait short after a receiver
// comes back; three days match the retry period of Svix and of the Standard
// Webhooks schedule.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Schedule:    []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second},
		MaxDelay:    time.Hour,
		Jitter:      0.2,
		MaxAttempts: 100,
		MaxAge:      72 * time.Hour,
	}
}

// Delay returns the wait after the given number of failed attempts (1 or
// more). random returns a value in [0, 1); nil means math/rand.
func (p RetryPolicy) Delay(failures int, random func() float64) time.Duration {
	if failures < 1 {
		failures = 1
	}
	if failures <= len(p.Schedule) {
		if p.MaxDelay > 0 {
			return min(p.Schedule[failures-1], p.MaxDelay)
		}
		return p.Schedule[failures-1]
	}

	delay := time.Second
	if len(p.Schedule) > 0 {
		delay = p.Schedule[len(p.Schedule)-1]
	}
	for i := len(p.Schedule); i < failures && (p.MaxDelay <= 0 || delay < p.MaxDelay); i++ {
		delay *= 2
	}
	if p.MaxDelay > 0 && delay > p.MaxDelay {
		delay = p.MaxDelay
	}

	if p.Jitter > 0 {
		if random == nil {
			random = rand.Float64
		}
		delay -= time.Duration(float64(delay) * p.Jitter * random())
	}
	return delay
}

// RetryAfterDelay bounds a wait asked for by a Retry-After header: at least
// one second and at most MaxDelay.
func (p RetryPolicy) RetryAfterDelay(d time.Duration) time.Duration {
	d = max(d, time.Second)
	if p.MaxDelay > 0 {
		d = min(d, p.MaxDelay)
	}
	return d
}

// Exhausted reports whether an event with the given number of failed
// attempts, first tried at first, is to be parked at now.
func (p RetryPolicy) Exhausted(attempts int, first, now time.Time) bool {
	if p.MaxAttempts > 0 && attempts >= p.MaxAttempts {
		return true
	}
	return p.MaxAge > 0 && !first.IsZero() && now.Sub(first) >= p.MaxAge
}
