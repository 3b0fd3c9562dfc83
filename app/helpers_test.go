package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hooklog/hooklog/delivery"
)

// fastRetries keeps retry tests short; the schedule's shape is the real one.
var fastRetries = delivery.RetryPolicy{
	Schedule: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond},
	MaxDelay: 150 * time.Millisecond,
}

// server is a hooklog App running in the test on a loopback port.
type server struct {
	t    *testing.T
	app  *App
	url  string
	stop func()
}

// start opens and runs an App on dir. The test ends it unless it stops it first.
func start(t *testing.T, dir string) *server {
	t.Helper()
	return startWith(t, dir, nil)
}

// startWith is start with a function that changes the configuration first.
func startWith(t *testing.T, dir string, change func(*Config)) *server {
	t.Helper()
	cfg := Config{
		Addr:     "127.0.0.1:0",
		DataDir:  dir,
		Delivery: delivery.Config{Policy: fastRetries, AttemptTimeout: 5 * time.Second, StopGrace: time.Second},
		Logger:   slog.New(slog.DiscardHandler),
	}
	if change != nil {
		change(&cfg)
	}
	a, err := Open(cfg)
	if err != nil {
		t.Fatalf("open app: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	var once sync.Once
	s := &server{t: t, app: a, url: "http://" + a.Addr()}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) do(method, path string, body any) (*http.Response, []byte) {
	s.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = bytes.NewBufferString(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		reader = bytes.NewReader(data)
	}

	req, err := http.NewRequest(method, s.url+path, reader)
	if err != nil {
		s.t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read answer of %s %s: %v", method, path, err)
	}
	return resp, data
}

type webhookJSON struct {
	UUID  string `json:"uuid"`
	ID    string `json:"id"`
	Event string `json:"event"`
	URL   string `json:"url"`
}

func (s *server) createWebhook(event, url string) webhookJSON {
	s.t.Helper()
	resp, body := s.do(http.MethodPost, "/api/v1/webhooks", map[string]string{"event": event, "url": url})
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("create webhook: status %d: %s", resp.StatusCode, body)
	}
	var hook webhookJSON
	if err := json.Unmarshal(body, &hook); err != nil {
		s.t.Fatalf("decode webhook: %v", err)
	}
	return hook
}

type publishedJSON struct {
	Seq       uint64 `json:"seq"`
	ID        string `json:"id"`
	Event     string `json:"event"`
	Timestamp string `json:"timestamp"`
}

// publish posts a raw publish body and returns the one record it appended.
func (s *server) publish(body string) publishedJSON {
	s.t.Helper()
	resp, answer := s.do(http.MethodPost, "/api/v1/events", body)
	if resp.StatusCode != http.StatusCreated {
		s.t.Fatalf("publish: status %d: %s", resp.StatusCode, answer)
	}
	var rec publishedJSON
	if err := json.Unmarshal(answer, &rec); err != nil {
		s.t.Fatalf("decode publish answer %s: %v", answer, err)
	}
	return rec
}

// request is one request a receiver got.
type request struct {
	Seq       uint64
	WebhookID string // the webhook-id header: the event's id
	Timestamp string // the webhook-timestamp header
	Body      []byte
	Header    http.Header
}

// receiver is a real HTTP receiver that records every request. Its status
// function decides the answer to the nth request (counted from 1).
type receiver struct {
	*httptest.Server

	mu       sync.Mutex
	requests []request
	status   func(n int) int
	arrived  chan struct{} // closed and replaced on every request
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{status: status, arrived: make(chan struct{})}
	r.Server = httptest.NewServer(r)
	t.Cleanup(r.Close)
	return r
}

// newReceiverOn starts a receiver on a given address, for a receiver that
// comes back on the port it was down on.
func newReceiverOn(t *testing.T, addr string, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{status: status, arrived: make(chan struct{})}
	r.Server = httptest.NewUnstartedServer(r)
	r.Server.Listener.Close()
	l, err := listenRetry(addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	r.Server.Listener = l
	r.Server.Start()
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	seq, _ := strconv.ParseUint(req.Header.Get("X-Hooklog-Sequence"), 10, 64)

	r.mu.Lock()
	r.requests = append(r.requests, request{
		Seq:       seq,
		WebhookID: req.Header.Get("webhook-id"),
		Timestamp: req.Header.Get("webhook-timestamp"),
		Body:      body,
		Header:    req.Header.Clone(),
	})
	n := len(r.requests)
	close(r.arrived)
	r.arrived = make(chan struct{})
	status := http.StatusOK
	if r.status != nil {
		status = r.status(n)
	}
	r.mu.Unlock()

	w.WriteHeader(status)
}

func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// waitFor waits until the receiver has at least n requests.
func (r *receiver) waitFor(t *testing.T, n int, timeout time.Duration) []request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, arrived := len(r.requests), r.arrived
		r.mu.Unlock()
		if got >= n {
			return r.got()
		}

		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("receiver got %d requests within %s, want %d", got, timeout, n)
		}
	}
}

// seqs returns the sequence numbers of deliveries.
func seqs(ds []request) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Seq
	}
	return out
}

// body is the delivery body, decoded with data kept as raw bytes.
type body struct {
	Event     string          `json:"event"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func decodeBody(t *testing.T, d request) body {
	t.Helper()
	var b body
	if err := json.Unmarshal(d.Body, &b); err != nil {
		t.Fatalf("delivery body %s is not JSON: %v", d.Body, err)
	}
	return b
}

func eventBody(event string, data any) string {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("encode %v: %v", data, err))
	}
	return fmt.Sprintf(`{"event":%q,"data":%s}`, event, raw)
}
