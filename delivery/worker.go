package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// Read-ahead of a worker: at most this many records, and no more records
// once their data reaches readAheadBytes, so a backlog of large events does
// not pile up in memory.
const (
	readAhead      = 64
	readAheadBytes = 1 << 20
)

// worker delivers the events of one webhook in log order, one request at a
// time. Its run goroutine owns state and buffer; other goroutines talk to it
// through hook, wake, commands, stop and cancel.
type worker struct {
	m    *Manager
	id   string
	hook atomic.Pointer[projections.Webhook]

	wake     chan struct{}      // capacity 1: the webhook changed
	commands chan command       // operator requests, handled between attempts
	stop     chan struct{}      // closed: finish the attempt in flight, start no other
	cancel   context.CancelFunc // aborts the attempt in flight
	done     chan struct{}      // closed when run returns

	state       State
	buffer      []eventlog.Record // read ahead, all after state.Cursor
	bufferEvent string            // the event name buffer was read for

	// Log rate limit of failed attempts: the time of the last line and the
	// failures not logged since.
	lastFailureLog    time.Time
	failuresNotLogged int
}

// update hands the worker a changed webhook.
func (w *worker) update(hook projections.Webhook) {
	w.hook.Store(&hook)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)

	for {
		if !w.waitDelivering(ctx) {
			return
		}

		if w.state.ParkedReplay {
			if !w.replayNextParked(ctx) {
				return
			}
			continue
		}

		r, ok := w.next(ctx)
		if !ok {
			return
		}
		if r == nil {
			continue // a command moved the cursor or the webhook stopped delivering
		}

		finished, ok := w.deliver(ctx, *r)
		if !ok {
			return
		}
		if !finished {
			// r stays pending, or the cursor moved: read again from it.
			w.buffer = nil
		}
	}
}

