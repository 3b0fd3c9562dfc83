package delivery

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Receivers that misbehave, served for real on loopback. The tests that need
// the attempt deadline run on the real clock with a short AttemptTimeout and
// a first retry an hour away, so they see exactly one attempt.

// realTimeout is the attempt deadline of the tests on the real clock: long
// enough for a loopback request under -race, short enough to wait for.
const realTimeout = 300 * time.Millisecond

// dripInterval is the pause between the bytes of a dripping receiver.
const dripInterval = 100 * time.Millisecond

// newRealHarness starts a harness on the real clock with the given attempt
// deadline and a first retry one hour after a failure.
func newRealHarness(t *testing.T, timeout time.Duration) *harness {
	t.Helper()
	return newHarness(t, Config{
		Clock:          realClock{},
		AttemptTimeout: timeout,
		Policy:         RetryPolicy{Schedule: []time.Duration{time.Hour}},
	})
}

// newSlowServer starts an HTTP receiver on loopback that runs handler. The
// end channel is closed when the test ends, before the server closes, so a
// handler that also waits on end lets the server's Close return.
func newSlowServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, end <-chan struct{})) *httptest.Server {
	t.Helper()
	end := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(w, r, end)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(end) })
	return srv
}

// serveRaw accepts TCP connections on a loopback port and runs serve on each
// in its own goroutine. When the test ends it closes end, the listener and
// the connections, and waits for every serve to return. It returns the
// listener's address.
func serveRaw(t *testing.T, serve func(conn net.Conn, end <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}

	end := make(chan struct{})
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				serve(conn, end)
			})
		}
	})

	t.Cleanup(func() {
		close(end)
		ln.Close()
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedAddr returns a loopback address on which nothing listens: a port
// that was listened on and closed again.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// onlyAttempt waits until a webhook's first attempt has failed or delivered
// the event, and returns the attempt's record and the stored state. It fails
// the test unless the attempt log contains exactly one record.
func onlyAttempt(t *testing.T, h *harness, id string) (AttemptRecord, State) {
	t.Helper()
	st := h.waitState(id, func(st State) bool { return st.Attempts > 0 || st.Cursor > 0 })
	attempts := h.attempts(id)
	if len(attempts) != 1 {
		t.Fatalf("attempt log has %d records, want 1", len(attempts))
	}
	return attempts[0], st
}

// checkFailed checks that an attempt at seq failed with the given error class
// and that the stored state keeps seq pending with a retry scheduled.
func checkFailed(t *testing.T, a AttemptRecord, st State, seq uint64, class string) {
	t.Helper()
	if a.Delivered {
		t.Errorf("attempt delivered = true, want false")
	}
	if a.ErrorClass != class {
		t.Errorf("attempt error class = %q, want %q (error %q)", a.ErrorClass, class, a.Error)
	}
	if a.Seq != seq {
		t.Errorf("attempt seq = %d, want %d", a.Seq, seq)
	}
	if st.PendingSeq != seq || st.Attempts != 1 {
		t.Errorf("state = %+v, want seq %d pending after 1 failed attempt", st, seq)
	}
	if st.NextAttempt.IsZero() {
		t.Errorf("state has no next attempt, want a retry scheduled")
	}
}

// checkEndedAtDeadline checks that an attempt took at least the attempt
// deadline and well under three times it.
func checkEndedAtDeadline(t *testing.T, a AttemptRecord, timeout time.Duration) {
	t.Helper()
	low := float64(timeout.Milliseconds())
	if a.DurationMs < low || a.DurationMs >= 3*low {
		t.Errorf("attempt took %.1f ms, want from %.0f ms (the deadline) to under %.0f ms", a.DurationMs, low, 3*low)
	}
}

// A 3xx is a failed attempt with the Location in its error. The target of
// the redirect gets nothing, neither now nor on the retry.
func TestReceiverRedirect(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			h := newHarness(t, Config{})
			target := newRecorder(t, nil)
			location := target.URL + "/moved"
			recv := newRecorder(t, func(_ int, w http.ResponseWriter) (int, string) {
				w.Header().Set("Location", location)
				return code, ""
			})
			hook := h.createWebhook("task.created", recv.URL)
			rec := h.publish("task.created", map[string]int{"n": 1})

			a, st := onlyAttempt(t, h, hook.UUID)
			checkFailed(t, a, st, rec.Seq, ClassStatus)
			if !strings.Contains(a.Error, location) {
				t.Errorf("attempt error = %q, want it to contain the Location %q", a.Error, location)
			}
			if a.Response == nil || a.Response.Status != code {
				t.Errorf("attempt response = %+v, want status %d", a.Response, code)
			}
			if st.LastStatus != code {
				t.Errorf("state last status = %d, want %d", st.LastStatus, code)
			}
			if want := testStart.Add(3 * time.Second); !st.NextAttempt.Equal(want) {
				t.Errorf("next attempt = %s, want %s", st.NextAttempt, want)
			}
			if n := len(target.got()); n != 0 {
				t.Errorf("redirect target got %d requests, want 0", n)
			}

			h.waitTimer()
			h.clock().Advance(3 * time.Second)
			recv.waitFor(t, 2)
			h.waitState(hook.UUID, func(st State) bool { return st.Attempts == 2 })
			if n := len(target.got()); n != 0 {
				t.Errorf("redirect target got %d requests after the retry, want 0", n)
			}
		})
	}
}

