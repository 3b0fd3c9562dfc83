package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/hooklog/hooklog/catalog"
	"github.com/hooklog/hooklog/eventlog"
)

// snapshotKey stores the webhook set with the seq it covers.
var snapshotKey = []byte("p/webhooks")

// snapshot is the stored form of a WebhookSet.
type snapshot struct {
	Seq      uint64            `json:"seq"`
	Webhooks []snapshotWebhook `json:"webhooks"`
}

type snapshotWebhook struct {
	Webhook
	CreatedSeq uint64 `json:"createdSeq"`
}

// Webhooks keeps the webhook set up to date with the log and changes it by
// appending webhook.* events. Its methods are safe for concurrent use.
type Webhooks struct {
	log    *eventlog.Log
	db     *badger.DB
	logger *slog.Logger
	now    func() time.Time

	writeMu sync.Mutex // serializes Create, Update and Delete
	foldMu  sync.Mutex // serializes folding into set

	mu      sync.RWMutex // guards set and changed
	set     WebhookSet
	changed chan struct{} // closed and replaced when the webhooks change

	savedSeq uint64 // seq of the stored snapshot; guarded by foldMu
}

// OpenWebhooks loads the stored snapshot from db and folds the tail of the
// log after it, so the set is current when OpenWebhooks returns.
func OpenWebhooks(log *eventlog.Log, db *badger.DB, logger *slog.Logger) (*Webhooks, error) {
	w := &Webhooks{
		log:     log,
		db:      db,
		logger:  logger,
		now:     time.Now,
		set:     NewWebhookSet(),
		changed: make(chan struct{}),
	}

	if err := w.load(); err != nil {
		return nil, err
	}
	if w.set.Seq > log.Head() {
		return nil, fmt.Errorf("webhook snapshot covers seq %d but the log ends at seq %d", w.set.Seq, log.Head())
	}
	if err := w.refresh(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Webhooks) load() error {
	return w.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(snapshotKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load webhook snapshot: %w", err)
		}

		return item.Value(func(value []byte) error {
			var snap snapshot
			if err := json.Unmarshal(value, &snap); err != nil {
				return fmt.Errorf("load webhook snapshot: %w", err)
			}

			w.set.Seq = snap.Seq
			for _, sw := range snap.Webhooks {
				hook := sw.Webhook
				hook.CreatedSeq = sw.CreatedSeq
				w.set.Webhooks[hook.UUID] = hook
			}
			w.savedSeq = snap.Seq
			return nil
		})
	})
}

// save stores the set as a snapshot. The caller holds foldMu.
func (w *Webhooks) save(set WebhookSet) error {
	snap := snapshot{Seq: set.Seq, Webhooks: make([]snapshotWebhook, 0, len(set.Webhooks))}
	for _, h := range set.Sorted() {
		snap.Webhooks = append(snap.Webhooks, snapshotWebhook{Webhook: h, CreatedSeq: h.CreatedSeq})
	}

	value, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("save webhook snapshot: %w", err)
	}
	err = w.db.Update(func(txn *badger.Txn) error {
		return txn.Set(snapshotKey, value)
	})
	if err != nil {
		return fmt.Errorf("save webhook snapshot at seq %d: %w", set.Seq, err)
	}
	w.savedSeq = set.Seq
	return nil
}

// refresh folds the log up to its current head. A change to the webhooks is
// stored as a new snapshot and announced on Changed.
func (w *Webhooks) refresh() error {
	w.foldMu.Lock()
	defer w.foldMu.Unlock()

	w.mu.RLock()
	next := w.set.clone()
	w.mu.RUnlock()

	beforeSeq := next.Seq
	changes, err := catchUp(w.log, &next, w.log.Head())
	if err != nil {
		return err
	}
	if next.Seq == beforeSeq {
		return nil
	}

	changed := changes > 0
	if changed {
		if err := w.save(next); err != nil {
			return err
		}
	}

	w.mu.Lock()
	w.set = next
	if changed {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	w.mu.Unlock()
	return nil
}

// Run keeps the set current as the log grows, until ctx ends or the log is
// closed. Before it returns it stores a snapshot of what it covers, so the
// next start folds only what comes after.
func (w *Webhooks) Run(ctx context.Context) error {
	defer w.saveOnStop()

	for {
		if _, err := w.log.Wait(ctx, w.Seq()); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, eventlog.ErrClosed) {
				return nil
			}
			return err
		}

		if err := w.refresh(); err != nil {
			w.logger.Error("webhook projection failed to fold the log", "error", err)
			return err
		}
	}
}

func (w *Webhooks) saveOnStop() {
	w.foldMu.Lock()
	defer w.foldMu.Unlock()

	w.mu.RLock()
	set := w.set.clone()
	w.mu.RUnlock()

	if set.Seq == w.savedSeq {
		return
	}
	if err := w.save(set); err != nil {
		w.logger.Error("saving the webhook snapshot failed", "seq", set.Seq, "error", err)
	}
}

// Seq returns the last log position the set covers.
func (w *Webhooks) Seq() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.set.Seq
}

// Changed returns a channel that is closed at the next change to the webhooks.
func (w *Webhooks) Changed() <-chan struct{} {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.changed
}

// Snapshot returns a copy of the current set.
func (w *Webhooks) Snapshot() WebhookSet {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.set.clone()
}

