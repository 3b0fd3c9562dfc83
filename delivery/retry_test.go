package delivery

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hooklog/hooklog/projections"
)

func TestRetryThenSuccess(t *testing.T) {
	h := newHarness(t, Config{})
	recv := newRecorder(t, func(n int, _ http.ResponseWriter) (int, string) {
		if n == 1 {
			return http.StatusInternalServerError, ""
		}
		return http.StatusOK, ""
	})
	hook := h.createWebhook("task.created", recv.URL)
	rec := h.publish("task.created", map[string]int{"n": 1})

	recv.waitFor(t, 1)
	h.waitTimer()
	st := h.state(hook.UUID)
	if st.Attempts != 1 || st.PendingSeq != rec.Seq || !st.NextAttempt.Equal(testStart.Add(3*time.Second)) {
		t.Fatalf("state after the 500 = %+v, want 1 attempt and the next one at +3s", st)
	}

	h.clock().Advance(3 * time.Second)
	hits := recv.waitFor(t, 2)
	if !bytes.Equal(hits[0].Body, hits[1].Body) || hits[0].Header.Get("webhook-id") != hits[1].Header.Get("webhook-id") {
		t.Errorf("retry differs from the first attempt: %s vs %s", hits[0].Body, hits[1].Body)
	}
	h.waitState(hook.UUID, func(st State) bool { return st.Cursor == rec.Seq && st.Attempts == 0 })

	attempts := h.attempts(hook.UUID)
	if len(attempts) != 2 {
		t.Fatalf("attempt log has %d records, want 2", len(attempts))
	}
	first, second := attempts[0], attempts[1]
	if first.Attempt != 1 || first.Delivered || first.Response == nil || first.Response.Status != 500 || first.ErrorClass != ClassStatus {
		t.Errorf("first attempt = %+v, want attempt 1 failed with 500", first)
	}
	if second.Attempt != 2 || !second.Delivered || second.Trigger != TriggerScheduled || second.Seq != rec.Seq {
		t.Errorf("second attempt = %+v, want attempt 2 delivered", second)
	}
	if second.Request.Body != string(hits[1].Body) || second.Request.Headers.Get("webhook-id") != rec.ID.String() {
		t.Errorf("stored request = %+v, want the body and headers sent", second.Request)
	}
}

// The waits follow FFmate's 3 s, 5 s and 10 s, then double up to the cap.
func TestRetryScheduleWaits(t *testing.T) {
	h := newHarness(t, Config{})
	recv := newRecorder(t, status(http.StatusServiceUnavailable))
	hook := h.createWebhook("task.created", recv.URL)
	h.publish("task.created", map[string]int{"n": 1})

	wants := []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, want := range wants {
		recv.waitFor(t, i+1)
		h.waitTimer()
		st := h.waitState(hook.UUID, func(st State) bool { return st.Attempts == i+1 })
		if got := st.NextAttempt.Sub(h.clock().Now()); got != want {
			t.Errorf("wait after failure %d = %s, want %s", i+1, got, want)
		}
		h.clock().Advance(want)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"capped", "100000", time.Minute},
		{"at least a second", "0", 3 * time.Second}, // invalid: the schedule applies
		{"date", testStart.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"garbage", "soon", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			recv := newRecorder(t, func(_ int, w http.ResponseWriter) (int, string) {
				w.Header().Set("Retry-After", tt.value)
				return http.StatusTooManyRequests, ""
			})
			hook := h.createWebhook("task.created", recv.URL)
			h.publish("task.created", map[string]int{"n": 1})

			recv.waitFor(t, 1)
			h.waitTimer()
			st := h.state(hook.UUID)
			if got := st.NextAttempt.Sub(testStart); got != tt.want {
				t.Errorf("wait = %s, want %s", got, tt.want)
			}
		})
	}
}

// A receiver that answers 404 forever gets the event until the attempts run
// out; then the event is parked and the next one is sent.
func TestParkAfterMaxAttempts(t *testing.T) {
	h := newHarness(t, Config{Policy: RetryPolicy{MaxAttempts: 3}})
	recv := newRecorder(t, func(_ int, w http.ResponseWriter) (int, string) {
		return http.StatusNotFound, "no such hook"
	})
	hook := h.createWebhook("task.created", recv.URL)
	first := h.publish("task.created", map[string]int{"n": 1})
	second := h.publish("task.created", map[string]int{"n": 2})

	for _, wait := range []time.Duration{3 * time.Second, 5 * time.Second} {
		h.waitTimer()
		h.clock().Advance(wait)
	}
	hits := recv.waitFor(t, 4)
	if hits[2].Seq != first.Seq || hits[3].Seq != second.Seq {
		t.Fatalf("requests = %v, want 3 of seq %d, then seq %d", seqsOf(hits), first.Seq, second.Seq)
	}

	st := h.waitState(hook.UUID, func(st State) bool { return st.PendingSeq == second.Seq })
	if st.Cursor != first.Seq {
		t.Errorf("cursor = %d, want %d: a parked event is finished", st.Cursor, first.Seq)
	}

	parked, total, err := h.manager.Parked(hook.UUID, 0, 10)
	if err != nil || total != 1 || len(parked) != 1 {
		t.Fatalf("parked = %v, total %d, err %v; want one", parked, total, err)
	}
	p := parked[0]
	if p.Seq != first.Seq || p.EventID != first.ID.String() || p.Event != "task.created" || p.Attempts != 3 ||
		p.LastStatus != 404 || !strings.HasPrefix(p.Reason, "max_attempts") ||
		!p.FirstAttemptAt.Equal(testStart) || !p.ParkedAt.Equal(testStart.Add(8*time.Second)) {
		t.Errorf("parked record = %+v", p)
	}
}

