package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// ErrParkedNotFound is returned for a seq that is not parked for the webhook.
var ErrParkedNotFound = errors.New("parked event not found")

// commandKind names an operator request that a worker carries out between
// attempts, so that its webhook never has two requests in flight.
type commandKind int

const (
	cmdReplay       commandKind = iota // move the cursor to just before seq
	cmdRedeliver                       // send seq once with the manual trigger
	cmdReplayParked                    // seq: that parked event once, now; 0: all, in the background
	cmdDropParked                      // delete parked seq, or all with 0
)

type command struct {
	kind  commandKind
	seq   uint64
	reply chan commandResult // capacity 1
}

type commandResult struct {
	state   State
	attempt *AttemptRecord
	count   int
	err     error
}

// handle carries out cmd, sends its result and reports whether it moved the
// cursor, which makes the caller read the log again from it.
func (w *worker) handle(ctx context.Context, cmd command) bool {
	var res commandResult
	moved := false

	switch cmd.kind {
	case cmdReplay:
		before := w.state
		w.state = State{Cursor: cmd.seq - 1, ParkedReplay: before.ParkedReplay, ParkedReplayAfter: before.ParkedReplayAfter}
		if until := max(before.Cursor, before.ReplayUntil); until > w.state.Cursor {
			w.state.ReplayUntil = until
		}
		w.buffer = nil
		w.commit(change{})
		res.state, moved = w.state, true
		w.m.logger.Info("cursor moved for a replay", "webhook_id", w.id, "from_seq", cmd.seq, "previous_cursor", before.Cursor)

	case cmdRedeliver:
		res.attempt, res.err = w.redeliver(ctx, cmd.seq)

	case cmdReplayParked:
		if cmd.seq != 0 {
			res.attempt, res.err = w.replayParkedSeq(ctx, cmd.seq)
			break
		}
		res.count, res.err = w.m.store.countParked(w.id)
		if res.err == nil && res.count > 0 {
			w.state.ParkedReplay, w.state.ParkedReplayAfter = true, 0
			w.commit(change{})
			w.m.logger.Info("replaying parked events", "webhook_id", w.id, "count", res.count)
		}

	case cmdDropParked:
		res.count, res.err = w.m.store.dropParked(w.id, cmd.seq)
		if res.err == nil && cmd.seq != 0 && res.count == 0 {
			res.err = fmt.Errorf("webhook %s, seq %d: %w", w.id, cmd.seq, ErrParkedNotFound)
		}
	}

	cmd.reply <- res
	return moved
}

// redeliver sends the event at seq once more, recorded with the manual
// trigger. The cursor stays where it is.
func (w *worker) redeliver(ctx context.Context, seq uint64) (*AttemptRecord, error) {
	r, err := w.m.log.Get(seq)
	if err != nil {
		return nil, &projections.ValidationError{Field: "seq", Value: strconv.FormatUint(seq, 10),
			Allowed: fmt.Sprintf("the log holds seqs 1 to %d", w.m.log.Head())}
	}
	hook := w.hook.Load()
	if r.Event != hook.Event {
		return nil, &projections.ValidationError{Field: "seq", Value: strconv.FormatUint(seq, 10),
			Allowed: fmt.Sprintf("the event at this seq is %s, but the webhook subscribes to %s", r.Event, hook.Event)}
	}

	attempt, _ := w.sendOnce(ctx, hook.URL, r, 1, TriggerManual)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	w.commit(change{attempt: &attempt})
	return &attempt, nil
}

// replayParkedSeq sends one parked event once, now.
func (w *worker) replayParkedSeq(ctx context.Context, seq uint64) (*AttemptRecord, error) {
	p, found, err := w.m.store.nextParked(w.id, seq-1)
	if err != nil {
		return nil, err
	}
	if !found || p.Seq != seq {
		return nil, fmt.Errorf("webhook %s, seq %d: %w", w.id, seq, ErrParkedNotFound)
	}
	return w.replayParked(ctx, p, change{})
}

// replayNextParked replays the next parked event of a parked replay in
// progress, or ends the replay when none is left. It returns false when
// the worker stops.
func (w *worker) replayNextParked(ctx context.Context) bool {
	select {
	case cmd := <-w.commands:
		w.handle(ctx, cmd)
		return true
	case <-w.stop:
		return false
	default:
	}

	p, found, err := w.m.store.nextParked(w.id, w.state.ParkedReplayAfter)
	if err != nil {
		w.m.logger.Error("reading parked events failed", "webhook_id", w.id, "error", err)
		return w.sleep(ctx, time.Second)
	}
	if !found {
		w.state.ParkedReplay, w.state.ParkedReplayAfter = false, 0
		w.commit(change{})
		w.m.logger.Info("parked replay finished", "webhook_id", w.id)
		return true
	}

	w.state.ParkedReplayAfter = p.Seq
	_, err = w.replayParked(ctx, p, change{})
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		w.m.logger.Error("replaying a parked event failed", "webhook_id", w.id, "seq", p.Seq, "error", err)
	}
	return true
}

// replayParked sends a parked event once with the replay trigger. On
// success the parked record goes; on failure it stays with the attempt
// counted.
func (w *worker) replayParked(ctx context.Context, p Parked, c change) (*AttemptRecord, error) {
	r, err := w.m.log.Get(p.Seq)
	if err != nil {
		return nil, err
	}

	hook := w.hook.Load()
	attempt, a := w.sendOnce(ctx, hook.URL, r, p.Attempts+1, TriggerReplay)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	c.attempt = &attempt
	if a.OK() {
		c.unpark = p.Seq
		w.m.logger.Info("parked event delivered", "webhook_id", w.id, "seq", p.Seq)
	} else {
		p.Attempts++
		p.LastStatus, p.LastError, p.LastAttemptAt = a.Status, a.Describe(), a.Start
		c.park = &p
	}
	w.commit(c)
	return &attempt, nil
}

// sendOnce makes one attempt at r outside the retry schedule.
func (w *worker) sendOnce(ctx context.Context, url string, r eventlog.Record, number int, trigger string) (AttemptRecord, Attempt) {
	body := deliveryBody(r)
	t, ok := w.target(url)
	if !ok {
		a := Attempt{Start: w.m.clock.Now(), Class: ClassConnection, Err: projections.ErrWebhookNotFound}
		return newAttemptRecord(w.id, url, r, body, a, number, trigger), a
	}
	a := w.m.sender.send(ctx, t, r, body)
	if ctx.Err() == nil {
		w.m.metrics.observe(a, r, trigger, w.m.clock.Now())
	}
	return newAttemptRecord(w.id, url, r, body, a, number, trigger), a
}
