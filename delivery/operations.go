package delivery

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// Status is what an operator sees of a webhook's delivery.
type Status struct {
	WebhookID string `json:"webhookId"`
	Event     string `json:"event"`
	URL       string `json:"url"`
	// State is active, retrying (an attempt failed and another is
	// scheduled), paused or disabled.
	State  string `json:"state"`
	Cursor uint64 `json:"cursor"`
	Head   uint64 `json:"head"`
	// Lag counts the events after the cursor that the webhook subscribes to.
	Lag uint64 `json:"lag"`
	// OldestUndeliveredAt is the log time of the first of those events.
	OldestUndeliveredAt *time.Time `json:"oldestUndeliveredAt,omitempty"`
	// OldestUndeliveredAgeSeconds is how long that event has waited.
	OldestUndeliveredAgeSeconds float64    `json:"oldestUndeliveredAgeSeconds"`
	PendingSeq                  uint64     `json:"pendingSeq,omitempty"`
	Attempts                    int        `json:"attempts"`
	NextAttemptAt               *time.Time `json:"nextAttemptAt,omitempty"`
	LastStatus                  int        `json:"lastStatus,omitempty"`
	LastError                   string     `json:"lastError,omitempty"`
	Parked                      int        `json:"parked"`
	ReplayingParked             bool       `json:"replayingParked,omitempty"`
}

// Status returns the delivery status of one webhook.
func (m *Manager) Status(webhookID string) (Status, error) {
	hook, err := m.webhooks.Get(webhookID)
	if err != nil {
		return Status{}, err
	}
	return m.status(hook)
}

// Statuses returns the delivery status of every webhook, newest webhook
// first.
func (m *Manager) Statuses() ([]Status, error) {
	set := m.webhooks.Snapshot()
	hooks := set.Sorted()

	out := make([]Status, 0, len(hooks))
	for _, hook := range hooks {
		st, err := m.status(hook)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (m *Manager) status(hook projections.Webhook) (Status, error) {
	st, found, err := m.store.loadState(hook.UUID)
	if err != nil {
		return Status{}, err
	}
	if !found {
		st = initialState(hook)
	}

	head := m.log.Head()
	out := Status{
		WebhookID:       hook.UUID,
		Event:           hook.Event,
		URL:             hook.URL,
		State:           hook.State,
		Cursor:          st.Cursor,
		Head:            head,
		PendingSeq:      st.PendingSeq,
		Attempts:        st.Attempts,
		LastStatus:      st.LastStatus,
		LastError:       st.LastError,
		ReplayingParked: st.ParkedReplay,
	}
	if out.State == projections.StateActive && st.Attempts > 0 {
		out.State = "retrying"
	}
	if !st.NextAttempt.IsZero() {
		next := st.NextAttempt.UTC()
		out.NextAttemptAt = &next
	}

	events := []string{hook.Event}
	if out.Lag, err = m.log.Count(events, st.Cursor, head); err != nil {
		return Status{}, err
	}
	if out.Lag > 0 {
		first, err := m.log.Read(eventlog.Query{After: st.Cursor, Through: head, Limit: 1, Events: events})
		if err != nil {
			return Status{}, err
		}
		if len(first) == 1 {
			at := first[0].Timestamp
			out.OldestUndeliveredAt = &at
			out.OldestUndeliveredAgeSeconds = max(0, m.clock.Now().Sub(at).Seconds())
		}
	}

	if out.Parked, err = m.store.countParked(hook.UUID); err != nil {
		return Status{}, err
	}
	return out, nil
}

// Replay moves a webhook's cursor to just before fromSeq: every event from
// there that the webhook subscribes to is delivered again, in order, and
// live delivery follows. fromSeq must be in the log.
func (m *Manager) Replay(ctx context.Context, webhookID string, fromSeq uint64) (State, error) {
	if head := m.log.Head(); fromSeq < 1 || fromSeq > head {
		return State{}, &projections.ValidationError{Field: "seq", Value: strconv.FormatUint(fromSeq, 10),
			Allowed: fmt.Sprintf("the log holds seqs 1 to %d", head)}
	}
	res, err := m.do(ctx, webhookID, command{kind: cmdReplay, seq: fromSeq})
	return res.state, err
}

// ReplayFrom is Replay from the first event at or after t.
func (m *Manager) ReplayFrom(ctx context.Context, webhookID string, t time.Time) (State, uint64, error) {
	seq, err := m.log.SeqAt(t)
	if err != nil {
		return State{}, 0, err
	}
	if seq > m.log.Head() {
		return State{}, 0, &projections.ValidationError{Field: "time", Value: t.Format(time.RFC3339Nano),
			Allowed: "no event in the log is at or after this time"}
	}
	st, err := m.Replay(ctx, webhookID, seq)
	return st, seq, err
}

// Redeliver sends the event at seq to the webhook once more, now, recorded
// in the attempt log with the manual trigger. The cursor does not move.
func (m *Manager) Redeliver(ctx context.Context, webhookID string, seq uint64) (AttemptRecord, error) {
	res, err := m.do(ctx, webhookID, command{kind: cmdRedeliver, seq: seq})
	if err != nil {
		return AttemptRecord{}, err
	}
	return *res.attempt, nil
}

// ReplayParked sends the parked event at seq once, now, and returns the
// attempt: delivered, it is no longer parked. With seq 0 it starts a replay
// of all parked events in the background, one attempt each in seq order, and
// returns how many there are.
func (m *Manager) ReplayParked(ctx context.Context, webhookID string, seq uint64) (*AttemptRecord, int, error) {
	res, err := m.do(ctx, webhookID, command{kind: cmdReplayParked, seq: seq})
	return res.attempt, res.count, err
}

// DropParked deletes the parked event at seq, or all with seq 0, and
// returns how many it deleted.
func (m *Manager) DropParked(ctx context.Context, webhookID string, seq uint64) (int, error) {
	res, err := m.do(ctx, webhookID, command{kind: cmdDropParked, seq: seq})
	return res.count, err
}

// do hands a command to a webhook's worker and waits for its result. A
// webhook created a moment ago may not have its worker yet, so do waits for
// it briefly.
func (m *Manager) do(ctx context.Context, webhookID string, cmd command) (commandResult, error) {
	if _, err := m.webhooks.Get(webhookID); err != nil {
		return commandResult{}, err
	}

	w := m.worker(webhookID)
	for wait := 0; w == nil && wait < 200; wait++ {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return commandResult{}, ctx.Err()
		}
		w = m.worker(webhookID)
	}
	if w == nil {
		return commandResult{}, fmt.Errorf("webhook %q has no delivery worker: %w", webhookID, projections.ErrWebhookNotFound)
	}

	cmd.reply = make(chan commandResult, 1)
	select {
	case w.commands <- cmd:
	case <-w.done:
		return commandResult{}, fmt.Errorf("webhook %q: %w", webhookID, projections.ErrWebhookNotFound)
	case <-ctx.Done():
		return commandResult{}, ctx.Err()
	}

	select {
	case res := <-cmd.reply:
		return res, res.err
	case <-w.done:
		return commandResult{}, fmt.Errorf("webhook %q stopped before it responded: %w", webhookID, projections.ErrWebhookNotFound)
	case <-ctx.Done():
		return commandResult{}, ctx.Err()
	}
}
