package delivery

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides how long to wait after a failed attempt.
type RetryPolicy struct {
	// Schedule holds the first delays, used as they are: after the first
	// failure Schedule[0], after the second Schedule[1], and so on.
	Schedule []time.Duration
	// MaxDelay caps the delays that follow Schedule, which double from its
	// last entry.
	MaxDelay time.Duration
	// Jitter shortens each doubling delay by a random part of up to this
	// fraction, so that retries of many webhooks spread out and no delay
	// exceeds MaxDelay.
	Jitter float64
}

// DefaultRetryPolicy starts with FFmate's documented 3 s, 5 s and 10 s, then
// doubles up to one hour.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Schedule: []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second},
		MaxDelay: time.Hour,
		Jitter:   0.2,
	}
}

// Delay returns the wait after the given number of failed attempts (1 or
// more). random returns a value in [0, 1); nil means math/rand.
func (p RetryPolicy) Delay(failures int, random func() float64) time.Duration {
	if failures < 1 {
		failures = 1
	}
	if failures <= len(p.Schedule) {
		return p.Schedule[failures-1]
	}

	delay := time.Second
	if len(p.Schedule) > 0 {
		delay = p.Schedule[len(p.Schedule)-1]
	}
	for i := len(p.Schedule); i < failures && delay < p.MaxDelay; i++ {
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
