// Package delivery sends the events of the log to the webhooks subscribed to
// them: one worker per webhook, strictly in log order, one request in flight,
// with a durable cursor so that a restart resumes where delivery stopped.
package delivery

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// Config configures a Manager. Zero fields take the documented defaults.
type Config struct {
	// Policy decides the waits between attempts; zero means DefaultRetryPolicy.
	Policy RetryPolicy
	// AttemptTimeout bounds one attempt: connecting, sending, the response
	// headers and the capped response body. Zero means 15 seconds.
	AttemptTimeout time.Duration
	// StopGrace is how long Run waits for attempts in flight to finish once
	// its context ends, before it aborts them. Zero means 5 seconds.
	StopGrace time.Duration
	// UserAgent is sent with every request; empty means "hooklog".
	UserAgent string
	// AddressPolicy decides which addresses delivery may connect to.
	AddressPolicy AddressPolicy
	// AttemptRetention is how long attempt records are kept; zero means
	// 7 days.
	AttemptRetention time.Duration
	// Client sends the requests; nil means a client built for
	// AddressPolicy that keeps connections alive and follows no redirect.
	// A client given here must enforce its own address policy.
	Client *http.Client
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Registerer receives delivery's metrics; nil exports none.
	Registerer prometheus.Registerer
	// PerWebhookMetrics also exports the hooklog_webhook_* series, one set
	// per webhook, computed at scrape time.
	PerWebhookMetrics bool
	// FailureLogInterval is how often a webhook that keeps failing logs
	// its failed attempts, after the first ones; zero means one minute.
	FailureLogInterval time.Duration
	// SpaceCheck, when set, is asked before each write to the database
	// whether the disk has room for it.
	SpaceCheck func(need int) error
	// SyncInterval, when positive, makes Run sync the database this often
	// while delivery writes to it, for a database opened without
	// SyncWrites. Zero means the database syncs every commit itself.
	SyncInterval time.Duration
	// ValueLogGCInterval, when positive, makes Run collect the garbage of
	// the database's value log this often: the space of attempt records
	// that expired and of states that were overwritten.
	ValueLogGCInterval time.Duration
	// Logger receives a line per failed attempt; nil means slog.Default().
	Logger *slog.Logger
}

// Manager runs one worker per webhook and keeps the workers in step with the
// webhook set.
type Manager struct {
	cfg      Config
	log      *eventlog.Log
	webhooks *projections.Webhooks
	store    *store
	sender   *sender
	clock    Clock
	logger   *slog.Logger
	metrics  *deliveryMetrics

	mu      sync.Mutex         // guards workers; Run alone adds and removes them
	workers map[string]*worker // by webhook id
}

// NewManager returns a manager that delivers the events of log to the
// webhooks of webhooks and stores its cursors in db.
func NewManager(log *eventlog.Log, webhooks *projections.Webhooks, db *badger.DB, cfg Config) *Manager {
	if cfg.Policy.Schedule == nil && cfg.Policy.MaxDelay == 0 {
		cfg.Policy = DefaultRetryPolicy()
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 15 * time.Second
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hooklog"
	}
	if cfg.AttemptRetention <= 0 {
		cfg.AttemptRetention = 7 * 24 * time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = newHTTPClient(cfg.AddressPolicy)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.FailureLogInterval <= 0 {
		cfg.FailureLogInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	m := &Manager{
		cfg:      cfg,
		log:      log,
		webhooks: webhooks,
		store:    &store{db: db, retention: cfg.AttemptRetention, spaceCheck: cfg.SpaceCheck},
		clock:    cfg.Clock,
		logger:   cfg.Logger,
		workers:  make(map[string]*worker),
		metrics:  newDeliveryMetrics(cfg.Registerer),
	}
	m.sender = &sender{client: cfg.Client, userAgent: cfg.UserAgent, timeout: cfg.AttemptTimeout, clock: cfg.Clock, inFlight: m.metrics.inFlight}
	if cfg.Registerer != nil && cfg.PerWebhookMetrics {
		cfg.Registerer.MustRegister(webhookCollector{m})
	}
	return m
}

// Run starts a worker per webhook and follows changes to the webhook set
// until ctx ends. Then it stops the workers: attempts in flight get
// cfg.StopGrace to finish before they are aborted. Run returns when every
// worker has returned.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.removeOrphans(); err != nil {
		return err
	}
	if m.cfg.SyncInterval > 0 {
		defer every(m.cfg.SyncInterval, m.syncDB, true)()
	}
	if m.cfg.ValueLogGCInterval > 0 {
		defer every(m.cfg.ValueLogGCInterval, m.collectValueLog, false)()
	}

	for {
		changed := m.webhooks.Changed()
		m.reconcile(m.webhooks.Snapshot())

		select {
		case <-changed:
		case <-ctx.Done():
			m.stopAll()
			return nil
		}
	}
}