func TestReceiverRefused(t *testing.T) {
	h := newHarness(t, Config{})
	hook := h.createWebhook("task.created", "http://"+closedAddr(t)+"/")
	rec := h.publish("task.created", map[string]int{"n": 1})

	a, st := onlyAttempt(t, h, hook.UUID)
	checkFailed(t, a, st, rec.Seq, ClassRefused)
	if a.Response != nil {
		t.Errorf("attempt response = %+v, want none", a.Response)
	}
	if st.LastStatus != 0 {
		t.Errorf("state last status = %d, want 0", st.LastStatus)
	}
}

// A receiver that never responds is cut off at the attempt deadline.
func TestReceiverHangs(t *testing.T) {
	h := newRealHarness(t, realTimeout)
	srv := newSlowServer(t, func(w http.ResponseWriter, r *http.Request, end <-chan struct{}) {
		// The server notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-end:
		}
	})
	hook := h.createWebhook("task.created", srv.URL)
	rec := h.publish("task.created", map[string]int{"n": 1})

	a, st := onlyAttempt(t, h, hook.UUID)
	checkFailed(t, a, st, rec.Seq, ClassTimeout)
	if a.Response != nil {
		t.Errorf("attempt response = %+v, want none", a.Response)
	}
	checkEndedAtDeadline(t, a, realTimeout)
}

// A receiver that sends its status and then drips the body is cut off at
// the deadline. The status arrived in time, so it decides the outcome, and
// the part of the body read before the deadline is stored.
func TestReceiverDripsBody(t *testing.T) {
	h := newRealHarness(t, realTimeout)
	srv := newSlowServer(t, func(w http.ResponseWriter, r *http.Request, end <-chan struct{}) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		rc := http.NewResponseController(w)
		tick := time.NewTicker(dripInterval)
		defer tick.Stop()
		for {
			if _, err := io.WriteString(w, "x"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			case <-end:
				return
			}
		}
	})
	hook := h.createWebhook("task.created", srv.URL)
	rec := h.publish("task.created", map[string]int{"n": 1})

	a, st := onlyAttempt(t, h, hook.UUID)
	checkFailed(t, a, st, rec.Seq, ClassStatus)
	if a.Response == nil || a.Response.Status != http.StatusInternalServerError {
		t.Fatalf("attempt response = %+v, want status 500", a.Response)
	}
	if st.LastStatus != http.StatusInternalServerError {
		t.Errorf("state last status = %d, want 500", st.LastStatus)
	}
	if body := a.Response.Body; body == "" || strings.Trim(body, "x") != "" {
		t.Errorf("stored body = %q, want the bytes dripped before the deadline", body)
	}
	checkEndedAtDeadline(t, a, realTimeout)
}