func TestParkAfterMaxAge(t *testing.T) {
	h := newHarness(t, Config{Policy: RetryPolicy{MaxAge: 30 * time.Second}})
	recv := newRecorder(t, status(http.StatusBadGateway))
	hook := h.createWebhook("task.created", recv.URL)
	rec := h.publish("task.created", map[string]int{"n": 1})

	// Attempts at 0, 3, 8, 18 and 38 seconds: the last is past the age.
	for _, wait := range []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second} {
		h.waitTimer()
		h.clock().Advance(wait)
	}
	recv.waitFor(t, 5)
	h.waitState(hook.UUID, func(st State) bool { return st.Cursor == rec.Seq })

	parked, _, err := h.manager.Parked(hook.UUID, 0, 10)
	if err != nil || len(parked) != 1 || !strings.HasPrefix(parked[0].Reason, "max_age") || parked[0].Attempts != 5 {
		t.Fatalf("parked = %+v, err %v; want one parked for max_age after 5 attempts", parked, err)
	}
}

// 410 Gone disables the webhook. It delivers nothing until it is updated,
// and then the pending event goes out first.
func TestGoneDisablesWebhook(t *testing.T) {
	h := newHarness(t, Config{})
	recv := newRecorder(t, func(n int, _ http.ResponseWriter) (int, string) {
		if n == 1 {
			return http.StatusGone, ""
		}
		return http.StatusOK, ""
	})
	hook := h.createWebhook("task.created", recv.URL)
	first := h.publish("task.created", map[string]int{"n": 1})

	recv.waitFor(t, 1)
	disabled := waitWebhook(t, h, hook.UUID, func(w projections.Webhook) bool { return w.State == projections.StateDisabled })
	if !strings.Contains(disabled.DisabledReason, "410") {
		t.Errorf("disabled reason = %q, want it to name the 410", disabled.DisabledReason)
	}

	// Time passes and events arrive: nothing is sent while disabled.
	h.publish("task.created", map[string]int{"n": 2})
	h.clock().Advance(time.Hour)
	if n := len(recv.got()); n != 1 {
		t.Fatalf("receiver got %d requests while the webhook was disabled, want 1", n)
	}

	if _, err := h.webhooks.Update(context.Background(), hook.UUID, projections.WebhookInput{Event: "task.created", URL: recv.URL}); err != nil {
		t.Fatalf("update: %v", err)
	}
	hits := recv.waitFor(t, 3)
	if hits[1].Seq != first.Seq {
		t.Errorf("first request after the update has seq %d, want the pending %d", hits[1].Seq, first.Seq)
	}
}

