package delivery

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/internal/fakeclock"
	"github.com/hooklog/hooklog/projections"
)

// testStart is the fake clock's starting time in every test.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness runs the real log, webhook projection and delivery manager on a
// Badger database in a temporary directory.
type harness struct {
	t       testing.TB
	dir     string
	cfg     Config
	db      *badger.DB
	stateDB *badger.DB // the delivery database; db itself unless splitState
	// splitState keeps the delivery state in a second database without a
	// sync per commit, as the server does.
	splitState bool
	log        *eventlog.Log
	webhooks   *projections.Webhooks
	manager    *Manager
	cancel     context.CancelFunc
	done       chan struct{}
}

// newHarness starts a harness. A nil cfg.Clock gets a fake clock starting at
// testStart; cfg.Policy defaults to FFmate's schedule without jitter.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = fakeclock.New(testStart)
	}
	if cfg.Policy.Schedule == nil {
		cfg.Policy = RetryPolicy{
			Schedule:    []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second},
			MaxDelay:    time.Minute,
			MaxAttempts: cfg.Policy.MaxAttempts,
			MaxAge:      cfg.Policy.MaxAge,
		}
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	h := &harness{t: t, dir: t.TempDir(), cfg: cfg}
	h.start()
	t.Cleanup(h.stop)
	return h
}

// clock returns the harness's fake clock; it fails the test if the clock is
// the real one.
func (h *harness) clock() *fakeclock.Clock {
	h.t.Helper()
	c, ok := h.cfg.Clock.(*fakeclock.Clock)
	if !ok {
		h.t.Fatal("the harness runs on the real clock")
	}
	return c
}

func (h *harness) start() {
	h.t.Helper()
	var err error
	h.db, err = badger.Open(badger.DefaultOptions(h.dir + "/log").WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		h.t.Fatalf("open badger: %v", err)
	}
	h.stateDB = h.db
	if h.splitState {
		h.stateDB, err = badger.Open(badger.DefaultOptions(h.dir + "/delivery").WithSyncWrites(false).WithDetectConflicts(false).WithLogger(nil))
		if err != nil {
			h.t.Fatalf("open delivery badger: %v", err)
		}
	}
	h.log, err = eventlog.Open(h.db, eventlog.Options{Now: h.cfg.Clock.Now})
	if err != nil {
		h.t.Fatalf("open log: %v", err)
	}
	h.webhooks, err = projections.OpenWebhooks(h.log, h.db, h.cfg.Logger)
	if err != nil {
		h.t.Fatalf("open webhooks: %v", err)
	}
	h.manager = NewManager(h.log, h.webhooks, h.stateDB, h.cfg)

	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h.webhooks.Run(ctx); err != nil {
			h.t.Errorf("projection: %v", err)
		}
	})
	wg.Go(func() {
		if err := h.manager.Run(ctx); err != nil {
			h.t.Errorf("manager: %v", err)
		}
	})
	go func() {
		wg.Wait()
		close(h.done)
	}()
}

// stop stops the manager and the projection and closes the database. It is
// safe to call twice.
func (h *harness) stop() {
	if h.db == nil || h.db.IsClosed() {
		return
	}
	h.cancel()
	<-h.done
	h.log.Close()
	if h.stateDB != h.db {
		h.stateDB.Close()
	}
	h.db.Close()
}

// restart stops the harness and starts it again on the same directory and
// clock.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

func (h *harness) createWebhook(event, url string) projections.Webhook {
	h.t.Helper()
	hook, err := h.webhooks.Create(context.Background(), projections.WebhookInput{Event: event, URL: url})
	if err != nil {
		h.t.Fatalf("create webhook: %v", err)
	}
	return hook
}

func (h *harness) publish(event string, data any) eventlog.Record {
	h.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		h.t.Fatalf("encode data: %v", err)
	}
	records, err := h.log.Append(context.Background(), []eventlog.Entry{{Event: event, Data: raw}})
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
	return records[0]
}

// state returns the stored state of a webhook.
func (h *harness) state(id string) State {
	h.t.Helper()
	st, _, err := h.manager.StoredState(id)
	if err != nil {
		h.t.Fatalf("stored state: %v", err)
	}
	return st
}

// waitState polls the stored state of a webhook until ok holds.
func (h *harness) waitState(id string, ok func(State) bool) State {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := h.state(id)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("stored state %+v never reached the expected condition", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitTimer waits until the worker has armed its retry timer.
func (h *harness) waitTimer() {
	h.t.Helper()
	if !h.clock().WaitForTimers(1, 15*time.Second) {
		h.t.Fatal("no retry timer was armed")
	}
}

// attempts returns a webhook's attempt records, oldest first.
func (h *harness) attempts(id string) []AttemptRecord {
	h.t.Helper()
	list, total, err := h.manager.Attempts(id, 0, 100)
	if err != nil {
		h.t.Fatalf("attempts: %v", err)
	}
	if total != len(list) {
		h.t.Fatalf("attempts total = %d, listed %d", total, len(list))
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list
}

// hit is one request a receiver got.
type hit struct {
	Seq    uint64
	Header http.Header
	Body   []byte
}

// recorder is a real HTTP receiver that records every request and answers
// with the status and body its respond function returns for the nth request,
// counted from 1. respond may set response headers. A nil respond answers
// 200 with no body.
type recorder struct {
	*httptest.Server

	mu      sync.Mutex
	hits    []hit
	respond func(n int, w http.ResponseWriter) (int, string)
	arrived chan struct{} // closed and replaced on every request
}

func newRecorder(t *testing.T, respond func(n int, w http.ResponseWriter) (int, string)) *recorder {
	t.Helper()
	r := &recorder{respond: respond, arrived: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	seq, _ := strconv.ParseUint(req.Header.Get("X-Hooklog-Sequence"), 10, 64)

	r.mu.Lock()
	r.hits = append(r.hits, hit{Seq: seq, Header: req.Header.Clone(), Body: body})
	n := len(r.hits)
	close(r.arrived)
	r.arrived = make(chan struct{})
	respond := r.respond
	r.mu.Unlock()

	code, answer := http.StatusOK, ""
	if respond != nil {
		code, answer = respond(n, w)
	}
	w.WriteHeader(code)
	io.WriteString(w, answer)
}

func (r *recorder) got() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

// waitFor waits until the receiver has at least n requests.
func (r *recorder) waitFor(t *testing.T, n int) []hit {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		count, arrived := len(r.hits), r.arrived
		r.mu.Unlock()
		if count >= n {
			return r.got()
		}
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("receiver got %d requests, want %d", count, n)
		}
	}
}

func status(code int) func(int, http.ResponseWriter) (int, string) {
	return func(int, http.ResponseWriter) (int, string) { return code, "" }
}
