package delivery

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooklog/hooklog/projections"
)

// BenchmarkOrderedDelivery measures one webhook delivering b.N events of
// 1 KiB in order to a receiver that answers at once: the delivery hot path
// of read-ahead, body, signature, request, attempt record and cursor commit.
func BenchmarkOrderedDelivery(b *testing.B) {
	var received atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	h := newBenchHarness(b)
	data := map[string]string{"pad": strings.Repeat("x", 1000)}
	for range b.N {
		h.publish("task.created", data)
	}

	b.ResetTimer()
	_, err := h.webhooks.Create(context.Background(), projections.WebhookInput{
		Event: "task.created", URL: recv.URL, Start: projections.StartPosition{Kind: "all"},
	})
	if err != nil {
		b.Fatal(err)
	}
	for received.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
}

// newBenchHarness is a harness on the real clock with the databases as the
// server opens them: the delivery state without a sync per commit.
func newBenchHarness(b *testing.B) *harness {
	b.Helper()
	h := &harness{t: b, dir: b.TempDir(), splitState: true, cfg: Config{
		Clock:        realClock{},
		SyncInterval: 100 * time.Millisecond,
		Policy:       DefaultRetryPolicy(),
		Logger:       slog.New(slog.DiscardHandler),
	}}
	h.start()
	b.Cleanup(h.stop)
	return h
}