// A receiver that starts the status line and then drips header bytes,
// never finishing the headers, is cut off at the deadline.
func TestReceiverDripsHeaders(t *testing.T) {
	h := newRealHarness(t, realTimeout)
	addr := serveRaw(t, func(conn net.Conn, end <-chan struct{}) {
		// Respond only after reading the request, or the client sees a
		// response on an idle connection and fails for that reason instead.
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)

		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nX-Drip: "); err != nil {
			return
		}
		tick := time.NewTicker(dripInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-end:
				return
			}
			if _, err := io.WriteString(conn, "x"); err != nil {
				return
			}
		}
	})
	hook := h.createWebhook("task.created", "http://"+addr+"/")
	rec := h.publish("task.created", map[string]int{"n": 1})

	a, st := onlyAttempt(t, h, hook.UUID)
	checkFailed(t, a, st, rec.Seq, ClassTimeout)
	if a.Response != nil {
		t.Errorf("attempt response = %+v, want none", a.Response)
	}
	if st.LastStatus != 0 {
		t.Errorf("state last status = %d, want 0", st.LastStatus)
	}
	checkEndedAtDeadline(t, a, realTimeout)
}

// A receiver that accepts the connection but never reads the request is cut
// off at the deadline while the request body is still being written.
func TestReceiverNeverReads(t *testing.T) {
	h := newRealHarness(t, realTimeout)
	addr := serveRaw(t, func(_ net.Conn, end <-chan struct{}) {
		<-end
	})
	hook := h.createWebhook("task.created", "http://"+addr+"/")

	// 6 MiB is more than the send buffer (by default at most 4 MiB on Linux,
	// net.ipv4.tcp_wmem) and the receive window together, so the write blocks.
	rec := h.publish("task.created", map[string]string{"blob": strings.Repeat("x", 6<<20)})

	a, st := onlyAttempt(t, h, hook.UUID)
	checkFailed(t, a, st, rec.Seq, ClassTimeout)
	if a.Response != nil {
		t.Errorf("attempt response = %+v, want none", a.Response)
	}
	checkEndedAtDeadline(t, a, realTimeout)
	if len(a.Request.Body) != maxResponseBody || !a.Request.BodyTruncated {
		t.Errorf("stored request body has %d bytes and truncated %t, want %d bytes and truncated", len(a.Request.Body), a.Request.BodyTruncated, maxResponseBody)
	}
}