// every starts a goroutine that calls fn every interval, and once more when
// it stops if final is set. fn gets a channel that is closed when the
// goroutine must stop. every returns the function that stops the goroutine
// and waits for it.
func every(interval time.Duration, fn func(stop <-chan struct{}), final bool) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()

		for {
			select {
			case <-ticker.C:
				fn(stop)
			case <-stop:
				if final {
					fn(stop)
				}
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// syncDB syncs the delivery database, for a database opened without
// SyncWrites.
func (m *Manager) syncDB(<-chan struct{}) {
	if err := m.store.db.Sync(); err != nil {
		m.logger.Error("syncing the delivery database failed", "error", err)
	}
}

// collectValueLog collects the garbage of the delivery database's value
// log, until there is none to collect or stop is closed.
func (m *Manager) collectValueLog(stop <-chan struct{}) {
	rewritten, err := m.store.collectValueLog(stop)
	if err != nil {
		m.logger.Error("collecting the delivery database's value log failed", "files_rewritten", rewritten, "error", err)
		return
	}
	if rewritten > 0 {
		m.logger.Debug("collected the delivery database's value log", "files_rewritten", rewritten)
	}
}

// StoredState returns the stored delivery state of a webhook and whether
// there is one. A webhook without a stored state has made no attempt yet.
func (m *Manager) StoredState(webhookID string) (State, bool, error) {
	return m.store.loadState(webhookID)
}

// Parked returns one page of a webhook's parked events in seq order, and
// their total count. Pages start at 0.
func (m *Manager) Parked(webhookID string, page, perPage int) ([]Parked, int, error) {
	return m.store.parked(webhookID, page, perPage)
}

// Attempts returns one page of the attempt log, newest first, and its total
// count: of one webhook, or of all webhooks when webhookID is empty. Pages
// start at 0.
func (m *Manager) Attempts(webhookID string, page, perPage int) ([]AttemptRecord, int, error) {
	list, total, err := m.store.attempts(webhookID, page, perPage)
	if err != nil {
		return nil, 0, err
	}

	// Request bodies are rebuilt from the log rather than stored with every
	// attempt: the body of an event's delivery is the same on every attempt.
	for i := range list {
		r, err := m.log.Get(list[i].Seq)
		if err != nil {
			continue
		}
		body := deliveryBody(r)
		list[i].Request.Body = string(body[:min(len(body), maxResponseBody)])
		list[i].Request.BodyTruncated = len(body) > maxResponseBody
	}
	return list, total, nil
}

// removeOrphans deletes stored states of webhooks that no longer exist, left
// behind when the process ended between a deletion and its clean-up.
func (m *Manager) removeOrphans() error {
	ids, err := m.store.stateIDs()
	if err != nil {
		return err
	}

	set := m.webhooks.Snapshot()
	for _, id := range ids {
		if _, ok := set.Webhooks[id]; ok {
			continue
		}
		if err := m.store.forget(id); err != nil {
			return err
		}
	}
	return nil
}

// reconcile starts workers for new webhooks, hands changes to running
// workers and removes the workers of deleted webhooks with their state.
func (m *Manager) reconcile(set projections.WebhookSet) {
	for id, hook := range set.Webhooks {
		if w := m.worker(id); w != nil {
			if !reflect.DeepEqual(*w.hook.Load(), hook) {
				w.update(hook)
			}
			continue
		}
		m.start(hook)
	}

	m.mu.Lock()
	var gone []*worker
	for id, w := range m.workers {
		if _, ok := set.Webhooks[id]; !ok {
			gone = append(gone, w)
		}
	}
	m.mu.Unlock()

	for _, w := range gone {
		id := w.id

		// Deleted: abort the attempt in flight and forget the cursor and
		// the parked events, so nothing of the webhook remains after a
		// restart but its attempt records, which expire.
		close(w.stop)
		w.cancel()
		<-w.done
		m.mu.Lock()
		delete(m.workers, id)
		m.mu.Unlock()
		if err := m.store.forget(id); err != nil {
			m.logger.Error("removing the delivery state of a deleted webhook failed", "webhook_id", id, "error", err)
		}
	}
}

func (m *Manager) start(hook projections.Webhook) {
	st, found, err := m.store.loadState(hook.UUID)
	if err != nil {
		m.logger.Error("loading the delivery state failed; delivery starts at the webhook's start position", "webhook_id", hook.UUID, "error", err)
	}
	if !found {
		st = initialState(hook)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{
		m:        m,
		id:       hook.UUID,
		wake:     make(chan struct{}, 1),
		commands: make(chan command),
		stop:     make(chan struct{}),
		cancel:   cancel,
		done:     make(chan struct{}),
		state:    st,
	}
	w.hook.Store(&hook)
	m.mu.Lock()
	m.workers[hook.UUID] = w
	m.mu.Unlock()

	go w.run(ctx)
}

// initialState is the state of a webhook that has made no attempt: a new
// webhook gets the events appended after its creation, starting with its
// own webhook.created, unless it was created with a start seq.
func initialState(hook projections.Webhook) State {
	if hook.StartSeq > 0 {
		return State{Cursor: hook.StartSeq - 1}
	}
	return State{Cursor: hook.CreatedSeq - 1}
}

// worker returns the worker of a webhook, or nil.
func (m *Manager) worker(id string) *worker {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers[id]
}

// stopAll stops every worker: first gracefully, then by aborting what is
// still in flight after the grace period.
func (m *Manager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()

	for _, w := range m.workers {
		close(w.stop)
	}

	grace, cancel := context.WithTimeout(context.Background(), m.cfg.StopGrace)
	defer cancel()

	var wg sync.WaitGroup
	for _, w := range m.workers {
		wg.Go(func() {
			select {
			case <-w.done:
			case <-grace.Done():
				w.cancel()
				<-w.done
			}
		})
	}
	wg.Wait()

	for _, w := range m.workers {
		w.cancel()
	}
	clear(m.workers)
}
