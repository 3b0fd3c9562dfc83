package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func listenRetry(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return l, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// 16 publishers append concurrently while a webhook tails the log: every
// subscribed seq arrives exactly once, in log order, with no gaps.
func TestDeliveryConcurrentPublishers(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	s.createWebhook("task.created", recv.URL+"/hook")

	const publishers, perPublisher = 16, 40
	var mu sync.Mutex
	var want []uint64
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				rec := s.publish(eventBody("task.created", map[string]int{"p": p, "i": i}))
				// An event the webhook does not subscribe to, between them.
				s.publish(eventBody("task.updated", map[string]int{"p": p, "i": i}))

				mu.Lock()
				want = append(want, rec.Seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	got := recv.waitFor(t, publishers*perPublisher, 30*time.Second)
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("delivery %d has seq %d after seq %d: not in log order", i, got[i].Seq, got[i-1].Seq)
		}
	}

	wantSet := make(map[uint64]bool, len(want))
	for _, seq := range want {
		wantSet[seq] = true
	}
	for _, d := range got {
		if !wantSet[d.Seq] {
			t.Errorf("seq %d delivered but not a published task.created", d.Seq)
		}
		if b := decodeBody(t, d); b.Event != "task.created" {
			t.Errorf("seq %d delivered as %s, want task.created", d.Seq, b.Event)
		}
	}
	if len(got) != len(want) {
		t.Errorf("delivered %d events, want %d", len(got), len(want))
	}
}

// After a graceful restart delivery resumes from the stored cursor: an
// acknowledged event is not sent again.
func TestDeliveryResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	recv := newReceiver(t, nil)

	s := start(t, dir)
	s.createWebhook("task.created", recv.URL)
	for i := range 3 {
		s.publish(eventBody("task.created", map[string]int{"n": i}))
	}
	recv.waitFor(t, 3, 10*time.Second)
	s.stop()

	s = start(t, dir)
	fourth := s.publish(eventBody("task.created", map[string]int{"n": 3}))
	got := recv.waitFor(t, 4, 10*time.Second)

	// Nothing else may arrive: a delivery of the fourth event is the last
	// request, and a repeat would show up as a fifth.
	if got[3].Seq != fourth.Seq {
		t.Errorf("fourth delivery has seq %d, want %d", got[3].Seq, fourth.Seq)
	}
	s.stop()
	if n := len(recv.got()); n != 4 {
		t.Errorf("receiver got %d requests, want 4: %v", n, seqs(recv.got()))
	}
}

// A receiver that answers 500, 500 and then 200 gets three identical
// attempts; the cursor moves only after the 200 and the next event waits.
func TestDeliveryRetriesUntil2xx(t *testing.T) {
	s := start(t, t.TempDir())

	recv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	hook := s.createWebhook("task.created", recv.URL)
	first := s.publish(eventBody("task.created", map[string]string{"name": "first"}))
	second := s.publish(eventBody("task.created", map[string]string{"name": "second"}))

	got := recv.waitFor(t, 4, 10*time.Second)
	if want := []uint64{first.Seq, first.Seq, first.Seq, second.Seq}; !reflect.DeepEqual(seqs(got[:4]), want) {
		t.Fatalf("delivered seqs = %v, want %v", seqs(got), want)
	}
	for i := 1; i < 3; i++ {
		if !bytes.Equal(got[i].Body, got[0].Body) {
			t.Errorf("attempt %d body = %s, want %s", i+1, got[i].Body, got[0].Body)
		}
		if got[i].WebhookID != got[0].WebhookID || got[i].WebhookID != first.ID {
			t.Errorf("attempt %d webhook-id = %q, want %q", i+1, got[i].WebhookID, first.ID)
		}
	}
	if got[3].WebhookID != second.ID {
		t.Errorf("second event webhook-id = %q, want %q", got[3].WebhookID, second.ID)
	}

	st, found, err := s.app.Delivery().StoredState(hook.UUID)
	if err != nil || !found {
		t.Fatalf("stored state: found %v, err %v", found, err)
	}
	if st.Cursor < first.Seq {
		t.Errorf("cursor = %d, want at least %d after the 200", st.Cursor, first.Seq)
	}
}

// While a receiver fails, the stored cursor stays before the pending event
// and the attempt count grows.
func TestDeliveryCursorWaitsForSuccess(t *testing.T) {
	s := start(t, t.TempDir())

	var mu sync.Mutex
	healthy := false
	recv := newReceiver(t, func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	hook := s.createWebhook("task.created", recv.URL)
	rec := s.publish(eventBody("task.created", map[string]int{"n": 1}))

	recv.waitFor(t, 3, 10*time.Second)
	st := waitState(t, s, hook.UUID, func(st stateView) bool { return st.Attempts >= 2 })
	if st.Cursor >= rec.Seq || st.PendingSeq != rec.Seq {
		t.Errorf("state while failing = %+v, want cursor before %d and pending %d", st, rec.Seq, rec.Seq)
	}
	if st.LastError == "" || st.NextAttempt.IsZero() {
		t.Errorf("state while failing = %+v, want the last error and the next attempt", st)
	}

	mu.Lock()
	healthy = true
	mu.Unlock()
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == rec.Seq && st.Attempts == 0 })
}

type stateView struct {
	Cursor, PendingSeq uint64
	Attempts           int
	NextAttempt        time.Time
	LastError          string
}