// An endless 200 response delivers the event: the status decides, only the
// capped part of the body is read, and memory stays flat.
func TestReceiverEndlessBody(t *testing.T) {
	const limit = 2 << 30
	h := newHarness(t, Config{})

	var written atomic.Int64
	finished := make(chan struct{})
	finish := sync.OnceFunc(func() { close(finished) })
	srv := newSlowServer(t, func(w http.ResponseWriter, r *http.Request, end <-chan struct{}) {
		defer finish()
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for written.Load() < limit {
			select {
			case <-end:
				return
			default:
			}
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	hook := h.createWebhook("task.created", srv.URL)

	stopWatch := watchHeap()
	rec := h.publish("task.created", map[string]int{"n": 1})
	h.waitState(hook.UUID, func(st State) bool { return st.Cursor == rec.Seq })
	select {
	case <-finished:
	case <-time.After(15 * time.Second):
		t.Fatalf("receiver still writing after %d bytes, want it cut off", written.Load())
	}
	growth := stopWatch()

	attempts := h.attempts(hook.UUID)
	if len(attempts) != 1 {
		t.Fatalf("attempt log has %d records, want 1", len(attempts))
	}
	a := attempts[0]
	if !a.Delivered || a.Response == nil || a.Response.Status != http.StatusOK {
		t.Fatalf("attempt = %+v, want delivered with status 200", a)
	}
	if len(a.Response.Body) != maxResponseBody {
		t.Errorf("stored response body has %d bytes, want %d", len(a.Response.Body), maxResponseBody)
	}
	if !a.Response.BodyTruncated {
		t.Errorf("stored response body truncated = false, want true")
	}
	if n := written.Load(); n >= 64<<20 {
		t.Errorf("receiver wrote %d bytes before the connection closed, want under 64 MiB", n)
	}
	if growth >= 32<<20 {
		t.Errorf("live heap grew by %d bytes during the attempt, want under 32 MiB", growth)
	}
}

// watchHeap samples the in-use heap after a forced collection until the
// returned function is called, which returns the largest growth over the
// first sample, in bytes.
func watchHeap() func() uint64 {
	base := heapInuse()
	var peak uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heapInuse())
			select {
			case <-tick.C:
			case <-done:
				return
			}
		}
	}()

	return func() uint64 {
		close(done)
		<-stopped
		peak = max(peak, heapInuse())
		if peak < base {
			return 0
		}
		return peak - base
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// The address policy is checked by the real dialer on the resolved address.
// Every target here stays on this machine: the forms that would leave it
// are covered by TestAddressPolicyCheck without a network.
func TestReceiverAddressRefused(t *testing.T) {
	tests := []struct {
		name    string
		policy  AddressPolicy
		host    string
		refused bool
	}{
		{"loopback allowed", AddressPolicy{}, "127.0.0.1", false},
		{"unspecified IPv4", AddressPolicy{}, "0.0.0.0", true},
		{"unspecified IPv6", AddressPolicy{}, "[::]", true},
		{"loopback blocked", AddressPolicy{BlockPrivate: true}, "127.0.0.1", true},
		{"mapped loopback blocked", AddressPolicy{BlockPrivate: true}, "[::ffff:127.0.0.1]", true},
		{"localhost blocked", AddressPolicy{BlockPrivate: true}, "localhost", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{AddressPolicy: tt.policy})
			recv := newRecorder(t, nil)
			_, port, err := net.SplitHostPort(recv.Listener.Addr().String())
			if err != nil {
				t.Fatalf("recorder address: %v", err)
			}
			hook := h.createWebhook("task.created", "http://"+tt.host+":"+port+"/")
			rec := h.publish("task.created", map[string]int{"n": 1})

			if !tt.refused {
				recv.waitFor(t, 1)
				h.waitState(hook.UUID, func(st State) bool { return st.Cursor == rec.Seq })
				return
			}

			a, st := onlyAttempt(t, h, hook.UUID)
			checkFailed(t, a, st, rec.Seq, ClassRefusedAddress)
			if !strings.Contains(a.Error, ErrRefusedAddress.Error()) {
				t.Errorf("attempt error = %q, want it to contain %q", a.Error, ErrRefusedAddress)
			}
			if n := len(recv.got()); n != 0 {
				t.Errorf("receiver got %d requests, want 0", n)
			}
		})
	}
}