// Get returns the webhook with the given id, or ErrWebhookNotFound.
func (w *Webhooks) Get(id string) (Webhook, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()

	h, ok := w.set.Webhooks[id]
	if !ok {
		return Webhook{}, fmt.Errorf("webhook %q: %w", id, ErrWebhookNotFound)
	}
	return h, nil
}

// List returns one page of webhooks, newest first, and the total count.
// Page numbers start at 0.
func (w *Webhooks) List(page, perPage int) ([]Webhook, int) {
	w.mu.RLock()
	all := w.set.Sorted()
	w.mu.RUnlock()

	start := page * perPage
	if start >= len(all) {
		return []Webhook{}, len(all)
	}
	return all[start:min(start+perPage, len(all))], len(all)
}

// Create validates in, appends webhook.created and returns the new webhook.
func (w *Webhooks) Create(ctx context.Context, in WebhookInput) (Webhook, error) {
	if err := in.Validate(); err != nil {
		return Webhook{}, err
	}

	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	startSeq, err := w.resolveStart(in.Start)
	if err != nil {
		return Webhook{}, err
	}

	now := w.now().UTC()
	id := uuid.NewString()
	hook := Webhook{UUID: id, ID: id, Event: in.Event, URL: in.URL, CreatedAt: now, UpdatedAt: now, State: StateActive, StartSeq: startSeq}
	if err := w.appendChange(ctx, catalog.WebhookCreated, hook); err != nil {
		return Webhook{}, err
	}
	return w.Get(id)
}

// resolveStart turns a start position into the first seq to deliver, 0 for
// the events after the webhook's creation.
func (w *Webhooks) resolveStart(p StartPosition) (uint64, error) {
	head := w.log.Head()
	switch p.Kind {
	case "all":
		return 1, nil
	case "seq":
		if p.Seq > head+1 {
			return 0, &ValidationError{Field: "start", Value: strconv.FormatUint(p.Seq, 10),
				Allowed: fmt.Sprintf("the log holds seqs 1 to %d, so a start seq must be from 1 to %d", head, head+1)}
		}
		return p.Seq, nil
	case "time":
		seq, err := w.log.SeqAt(p.Time)
		if err != nil {
			return 0, err
		}
		return seq, nil
	default:
		return 0, nil
	}
}

// Update validates in, appends webhook.updated and returns the webhook. An
// update also enables a disabled webhook; a paused one stays paused.
func (w *Webhooks) Update(ctx context.Context, id string, in WebhookInput) (Webhook, error) {
	if err := in.Validate(); err != nil {
		return Webhook{}, err
	}

	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	hook, err := w.Get(id)
	if err != nil {
		return Webhook{}, err
	}

	hook.Event, hook.URL, hook.UpdatedAt = in.Event, in.URL, w.now().UTC()
	if hook.State == StateDisabled {
		hook.State, hook.DisabledReason = StateActive, ""
	}
	if err := w.appendChange(ctx, catalog.WebhookUpdated, hook); err != nil {
		return Webhook{}, err
	}
	return w.Get(id)
}

// Pause appends webhook.updated with the webhook paused. A paused webhook
// keeps its cursor and delivers nothing until it is resumed.
func (w *Webhooks) Pause(ctx context.Context, id string) (Webhook, error) {
	return w.setState(ctx, id, StatePaused)
}

// Resume appends webhook.updated with the webhook active again; delivery
// continues from its cursor.
func (w *Webhooks) Resume(ctx context.Context, id string) (Webhook, error) {
	return w.setState(ctx, id, StateActive)
}

func (w *Webhooks) setState(ctx context.Context, id, state string) (Webhook, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	hook, err := w.Get(id)
	if err != nil {
		return Webhook{}, err
	}
	if hook.State == state {
		return hook, nil
	}

	hook.State, hook.DisabledReason, hook.UpdatedAt = state, "", w.now().UTC()
	if err := w.appendChange(ctx, catalog.WebhookUpdated, hook); err != nil {
		return Webhook{}, err
	}
	return w.Get(id)
}

// Disable appends webhook.updated with the webhook disabled for reason, and
// returns the webhook.
func (w *Webhooks) Disable(ctx context.Context, id, reason string) (Webhook, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	hook, err := w.Get(id)
	if err != nil {
		return Webhook{}, err
	}

	hook.State, hook.DisabledReason, hook.UpdatedAt = StateDisabled, reason, w.now().UTC()
	if err := w.appendChange(ctx, catalog.WebhookUpdated, hook); err != nil {
		return Webhook{}, err
	}
	return w.Get(id)
}

// Delete appends webhook.deleted with the webhook as it was.
func (w *Webhooks) Delete(ctx context.Context, id string) error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	hook, err := w.Get(id)
	if err != nil {
		return err
	}
	return w.appendChange(ctx, catalog.WebhookDeleted, hook)
}

// appendChange appends one webhook event and folds the log through it, so
// the change is visible when appendChange returns. The caller holds writeMu.
func (w *Webhooks) appendChange(ctx context.Context, event string, hook Webhook) error {
	data, err := json.Marshal(hook)
	if err != nil {
		return fmt.Errorf("%s %s: %w", event, hook.UUID, err)
	}

	_, err = w.log.Append(ctx, []eventlog.Entry{{Event: event, Data: data, Source: eventlog.SourceInternal}})
	if err != nil {
		return fmt.Errorf("%s %s: %w", event, hook.UUID, err)
	}
	return w.refresh()
}