func waitState(t *testing.T, s *server, id string, ok func(stateView) bool) stateView {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := s.app.Delivery().StoredState(id)
		if err != nil {
			t.Fatalf("stored state: %v", err)
		}
		view := stateView{st.Cursor, st.PendingSeq, st.Attempts, st.NextAttempt, st.LastError}
		if ok(view) {
			return view
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored state %+v never reached the expected condition", view)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every FFmate fixture is published and delivered with its data unchanged.
func TestDeliveryFixtures(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)

	events := []string{
		"task.created", "task.updated", "task.deleted", "batch.created", "batch.finished",
		"preset.created", "preset.updated", "preset.deleted",
		"watchfolder.created", "watchfolder.updated", "watchfolder.deleted",
		"webhook.created", "webhook.updated", "webhook.deleted",
	}
	hooks := map[string]string{}
	for _, e := range events {
		hooks[s.createWebhook(e, recv.URL+"/"+e).UUID] = e
	}
	// The webhook.created subscriber is the 12th of 14 webhooks, so it gets
	// its own webhook.created and those of the two created after it.
	base := len(recv.waitFor(t, 3, 10*time.Second))

	files, err := filepath.Glob("../testdata/ffmate/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures found: %v", err)
	}
	var bodies [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		bodies = append(bodies, bytes.TrimSpace(data))
	}
	stream, err := os.Open("../testdata/ffmate/stream.jsonl")
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer stream.Close()
	scanner := bufio.NewScanner(stream)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		if line := bytes.TrimSpace(scanner.Bytes()); len(line) > 0 {
			bodies = append(bodies, append([]byte(nil), line...))
		}
	}

	want := map[uint64][]byte{} // seq to the fixture's data
	for _, b := range bodies {
		var in struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatalf("fixture %s: %v", b[:min(len(b), 80)], err)
		}
		rec := s.publish(string(b))
		want[rec.Seq] = in.Data
	}

	got := recv.waitFor(t, base+len(bodies), 20*time.Second)
	delivered := 0
	for _, d := range got[base:] {
		data, ok := want[d.Seq]
		if !ok {
			continue
		}
		delivered++
		b := decodeBody(t, d)
		if !bytes.Equal(b.Data, data) {
			t.Errorf("seq %d (%s): delivered data differs from the fixture", d.Seq, b.Event)
		}
		if ct := d.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("seq %d: Content-Type = %q, want application/json", d.Seq, ct)
		}
		if b.Timestamp == "" {
			t.Errorf("seq %d: empty timestamp", d.Seq)
		}
	}
	if delivered != len(bodies) {
		t.Errorf("delivered %d fixtures, want %d", delivered, len(bodies))
	}
}

// A receiver that is down while 300 events are appended gets all of them
// once, in order, when it comes back, without a restart of hooklog.
func TestDeliveryReceiverComesBack(t *testing.T) {
	s := start(t, t.TempDir())

	// Reserve a port and close it: connections are refused until the
	// receiver starts on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()

	hook := s.createWebhook("task.created", "http://"+addr+"/hook")
	var published []uint64
	for i := range 300 {
		published = append(published, s.publish(eventBody("task.created", map[string]int{"n": i})).Seq)
	}
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Attempts >= 3 })

	recv := newReceiverOn(t, addr, nil)
	got := recv.waitFor(t, 300, 30*time.Second)
	if !reflect.DeepEqual(seqs(got), published) {
		t.Errorf("delivered seqs differ from published seqs:\n got %v\nwant %v", seqs(got), published)
	}
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == published[len(published)-1] })
	if n := len(recv.got()); n != 300 {
		t.Errorf("receiver got %d requests, want 300", n)
	}
}

// The delivery body is exactly {"event","timestamp","data"} and carries the
// Standard Webhooks headers.
func TestDeliveryBodyAndHeaders(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	s.createWebhook("preset.created", recv.URL)

	data := `{ "name" : "H.264 <720p>", "n": [1, 2] }`
	rec := s.publish(`{"event":"preset.created","data":` + data + `}`)
	d := recv.waitFor(t, 1, 10*time.Second)[0]

	want := fmt.Sprintf(`{"event":"preset.created","timestamp":%q,"data":%s}`, rec.Timestamp, data)
	if string(d.Body) != want {
		t.Errorf("body = %s, want %s", d.Body, want)
	}
	if d.WebhookID != rec.ID {
		t.Errorf("webhook-id = %q, want %q", d.WebhookID, rec.ID)
	}
	if d.Header.Get("X-Hooklog-Sequence") != fmt.Sprint(rec.Seq) {
		t.Errorf("X-Hooklog-Sequence = %q, want %d", d.Header.Get("X-Hooklog-Sequence"), rec.Seq)
	}
	if !strings.HasPrefix(d.Header.Get("User-Agent"), "hooklog") {
		t.Errorf("User-Agent = %q, want hooklog/VERSION", d.Header.Get("User-Agent"))
	}
	sent, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
	if err != nil {
		t.Fatalf("timestamp %q: %v", rec.Timestamp, err)
	}
	var unix int64
	if _, err := fmt.Sscan(d.Timestamp, &unix); err != nil || unix < sent.Unix()-1 || unix > time.Now().Unix()+1 {
		t.Errorf("webhook-timestamp = %q, want the attempt's time in Unix seconds", d.Timestamp)
	}
}

// A webhook's own webhook.created is delivered to it when it subscribes to
// webhook.created; events from before its creation are not.
func TestDeliveryStartsAtCreation(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)

	s.publish(eventBody("webhook.created", map[string]string{"from": "ffmate"}))
	hook := s.createWebhook("webhook.created", recv.URL)
	d := recv.waitFor(t, 1, 10*time.Second)[0]

	b := decodeBody(t, d)
	var data webhookJSON
	if err := json.Unmarshal(b.Data, &data); err != nil {
		t.Fatalf("data: %v", err)
	}
	if d.Seq != 2 || data.UUID != hook.UUID {
		t.Errorf("first delivery = seq %d webhook %q, want seq 2 with webhook %q", d.Seq, data.UUID, hook.UUID)
	}
}