// One receiver that hangs delays no other webhook: 99 webhooks get every
// event while the hanging one is still in its first attempt, and the number
// of goroutines depends on the webhooks, not on the events.
func TestReceiverHangIsolated(t *testing.T) {
	const fastHooks, events = 99, 5
	h := newHarness(t, Config{
		Clock:          realClock{},
		AttemptTimeout: time.Minute,
		Policy:         RetryPolicy{Schedule: []time.Duration{time.Hour}},
	})

	var mu sync.Mutex // guards got
	got := make(map[string][]uint64)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		seq, _ := strconv.ParseUint(r.Header.Get("X-Hooklog-Sequence"), 10, 64)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], seq)
		mu.Unlock()
	}))
	t.Cleanup(fast.Close)

	hung := make(chan struct{})
	markHung := sync.OnceFunc(func() { close(hung) })
	release := make(chan struct{})
	releaseHung := sync.OnceFunc(func() { close(release) })
	slow := newRecorder(t, func(n int, _ http.ResponseWriter) (int, string) {
		if n == 1 {
			markHung()
			<-release
		}
		return http.StatusOK, ""
	})
	t.Cleanup(releaseHung)

	base := runtime.NumGoroutine()
	slowHook := h.createWebhook("task.created", slow.URL)
	paths := make([]string, fastHooks)
	for i := range paths {
		paths[i] = "/hook/" + strconv.Itoa(i)
		h.createWebhook("task.created", fast.URL+paths[i])
	}

	var want []uint64
	for i := range events {
		want = append(want, h.publish("task.created", map[string]int{"n": i}).Seq)
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		complete := 0
		for _, path := range paths {
			if len(got[path]) >= events {
				complete++
			}
		}
		mu.Unlock()
		if complete == fastHooks {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d fast webhooks got all %d events", complete, fastHooks, events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	for _, path := range paths {
		if !slices.Equal(got[path], want) {
			t.Errorf("webhook %s got seqs %v, want %v", path, got[path], want)
		}
	}
	mu.Unlock()

	select {
	case <-hung:
	case <-time.After(15 * time.Second):
		t.Fatal("the hanging receiver never got its first request")
	}
	if n := len(slow.got()); n != 1 {
		t.Errorf("hanging receiver got %d requests, want 1: still in its first attempt", n)
	}
	if st := h.state(slowHook.UUID); st.Cursor >= want[0] {
		t.Errorf("hanging webhook's cursor = %d, want below %d: nothing finished", st.Cursor, want[0])
	}

	// Idle connections close in the background, so the count may take a
	// moment to settle.
	limit := base + 5*(fastHooks+1)
	deadline = time.Now().Add(5 * time.Second)
	for n := runtime.NumGoroutine(); n >= limit; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines after the deliveries, want under %d (%d at the start)", n, limit, base)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	releaseHung()
	hits := slow.waitFor(t, events)
	if seqs := seqsOf(hits); !slices.Equal(seqs, want) {
		t.Errorf("released receiver got seqs %v, want %v", seqs, want)
	}
}

// Attempt records expire after Config.AttemptRetention, from the full log
// and from the webhook's list.
func TestAttemptRetention(t *testing.T) {
	h := newHarness(t, Config{AttemptRetention: time.Second})
	recv := newRecorder(t, nil)
	hook := h.createWebhook("task.created", recv.URL)

	// Badger stores the expiry in whole Unix seconds, so a record written
	// late in a second may expire a moment later. Publishing just after a
	// second begins leaves time to see the record before it expires.
	<-time.After(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	rec := h.publish("task.created", map[string]int{"n": 1})
	h.waitState(hook.UUID, func(st State) bool { return st.Cursor == rec.Seq })

	if _, total, err := h.manager.Attempts("", 0, 100); err != nil || total != 1 {
		t.Fatalf("attempt log total = %d (err %v) right after the delivery, want 1", total, err)
	}
	if _, total, err := h.manager.Attempts(hook.UUID, 0, 100); err != nil || total != 1 {
		t.Fatalf("webhook's attempt total = %d (err %v) right after the delivery, want 1", total, err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		all, allTotal, err := h.manager.Attempts("", 0, 100)
		if err != nil {
			t.Fatalf("attempts: %v", err)
		}
		own, ownTotal, err := h.manager.Attempts(hook.UUID, 0, 100)
		if err != nil {
			t.Fatalf("webhook's attempts: %v", err)
		}
		if len(all) == 0 && allTotal == 0 && len(own) == 0 && ownTotal == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s the attempt log lists %d (total %d) and the webhook %d (total %d), want 0", len(all), allTotal, len(own), ownTotal)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
