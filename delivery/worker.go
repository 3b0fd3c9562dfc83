package delivery

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// readAhead is how many matching records a worker reads from the log at once.
const readAhead = 64

// worker delivers the events of one webhook in log order, one request at a
// time. Its run goroutine owns state and buffer; other goroutines talk to it
// through hook, wake, stop and cancel.
type worker struct {
	m    *Manager
	id   string
	hook atomic.Pointer[projections.Webhook]

	wake   chan struct{}      // capacity 1: the webhook changed
	stop   chan struct{}      // closed: finish the attempt in flight, start no other
	cancel context.CancelFunc // aborts the attempt in flight
	done   chan struct{}      // closed when run returns

	state       State
	buffer      []eventlog.Record // read ahead, all after state.Cursor
	bufferEvent string            // the event name buffer was read for
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
		r, ok := w.next(ctx)
		if !ok {
			return
		}
		if !w.deliver(ctx, r) {
			return
		}
	}
}

// next returns the first record after the cursor that the webhook
// subscribes to, waiting for the log to grow when there is none. It returns
// false when the worker stops.
func (w *worker) next(ctx context.Context) (eventlog.Record, bool) {
	for {
		hook := w.hook.Load()
		if w.bufferEvent != hook.Event {
			w.buffer, w.bufferEvent = nil, hook.Event
		}
		if len(w.buffer) > 0 {
			r := w.buffer[0]
			w.buffer = w.buffer[1:]
			return r, true
		}

		head, grown := w.m.log.HeadChanged()
		records, err := w.m.log.Read(eventlog.Query{
			After: w.state.Cursor, Through: head, Limit: readAhead, Events: []string{hook.Event},
		})
		if err != nil {
			w.m.logger.Error("reading the log for delivery failed", "webhook_id", w.id, "seq", w.state.Cursor, "error", err)
			if !w.sleep(ctx, time.Second) {
				return eventlog.Record{}, false
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
		case <-w.stop:
			return eventlog.Record{}, false
		case <-ctx.Done():
			return eventlog.Record{}, false
		}
	}
}

// deliver sends r until the receiver acknowledges it and then moves the
// cursor past it. It returns false when the worker stops first; the stored
// state then resumes the same record with the same attempt count.
func (w *worker) deliver(ctx context.Context, r eventlog.Record) bool {
	if w.state.PendingSeq != r.Seq {
		w.state = State{Cursor: w.state.Cursor, PendingSeq: r.Seq}
	}

	body := deliveryBody(r)
	lastURL := ""
	for {
		if !w.state.NextAttempt.IsZero() {
			switch w.waitUntil(ctx, w.state.NextAttempt) {
			case waitStopped:
				return false
			case waitWoken:
				hook := w.hook.Load()
				if hook.Event == r.Event && hook.URL == lastURL {
					continue
				}
				// A new URL gets the pending event at once; a new event name
				// is handled below.
			}
		}

		hook := w.hook.Load()
		if hook.Event != r.Event {
			// The webhook now subscribes to another event: this one is no
			// longer owed, and the cursor stays where it is.
			w.state = State{Cursor: w.state.Cursor}
			w.save()
			return true
		}

		lastURL = hook.URL
		a := w.m.sender.send(ctx, hook.URL, r, body)
		if ctx.Err() != nil {
			// Aborted by shutdown or deletion: not the receiver's failure.
			return false
		}

		if a.OK() {
			w.state = State{Cursor: r.Seq}
			w.save()
			return true
		}

		w.state.Attempts++
		w.state.LastError = a.Describe()
		delay := w.m.cfg.Policy.Delay(w.state.Attempts, nil)
		w.state.NextAttempt = w.m.cfg.Now().Add(delay)
		w.save()
		w.m.logger.Warn("delivery attempt failed",
			"webhook_id", w.id, "seq", r.Seq, "event", r.Event, "attempt", w.state.Attempts,
			"status", a.Status, "error_class", a.Class, "error", a.Err, "retry_in", delay.Round(time.Millisecond).String())
	}
}

type waitResult int

const (
	waitDue waitResult = iota
	waitWoken
	waitStopped
)

// waitUntil waits for t, a change to the webhook or the worker's stop.
func (w *worker) waitUntil(ctx context.Context, t time.Time) waitResult {
	d := t.Sub(w.m.cfg.Now())
	if d <= 0 {
		return waitDue
	}

	timer := time.NewTimer(d)
	defer timer.Stop()

	select {
	case <-timer.C:
		return waitDue
	case <-w.wake:
		return waitWoken
	case <-w.stop:
		return waitStopped
	case <-ctx.Done():
		return waitStopped
	}
}

// sleep waits for d and reports false if the worker stops first.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()

	select {
	case <-timer.C:
		return true
	case <-w.stop:
		return false
	case <-ctx.Done():
		return false
	}
}

// save stores the state. A failed write is logged and delivery goes on: the
// worst outcome is that events after the stored cursor are sent again after
// a restart, which at-least-once delivery allows.
func (w *worker) save() {
	if err := saveState(w.m.db, w.id, w.state); err != nil {
		w.m.logger.Error("storing the delivery state failed", "webhook_id", w.id, "seq", w.state.Cursor, "error", err)
	}
}
