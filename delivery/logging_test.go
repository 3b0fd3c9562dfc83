package delivery

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the worker's writes and the
// test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// A webhook that keeps failing logs its first attempts, then one line per
// interval with the count of the lines left out.
func TestFailureLogIsRateLimited(t *testing.T) {
	var logs lockedBuffer
	h := newHarness(t, Config{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Policy: RetryPolicy{Schedule: []time.Duration{time.Second}, MaxDelay: time.Second},
	})
	recv := newRecorder(t, status(http.StatusInternalServerError))
	hook := h.createWebhook("task.created", recv.URL)
	h.publish("task.created", map[string]int{"n": 1})

	// Ten failures one second apart, within one minute.
	for i := 1; i < 10; i++ {
		h.waitTimer()
		h.clock().Advance(time.Second)
	}
	recv.waitFor(t, 10)
	h.waitState(hook.UUID, func(st State) bool { return st.Attempts == 10 })

	if got := logs.lines(`"msg":"delivery attempt failed"`); len(got) != 3 {
		t.Fatalf("logged %d failed attempts in the first minute, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}

	// A minute later the next failure is logged with the count left out.
	h.waitTimer()
	h.clock().Advance(time.Minute)
	recv.waitFor(t, 11)
	h.waitState(hook.UUID, func(st State) bool { return st.Attempts == 11 })
	// The worker stores the attempt before it logs it, so the line may
	// follow the state by a moment.
	got := logs.lines(`"msg":"delivery attempt failed"`)
	for deadline := time.Now().Add(5 * time.Second); len(got) < 4 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		got = logs.lines(`"msg":"delivery attempt failed"`)
	}
	if len(got) != 4 || !strings.Contains(got[3], `"failures_not_logged":7`) {
		t.Errorf("lines after a minute = %d, last %q; want 4, the last with failures_not_logged 7", len(got), got[len(got)-1])
	}
	for _, line := range got {
		for _, key := range []string{`"webhook_id":"` + hook.UUID + `"`, `"seq":`, `"attempt":`, `"status":500`, `"error":`} {
			if !strings.Contains(line, key) {
				t.Errorf("log line %s lacks %s", line, key)
			}
		}
	}
}