func waitWebhook(t *testing.T, h *harness, id string, ok func(projections.Webhook) bool) projections.Webhook {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		hook, err := h.webhooks.Get(id)
		if err == nil && ok(hook) {
			return hook
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s = %+v (err %v), never reached the expected state", id, hook, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A restart in the middle of a retry schedule continues it: the attempt
// count and the next attempt's time survive.
func TestRestartContinuesSchedule(t *testing.T) {
	h := newHarness(t, Config{})
	recv := newRecorder(t, status(http.StatusInternalServerError))
	hook := h.createWebhook("task.created", recv.URL)
	h.publish("task.created", map[string]int{"n": 1})

	h.waitTimer()
	h.clock().Advance(3 * time.Second)
	recv.waitFor(t, 2)
	h.waitState(hook.UUID, func(st State) bool { return st.Attempts == 2 })

	h.restart()
	if st := h.state(hook.UUID); st.Attempts != 2 || !st.NextAttempt.Equal(testStart.Add(8*time.Second)) {
		t.Fatalf("state after restart = %+v, want 2 attempts and the next at +8s", st)
	}
	h.waitTimer()
	if n := len(recv.got()); n != 2 {
		t.Fatalf("receiver got %d requests right after the restart, want 2", n)
	}

	h.clock().Advance(5 * time.Second)
	recv.waitFor(t, 3)
	st := h.waitState(hook.UUID, func(st State) bool { return st.Attempts == 3 })
	if got := st.NextAttempt.Sub(h.clock().Now()); got != 10*time.Second {
		t.Errorf("wait after the third failure = %s, want 10s: the schedule continues", got)
	}
}

// A retry whose time passed while hooklog was down is made at start.
func TestRestartMakesOverdueRetry(t *testing.T) {
	h := newHarness(t, Config{})
	recv := newRecorder(t, status(http.StatusInternalServerError))
	hook := h.createWebhook("task.created", recv.URL)
	h.publish("task.created", map[string]int{"n": 1})
	h.waitTimer()
	h.waitState(hook.UUID, func(st State) bool { return st.Attempts == 1 })

	h.stop()
	h.clock().Advance(time.Hour)
	h.start()

	recv.waitFor(t, 2)
}

// Deleting a webhook with a retry pending stops it at once, and nothing of
// it is left after a restart.
func TestDeleteWithRetryPending(t *testing.T) {
	h := newHarness(t, Config{Policy: RetryPolicy{MaxAttempts: 2}})
	recv := newRecorder(t, status(http.StatusInternalServerError))
	hook := h.createWebhook("task.created", recv.URL)
	h.publish("task.created", map[string]int{"n": 1})
	h.publish("task.created", map[string]int{"n": 2})

	// Park the first event, then fail once at the second.
	h.waitTimer()
	h.clock().Advance(3 * time.Second)
	recv.waitFor(t, 3)
	h.waitTimer()
	if _, total, _ := h.manager.Parked(hook.UUID, 0, 10); total != 1 {
		t.Fatalf("parked total = %d, want 1", total)
	}

	if err := h.webhooks.Delete(context.Background(), hook.UUID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	h.waitFor(func() bool {
		_, found, _ := h.manager.StoredState(hook.UUID)
		return !found
	})
	h.clock().Advance(time.Hour)
	h.restart()
	h.clock().Advance(time.Hour)

	if n := len(recv.got()); n != 3 {
		t.Errorf("receiver got %d requests, want 3: none after the delete", n)
	}
	if _, found, _ := h.manager.StoredState(hook.UUID); found {
		t.Error("the deleted webhook's state survived a restart")
	}
	if _, total, _ := h.manager.Parked(hook.UUID, 0, 10); total != 0 {
		t.Errorf("the deleted webhook has %d parked events, want 0", total)
	}
}

func (h *harness) waitFor(ok func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			h.t.Fatal("condition never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Updating the URL sends the pending retry to the new URL at once.
func TestUpdateURLRetargetsRetry(t *testing.T) {
	h := newHarness(t, Config{})
	broken := newRecorder(t, status(http.StatusInternalServerError))
	fixed := newRecorder(t, nil)
	hook := h.createWebhook("task.created", broken.URL)
	rec := h.publish("task.created", map[string]int{"n": 1})
	h.waitTimer()

	if _, err := h.webhooks.Update(context.Background(), hook.UUID, projections.WebhookInput{Event: "task.created", URL: fixed.URL}); err != nil {
		t.Fatalf("update: %v", err)
	}
	hits := fixed.waitFor(t, 1)
	if hits[0].Seq != rec.Seq {
		t.Errorf("new URL got seq %d, want the pending %d", hits[0].Seq, rec.Seq)
	}
	h.waitState(hook.UUID, func(st State) bool { return st.Cursor == rec.Seq })
	if n := len(broken.got()); n != 1 {
		t.Errorf("old URL got %d requests, want 1", n)
	}
}

// Updating the event keeps the cursor: the new event's records after it are
// delivered, those before it are not.
func TestUpdateEventKeepsCursor(t *testing.T) {
	h := newHarness(t, Config{})
	recv := newRecorder(t, nil)
	hook := h.createWebhook("task.created", recv.URL)

	h.publish("task.updated", map[string]int{"n": 1}) // before the cursor
	created := h.publish("task.created", map[string]int{"n": 2})
	recv.waitFor(t, 1)
	h.waitState(hook.UUID, func(st State) bool { return st.Cursor == created.Seq })

	updated := h.publish("task.updated", map[string]int{"n": 3}) // after the cursor, before the change
	if _, err := h.webhooks.Update(context.Background(), hook.UUID, projections.WebhookInput{Event: "task.updated", URL: recv.URL}); err != nil {
		t.Fatalf("update: %v", err)
	}
	hits := recv.waitFor(t, 2)
	if hits[1].Seq != updated.Seq {
		t.Errorf("after the change got seq %d, want %d", hits[1].Seq, updated.Seq)
	}
}

func seqsOf(hits []hit) []uint64 {
	out := make([]uint64, len(hits))
	for i, h := range hits {
		out[i] = h.Seq
	}
	return out
}
