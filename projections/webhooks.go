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
	"github.com/hooklog/hooklog/signature"
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

	mu      sync.RWMutex // guards set, changed and creds
	set     WebhookSet
	changed chan struct{}          // closed and replaced when the webhooks change
	creds   map[string]Credentials // by webhook id; written under writeMu too

	limits        Limits
	secretOverlap time.Duration

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

		limits:        DefaultLimits,
		secretOverlap: DefaultSecretOverlap,
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
	if err := w.loadCredentials(); err != nil {
		return nil, err
	}
	return w, nil
}

// DefaultSecretOverlap is how long a rotated-out secret still signs.
const DefaultSecretOverlap = 24 * time.Hour

// SetLimits sets the limits that new and updated webhooks must keep.
func (w *Webhooks) SetLimits(l Limits) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.limits = l.orDefault()
}

// SetSecretOverlap sets how long a secret signs after it is rotated out.
func (w *Webhooks) SetSecretOverlap(d time.Duration) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.secretOverlap = d
}

// loadCredentials reads the stored credentials, deletes those of webhooks
// that do not exist (left when the process ended between storing them and
// appending the webhook.created event, or between a deletion and its
// clean-up) and gives a new secret to a webhook that has none.
func (w *Webhooks) loadCredentials() error {
	all, err := loadAllCredentials(w.db)
	if err != nil {
		return err
	}

	set := w.Snapshot()
	for id := range all {
		if _, ok := set.Webhooks[id]; ok {
			continue
		}
		if err := deleteCredentials(w.db, id); err != nil {
			return err
		}
		delete(all, id)
	}
	for id := range set.Webhooks {
		if _, ok := all[id]; ok {
			continue
		}
		secret, err := signature.NewSecret()
		if err != nil {
			return err
		}
		c := Credentials{Secrets: []Secret{{Value: secret}}}
		if err := saveCredentials(w.db, id, c); err != nil {
			return err
		}
		all[id] = c
		w.logger.Warn("webhook had no stored secret; a new one was generated", "webhook_id", id)
	}

	w.mu.Lock()
	w.creds = all
	w.mu.Unlock()
	return nil
}

// Credentials returns a copy of a webhook's secrets and header values.
func (w *Webhooks) Credentials(id string) (Credentials, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()

	c, ok := w.creds[id]
	if !ok {
		return Credentials{}, fmt.Errorf("webhook %q: %w", id, ErrWebhookNotFound)
	}
	return c.clone(), nil
}

// RotateSecret gives a webhook a new current secret. The previous one keeps
// signing, beside the new one, until the overlap ends.
func (w *Webhooks) RotateSecret(id string) (Credentials, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	c, err := w.Credentials(id)
	if err != nil {
		return Credentials{}, err
	}
	secret, err := signature.NewSecret()
	if err != nil {
		return Credentials{}, err
	}

	now := w.now().UTC()
	next := Credentials{Secrets: []Secret{{Value: secret}}, Headers: c.Headers}
	if w.secretOverlap > 0 && len(c.Secrets) > 0 {
		next.Secrets = append(next.Secrets, Secret{Value: c.Secrets[0].Value, ExpiresAt: now.Add(w.secretOverlap)})
	}
	if err := w.storeCredentials(id, next); err != nil {
		return Credentials{}, err
	}
	return next.clone(), nil
}

// storeCredentials saves a webhook's credentials and caches them. The
// caller holds writeMu.
func (w *Webhooks) storeCredentials(id string, c Credentials) error {
	if err := saveCredentials(w.db, id, c); err != nil {
		return err
	}
	w.mu.Lock()
	w.creds[id] = c.clone()
	w.mu.Unlock()
	return nil
}

// redacted returns the header names with Redacted values, or nil.
func redacted(headers map[string]string) map[string]string {
	if len(headers) == 0 {
		return nil
	}
	out := make(map[string]string, len(headers))
	for name := range headers {
		out[name] = Redacted
	}
	return out
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

// Run keeps the set current as webhook.* events are appended, until ctx
// ends. Between them, Seq may lag behind the head. Before it returns it
// stores a snapshot of what it covers, so the next start folds only what
// comes after.
func (w *Webhooks) Run(ctx context.Context) error {
	defer w.saveOnStop()

	for {
		// Only webhook.* events can change the set, so Run waits for those
		// and not for every append. The channels are taken before the
		// fold, so an append during the fold still wakes it.
		var appended [3]<-chan struct{}
		for i, name := range webhookEvents {
			_, appended[i] = w.log.EventAppended(name)
		}

		if err := w.refresh(); err != nil {
			w.logger.Error("webhook projection failed to fold the log", "error", err)
			return err
		}

		select {
		case <-appended[0]:
		case <-appended[1]:
		case <-appended[2]:
		case <-ctx.Done():
			return nil
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
	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	if err := in.Validate(w.limits); err != nil {
		return Webhook{}, err
	}

	startSeq, err := w.resolveStart(in.Start)
	if err != nil {
		return Webhook{}, err
	}

	secret := in.Secret
	if secret == "" {
		if secret, err = signature.NewSecret(); err != nil {
			return Webhook{}, err
		}
	}
	creds := Credentials{Secrets: []Secret{{Value: secret}}}
	if in.Headers != nil {
		creds.Headers = *in.Headers
	}

	now := w.now().UTC()
	id := uuid.NewString()
	hook := Webhook{UUID: id, ID: id, Event: in.Event, URL: in.URL, CreatedAt: now, UpdatedAt: now, State: StateActive,
		StartSeq: startSeq, Headers: redacted(creds.Headers)}

	// The credentials go first: if the process ends before the append,
	// the next start deletes them as belonging to no webhook.
	if err := w.storeCredentials(id, creds); err != nil {
		return Webhook{}, err
	}
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
	w.writeMu.Lock()
	defer w.writeMu.Unlock()

	in.Secret = ""
	if err := in.Validate(w.limits); err != nil {
		return Webhook{}, err
	}

	hook, err := w.Get(id)
	if err != nil {
		return Webhook{}, err
	}
	if in.Headers != nil {
		c, err := w.Credentials(id)
		if err != nil {
			return Webhook{}, err
		}
		c.Headers = *in.Headers
		if err := w.storeCredentials(id, c); err != nil {
			return Webhook{}, err
		}
		hook.Headers = redacted(c.Headers)
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
	if err := w.appendChange(ctx, catalog.WebhookDeleted, hook); err != nil {
		return err
	}

	// After the append: if the process ends first, the next start deletes
	// the credentials as belonging to no webhook.
	w.mu.Lock()
	delete(w.creds, id)
	w.mu.Unlock()
	return deleteCredentials(w.db, id)
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