// waitDelivering waits while the webhook is paused or disabled, handling
// commands meanwhile. It returns false when the worker stops.
func (w *worker) waitDelivering(ctx context.Context) bool {
	for !w.hook.Load().Delivers() {
		select {
		case <-w.wake:
		case cmd := <-w.commands:
			w.handle(ctx, cmd)
		case <-w.stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// next returns the first record after the cursor that the webhook
// subscribes to, waiting for the log to grow when there is none. It returns
// a nil record when the worker must look at its state again first, and
// false when the worker stops.
func (w *worker) next(ctx context.Context) (*eventlog.Record, bool) {
	for {
		hook := w.hook.Load()
		if !hook.Delivers() {
			return nil, true
		}
		if w.bufferEvent != hook.Event {
			w.buffer, w.bufferEvent = nil, hook.Event
		}
		if len(w.buffer) > 0 {
			r := w.buffer[0]
			w.buffer = w.buffer[1:]
			return &r, true
		}

		head, grown := w.m.log.EventAppended(hook.Event)
		records, err := w.m.log.Read(eventlog.Query{
			After: w.state.Cursor, Through: head, Limit: readAhead, MaxBytes: readAheadBytes, Events: []string{hook.Event},
		})
		if err != nil {
			w.m.logger.Error("reading the log for delivery failed", "webhook_id", w.id, "seq", w.state.Cursor, "error", err)
			if !w.sleep(ctx, time.Second) {
				return nil, false
			}
			continue
		}
		if len(records) > 0 {
			w.buffer = records
			continue
		}

		select {
		case <-grown:
		case <-w.wake:
		case cmd := <-w.commands:
			// The command may have moved the cursor or started a parked
			// replay, which the run loop looks at first.
			w.handle(ctx, cmd)
			return nil, true
		case <-w.stop:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// deliver sends r until the receiver acknowledges it or the retry policy
// parks it. Then the cursor moves past r and deliver returns finished true.
// It returns finished false when r stays pending because the webhook stopped
// delivering or a command moved the cursor, and ok false when the worker
// stops. The stored state then resumes r later with its attempt count.
func (w *worker) deliver(ctx context.Context, r eventlog.Record) (finished, ok bool) {
	if w.state.PendingSeq != r.Seq {
		w.state = w.state.startPending(r.Seq)
	}
	if r.Source == eventlog.SourceInternal {
		if !w.catchUpWithProjection(ctx, r.Seq) {
			return false, false
		}
	}

	body := deliveryBody(r)
	lastURL := ""
	for {
		if !w.state.NextAttempt.IsZero() {
			switch res, cmd := w.waitUntil(ctx, w.state.NextAttempt); res {
			case waitStopped:
				return false, false
			case waitCommand:
				if w.handle(ctx, cmd) {
					return false, true
				}
				continue
			case waitWoken:
				hook := w.hook.Load()
				if hook.Event == r.Event && hook.URL == lastURL && hook.Delivers() {
					continue
				}
				// A new URL gets the pending event at once; a new event name
				// and a webhook that stopped delivering are handled below.
			}
		}

		hook := w.hook.Load()
		if !hook.Delivers() {
			return false, true
		}
		if hook.Event != r.Event {
			// The webhook now subscribes to another event: this one is no
			// longer owed, and the cursor stays where it is.
			w.state = w.state.finish(w.state.Cursor)
			w.commit(change{})
			return true, true
		}

		lastURL = hook.URL
		t, ok := w.target(hook.URL)
		if !ok {
			return false, false // deleted: the manager is stopping the worker
		}
		a := w.m.sender.send(ctx, t, r, body)
		if ctx.Err() != nil {
			// Aborted by shutdown or deletion: not the receiver's failure.
			return false, false
		}

		if w.record(ctx, hook, r, body, a) {
			return true, true
		}
		if !w.hook.Load().Delivers() {
			return false, true
		}
	}
}

// catchUpWithProjection waits until the webhook projection has folded the
// log through seq and then takes the webhook from it. hooklog's own
// webhook.* events can change this very webhook, such as its URL, and the
// worker may read such an event before the manager hands it the change.
// It returns false when the worker stops.
func (w *worker) catchUpWithProjection(ctx context.Context, seq uint64) bool {
	for w.m.webhooks.Seq() < seq {
		changed := w.m.webhooks.Changed()
		if w.m.webhooks.Seq() >= seq {
			break
		}
		timer := time.NewTimer(10 * time.Millisecond)
		select {
		case <-changed:
		case <-timer.C:
		case <-w.stop:
			timer.Stop()
			return false
		case <-ctx.Done():
			timer.Stop()
			return false
		}
		timer.Stop()
	}

	if hook, err := w.m.webhooks.Get(w.id); err == nil {
		w.hook.Store(&hook)
	}
	return true
}

// record stores the outcome of an attempt at r with the new state, in one
// commit, and reports whether r is finished: delivered or parked.
func (w *worker) record(ctx context.Context, hook *projections.Webhook, r eventlog.Record, body []byte, a Attempt) bool {
	now := w.m.clock.Now()
	trigger := TriggerScheduled
	if r.Seq <= w.state.ReplayUntil {
		trigger = TriggerReplay
	}
	attempt := newAttemptRecord(w.id, hook.URL, r, body, a, w.state.Attempts+1, trigger)
	w.m.metrics.observe(a, r, trigger, now)

	if a.OK() {
		w.state = w.state.finish(r.Seq)
		w.commit(change{attempt: &attempt})
		return true
	}

	if w.state.FirstAttempt.IsZero() {
		w.state.FirstAttempt = a.Start
	}
	w.state.Attempts++
	w.state.LastStatus = a.Status
	w.state.LastError = a.Describe()
	w.state.NextAttempt = time.Time{}
	log := w.m.logger.With("webhook_id", w.id, "seq", r.Seq, "event", r.Event, "attempt", w.state.Attempts,
		"status", a.Status, "error_class", a.Class, "error", a.Err)

	if a.Status == http.StatusGone {
		w.commit(change{attempt: &attempt})
		w.disable(ctx, "the receiver answered 410 Gone")
		log.Warn("delivery attempt failed with 410 Gone; the webhook is disabled until it is updated")
		return false
	}

	if w.m.cfg.Policy.Exhausted(w.state.Attempts, w.state.FirstAttempt, now) {
		parked := w.park(r, now)
		w.state = w.state.finish(r.Seq)
		w.commit(change{attempt: &attempt, park: &parked})
		w.m.metrics.parked.Inc()
		log.Warn("delivery attempt failed; retries exhausted, the event is parked", "reason", parked.Reason)
		return true
	}

	delay := w.m.cfg.Policy.Delay(w.state.Attempts, nil)
	if a.RetryAfter > 0 {
		delay = w.m.cfg.Policy.RetryAfterDelay(a.RetryAfter)
	}
	w.state.NextAttempt = now.Add(delay)
	w.commit(change{attempt: &attempt})
	w.logFailure(log, now, "retry_in", delay.Round(time.Millisecond).String())
	return false
}

// failuresLoggedInFull is how many failed attempts at one event are all
// logged before the rate limit applies.
const failuresLoggedInFull = 3

// logFailure logs a failed attempt that will be retried. A webhook that
// keeps failing logs its first attempts at an event, then one line per
// FailureLogInterval with the number of failures left out. Metrics and the
// attempt log still count every attempt.
func (w *worker) logFailure(log *slog.Logger, now time.Time, args ...any) {
	if w.state.Attempts > failuresLoggedInFull && now.Sub(w.lastFailureLog) < w.m.cfg.FailureLogInterval {
		w.failuresNotLogged++
		return
	}

	if w.failuresNotLogged > 0 {
		args = append(args, "failures_not_logged", w.failuresNotLogged)
	}
	log.Warn("delivery attempt failed", args...)
	w.lastFailureLog, w.failuresNotLogged = now, 0
}

// target returns where the next attempt goes, with the webhook's current
// secrets and header values. It returns false when the webhook has been
// deleted, so nothing may be sent.
func (w *worker) target(url string) (target, bool) {
	creds, err := w.m.webhooks.Credentials(w.id)
	if err != nil {
		return target{}, false
	}
	return target{url: url, keys: creds.Keys(w.m.clock.Now()), headers: creds.Headers}, true
}

// park returns the dead-letter record of r, given up at now.
func (w *worker) park(r eventlog.Record, now time.Time) Parked {
	reason := fmt.Sprintf("max_attempts: %d failed attempts", w.state.Attempts)
	if p := w.m.cfg.Policy; p.MaxAttempts <= 0 || w.state.Attempts < p.MaxAttempts {
		reason = fmt.Sprintf("max_age: still failing %s after the first attempt", now.Sub(w.state.FirstAttempt).Round(time.Second))
	}
	return Parked{
		WebhookID:      w.id,
		Seq:            r.Seq,
		EventID:        r.ID.String(),
		Event:          r.Event,
		Reason:         reason,
		Attempts:       w.state.Attempts,
		LastStatus:     w.state.LastStatus,
		LastError:      w.state.LastError,
		FirstAttemptAt: w.state.FirstAttempt,
		LastAttemptAt:  now,
		ParkedAt:       now,
	}
}

// disable marks the webhook disabled in the log. The worker keeps the
// disabled webhook at once, so it makes no further attempt while the change
// travels through the projection.
func (w *worker) disable(ctx context.Context, reason string) {
	hook, err := w.m.webhooks.Disable(ctx, w.id, reason)
	if err != nil {
		w.m.logger.Error("disabling the webhook failed", "webhook_id", w.id, "error", err)
		return
	}
	w.hook.Store(&hook)
}

func newAttemptRecord(webhookID, url string, r eventlog.Record, body []byte, a Attempt, number int, trigger string) AttemptRecord {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}

	rec := AttemptRecord{
		UUID:  id.String(),
		Event: r.Event,
		URL:   url,
		// The body is not stored: it follows from the event in the log, and
		// Manager.Attempts rebuilds it.
		Request:    AttemptRequest{Headers: a.RequestHeader},
		CreatedAt:  a.Start.UTC(),
		UpdatedAt:  a.Start.Add(a.Duration).UTC(),
		WebhookID:  webhookID,
		Seq:        r.Seq,
		EventID:    r.ID.String(),
		Attempt:    number,
		Trigger:    trigger,
		Delivered:  a.OK(),
		ErrorClass: a.Class,
		DurationMs: float64(a.Duration.Microseconds()) / 1000,
	}
	if a.Err != nil {
		rec.Error = a.Err.Error()
	}
	if a.ResponseHeader != nil {
		rec.Response = &AttemptResponse{
			Status:        a.Status,
			Headers:       a.ResponseHeader,
			Body:          string(a.ResponseBody),
			BodyTruncated: a.ResponseCut,
		}
	}
	return rec
}

type waitResult int

const (
	waitDue waitResult = iota
	waitWoken
	waitCommand
	waitStopped
)

// waitUntil waits for t, a change to the webhook, a command or the worker's
// stop. With waitCommand it returns the command, which the caller handles.
func (w *worker) waitUntil(ctx context.Context, t time.Time) (waitResult, command) {
	d := t.Sub(w.m.clock.Now())
	if d <= 0 {
		return waitDue, command{}
	}

	fired, stop := w.m.clock.NewTimer(d)
	defer stop()

	select {
	case <-fired:
		return waitDue, command{}
	case <-w.wake:
		return waitWoken, command{}
	case cmd := <-w.commands:
		return waitCommand, cmd
	case <-w.stop:
		return waitStopped, command{}
	case <-ctx.Done():
		return waitStopped, command{}
	}
}

// sleep waits for d and reports false if the worker stops first. Commands
// that arrive meanwhile are handled.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	until := w.m.clock.Now().Add(d)
	for {
		res, cmd := w.waitUntil(ctx, until)
		switch res {
		case waitStopped:
			return false
		case waitCommand:
			w.handle(ctx, cmd)
		case waitDue:
			return true
		}
	}
}

// commit stores the worker's state with the rest of c in one commit. A
// failed write is logged and delivery goes on: the worst outcome is that
// events after the stored cursor are sent again after a restart, which
// at-least-once delivery allows.
func (w *worker) commit(c change) {
	c.state = &w.state
	if err := w.m.store.commit(w.id, c); err != nil {
		w.m.logger.Error("storing the delivery state failed", "webhook_id", w.id, "seq", w.state.Cursor, "error", err)
	}
}
