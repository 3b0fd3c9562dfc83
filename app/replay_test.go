package app

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type statusJSON struct {
	State       string  `json:"state"`
	Cursor      uint64  `json:"cursor"`
	Head        uint64  `json:"head"`
	Lag         uint64  `json:"lag"`
	OldestAge   float64 `json:"oldestUndeliveredAgeSeconds"`
	Attempts    int     `json:"attempts"`
	NextAttempt *string `json:"nextAttemptAt"`
	LastError   string  `json:"lastError"`
	LastStatus  int     `json:"lastStatus"`
	Parked      int     `json:"parked"`
}

func (s *server) status(id string) statusJSON {
	s.t.Helper()
	resp, body := s.do(http.MethodGet, "/api/v1/webhooks/"+id+"/status", nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	var st statusJSON
	if err := json.Unmarshal(body, &st); err != nil {
		s.t.Fatalf("decode status %s: %v", body, err)
	}
	return st
}

func (s *server) post(path string, body any, want int) []byte {
	s.t.Helper()
	resp, answer := s.do(http.MethodPost, path, body)
	if resp.StatusCode != want {
		s.t.Fatalf("POST %s: status %d, want %d: %s", path, resp.StatusCode, want, answer)
	}
	return answer
}

// publishMany publishes n events of one name in arrays of up to 500 and
// returns their seqs.
func (s *server) publishMany(event string, n int) []uint64 {
	s.t.Helper()
	var seqs []uint64
	for done := 0; done < n; {
		batch := min(500, n-done)
		parts := make([]string, batch)
		for i := range parts {
			parts[i] = eventBody(event, map[string]int{"n": done + i})
		}
		resp, answer := s.do(http.MethodPost, "/api/v1/events", "["+strings.Join(parts, ",")+"]")
		if resp.StatusCode != http.StatusCreated {
			s.t.Fatalf("publish batch: %d %s", resp.StatusCode, answer)
		}
		var recs []publishedJSON
		if err := json.Unmarshal(answer, &recs); err != nil {
			s.t.Fatalf("decode %s: %v", answer, err)
		}
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
		}
		done += batch
	}
	return seqs
}

// A receiver that is down while 10,000 events are appended gets all of
// them once, in order, when it comes back.
func TestCatchUpAfterOutage(t *testing.T) {
	s := start(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()

	hook := s.createWebhook("task.updated", "http://"+addr+"/hook")
	want := s.publishMany("task.updated", 10000)

	st := s.status(hook.UUID)
	if st.Lag != 10000 || st.Cursor != 0 || st.Head != want[len(want)-1] {
		t.Errorf("status during the outage = %+v, want lag 10000, cursor 0 and the head", st)
	}
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Attempts >= 2 })
	if st := s.status(hook.UUID); st.State != "retrying" || st.LastError == "" || st.NextAttempt == nil || st.OldestAge <= 0 {
		t.Errorf("status during the outage = %+v, want retrying with the last error, next attempt and age", st)
	}

	recv := newReceiverOn(t, addr, nil)
	got := recv.waitFor(t, len(want), 120*time.Second)
	if !reflect.DeepEqual(seqs(got), want) {
		t.Fatalf("delivered %d events, not the %d published ones in order", len(got), len(want))
	}
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == want[len(want)-1] })
	if st := s.status(hook.UUID); st.Lag != 0 || st.State != "active" || st.Attempts != 0 {
		t.Errorf("status after the catch-up = %+v, want active with no lag", st)
	}
	if n := len(recv.got()); n != len(want) {
		t.Errorf("receiver got %d requests, want %d", n, len(want))
	}
}

func TestReplayFromSeq(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook := s.createWebhook("task.created", recv.URL)
	var published []uint64
	for i := range 5 {
		published = append(published, s.publish(eventBody("task.created", map[string]int{"n": i})).Seq)
		s.publish(eventBody("task.updated", map[string]int{"n": i}))
	}
	recv.waitFor(t, 5, 10*time.Second)
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == published[4] })

	answer := s.post("/api/v1/webhooks/"+hook.UUID+"/replay", map[string]uint64{"seq": published[2]}, http.StatusOK)
	if !strings.Contains(string(answer), fmt.Sprintf(`"fromSeq":%d`, published[2])) {
		t.Errorf("replay answer = %s", answer)
	}
	got := recv.waitFor(t, 8, 10*time.Second)
	if want := append(append([]uint64{}, published...), published[2:]...); !reflect.DeepEqual(seqs(got), want) {
		t.Errorf("delivered seqs = %v, want %v", seqs(got), want)
	}

	// The replayed attempts carry the replay trigger.
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == published[4] })
	list, _ := s.executions("/api/v1/webhooks/" + hook.UUID + "/executions")
	if list[0].Trigger != "replay" || list[len(list)-1].Trigger != "scheduled" {
		t.Errorf("triggers newest %q, oldest %q; want replay and scheduled", list[0].Trigger, list[len(list)-1].Trigger)
	}

	// New events after the replay are delivered live.
	next := s.publish(eventBody("task.created", map[string]int{"n": 9}))
	if got := recv.waitFor(t, 9, 10*time.Second); got[8].Seq != next.Seq {
		t.Errorf("after the replay got seq %d, want %d", got[8].Seq, next.Seq)
	}
}

func TestReplayFromTime(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook := s.createWebhook("task.created", recv.URL)
	first := s.publish(eventBody("task.created", map[string]int{"n": 1}))
	second := s.publish(eventBody("task.created", map[string]int{"n": 2}))
	recv.waitFor(t, 2, 10*time.Second)
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == second.Seq })

	s.post("/api/v1/webhooks/"+hook.UUID+"/replay", map[string]string{"time": second.Timestamp}, http.StatusOK)
	got := recv.waitFor(t, 3, 10*time.Second)
	if want := []uint64{first.Seq, second.Seq, second.Seq}; !reflect.DeepEqual(seqs(got), want) {
		t.Errorf("delivered seqs = %v, want %v", seqs(got), want)
	}
}

func TestReplayOutsideLog(t *testing.T) {
	s := start(t, t.TempDir())
	hook := s.createWebhook("task.created", "http://127.0.0.1:1/never")
	s.publish(eventBody("task.created", map[string]int{"n": 1}))

	for _, tt := range []struct {
		body     any
		mentions string
	}{
		{map[string]uint64{"seq": 0}, "seqs 1 to 2"},
		{map[string]uint64{"seq": 99}, "seqs 1 to 2"},
		{map[string]string{"time": "2999-01-01T00:00:00Z"}, "no event"},
		{map[string]string{"time": "yesterday"}, "yesterday"},
		{map[string]any{}, "seq"},
		{map[string]any{"seq": 1, "time": "2020-01-01T00:00:00Z"}, "exactly one"},
	} {
		resp, body := s.do(http.MethodPost, "/api/v1/webhooks/"+hook.UUID+"/replay", tt.body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tt.mentions) {
			t.Errorf("replay %v = %d %s, want 400 mentioning %s", tt.body, resp.StatusCode, body, tt.mentions)
		}
	}
	resp, _ := s.do(http.MethodPost, "/api/v1/webhooks/no-such-id/replay", map[string]uint64{"seq": 1})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("replay of an unknown webhook = %d, want 404", resp.StatusCode)
	}
}

// Replay and live appends racing each other keep order and lose nothing:
// from the replay's start the receiver sees every later event in order.
func TestReplayRacesLiveAppends(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook := s.createWebhook("task.created", recv.URL)
	base := s.publishMany("task.created", 50)
	recv.waitFor(t, 50, 10*time.Second)

	var mu sync.Mutex
	published := append([]uint64{}, base...)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 50 {
				rec := s.publish(eventBody("task.created", map[string]int{"live": i}))
				mu.Lock()
				published = append(published, rec.Seq)
				mu.Unlock()
			}
		})
	}
	s.post("/api/v1/webhooks/"+hook.UUID+"/replay", map[string]uint64{"seq": base[10]}, http.StatusOK)
	wg.Wait()

	mu.Lock()
	last := published[len(published)-1]
	for _, seq := range published {
		last = max(last, seq)
	}
	mu.Unlock()
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == last })

	// Find where the replay restarted: the last time the seq went down.
	got := seqs(recv.got())
	restart := 0
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			restart = i
		}
	}
	if got[restart] != base[10] {
		t.Fatalf("replay restarted at seq %d, want %d", got[restart], base[10])
	}

	var want []uint64
	for _, seq := range published {
		if seq >= base[10] {
			want = append(want, seq)
		}
	}
	sortSeqs(want)
	if !reflect.DeepEqual(got[restart:], want) {
		t.Errorf("after the replay got %d events, want the %d from seq %d in order", len(got[restart:]), len(want), base[10])
	}
}

func sortSeqs(s []uint64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestRedeliverOneEvent(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook := s.createWebhook("task.created", recv.URL)
	first := s.publish(eventBody("task.created", map[string]int{"n": 1}))
	second := s.publish(eventBody("task.created", map[string]int{"n": 2}))
	recv.waitFor(t, 2, 10*time.Second)
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == second.Seq })

	answer := s.post("/api/v1/webhooks/"+hook.UUID+"/redeliver", map[string]uint64{"seq": first.Seq}, http.StatusOK)
	var attempt executionJSON
	if err := json.Unmarshal(answer, &attempt); err != nil {
		t.Fatalf("decode %s: %v", answer, err)
	}
	if attempt.Trigger != "manual" || !attempt.Delivered || attempt.Seq != first.Seq {
		t.Errorf("redelivery = %+v, want a delivered manual attempt at seq %d", attempt, first.Seq)
	}
	got := recv.waitFor(t, 3, 10*time.Second)
	if got[2].Seq != first.Seq || got[2].WebhookID != first.ID {
		t.Errorf("third request = seq %d id %s, want seq %d id %s", got[2].Seq, got[2].WebhookID, first.Seq, first.ID)
	}
	if st := s.status(hook.UUID); st.Cursor != second.Seq {
		t.Errorf("cursor = %d, want %d: a redelivery does not move it", st.Cursor, second.Seq)
	}

	other := s.publish(eventBody("task.updated", map[string]int{"n": 3}))
	resp, body := s.do(http.MethodPost, "/api/v1/webhooks/"+hook.UUID+"/redeliver", map[string]uint64{"seq": other.Seq})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "task.updated") {
		t.Errorf("redeliver of another event = %d %s, want 400", resp.StatusCode, body)
	}
}

func TestPauseAndResume(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook := s.createWebhook("task.created", recv.URL)
	first := s.publish(eventBody("task.created", map[string]int{"n": 1}))
	recv.waitFor(t, 1, 10*time.Second)

	answer := s.post("/api/v1/webhooks/"+hook.UUID+"/pause", nil, http.StatusOK)
	if !strings.Contains(string(answer), `"state":"paused"`) {
		t.Fatalf("pause answer = %s", answer)
	}
	var held []uint64
	for i := range 3 {
		held = append(held, s.publish(eventBody("task.created", map[string]int{"n": 2 + i})).Seq)
	}
	st := s.status(hook.UUID)
	if st.State != "paused" || st.Cursor != first.Seq || st.Lag != 3 {
		t.Errorf("status while paused = %+v, want paused at cursor %d with lag 3", st, first.Seq)
	}

	s.post("/api/v1/webhooks/"+hook.UUID+"/resume", nil, http.StatusOK)
	got := recv.waitFor(t, 4, 10*time.Second)
	if !reflect.DeepEqual(seqs(got[1:]), held) {
		t.Errorf("after resume got %v, want %v", seqs(got[1:]), held)
	}
	// Nothing arrived while paused: exactly four requests in all.
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == held[2] })
	if n := len(recv.got()); n != 4 {
		t.Errorf("receiver got %d requests, want 4", n)
	}
}

// Parked events are delivered when replayed after the receiver is fixed,
// and leave the parked list.
func TestParkedReplayAfterFix(t *testing.T) {
	s := startWith(t, t.TempDir(), func(cfg *Config) { cfg.Delivery.Policy.MaxAttempts = 2 })
	var mu sync.Mutex
	fixed := false
	recv := newReceiver(t, func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if fixed {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	hook := s.createWebhook("task.created", recv.URL)
	var parked []uint64
	for i := range 3 {
		parked = append(parked, s.publish(eventBody("task.created", map[string]int{"n": i})).Seq)
	}
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == parked[2] })
	if st := s.status(hook.UUID); st.Parked != 3 {
		t.Fatalf("parked = %d, want 3", st.Parked)
	}

	mu.Lock()
	fixed = true
	mu.Unlock()

	// One now, then the rest in the background.
	answer := s.post(fmt.Sprintf("/api/v1/webhooks/%s/parked/%d/replay", hook.UUID, parked[0]), nil, http.StatusOK)
	if !strings.Contains(string(answer), `"trigger":"replay"`) || !strings.Contains(string(answer), `"delivered":true`) {
		t.Errorf("replay of one parked event = %s", answer)
	}
	answer = s.post("/api/v1/webhooks/"+hook.UUID+"/parked/replay", nil, http.StatusAccepted)
	if !strings.Contains(string(answer), `"replaying":2`) {
		t.Errorf("replay of all parked events = %s", answer)
	}

	deadline := time.Now().Add(10 * time.Second)
	for s.status(hook.UUID).Parked != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("parked events left: %d", s.status(hook.UUID).Parked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := seqs(recv.got())
	if tail := got[len(got)-3:]; !reflect.DeepEqual(tail, parked) {
		t.Errorf("last deliveries = %v, want the parked %v in order", tail, parked)
	}
}

func TestDropParked(t *testing.T) {
	s := startWith(t, t.TempDir(), func(cfg *Config) { cfg.Delivery.Policy.MaxAttempts = 1 })
	recv := newReceiver(t, func(int) int { return http.StatusInternalServerError })
	hook := s.createWebhook("task.created", recv.URL)
	var parked []uint64
	for i := range 3 {
		parked = append(parked, s.publish(eventBody("task.created", map[string]int{"n": i})).Seq)
	}
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == parked[2] })

	resp, _ := s.do(http.MethodDelete, fmt.Sprintf("/api/v1/webhooks/%s/parked/%d", hook.UUID, parked[1]), nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("drop one = %d, want 204", resp.StatusCode)
	}
	resp, _ = s.do(http.MethodDelete, fmt.Sprintf("/api/v1/webhooks/%s/parked/%d", hook.UUID, parked[1]), nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("drop one twice = %d, want 404", resp.StatusCode)
	}
	resp, body := s.do(http.MethodDelete, "/api/v1/webhooks/"+hook.UUID+"/parked", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"dropped":2`) {
		t.Errorf("drop all = %d %s, want 2 dropped", resp.StatusCode, body)
	}
	if st := s.status(hook.UUID); st.Parked != 0 {
		t.Errorf("parked after drop = %d, want 0", st.Parked)
	}
}

func TestStartPositions(t *testing.T) {
	s := start(t, t.TempDir())
	first := s.publish(eventBody("task.created", map[string]int{"n": 1}))
	second := s.publish(eventBody("task.created", map[string]int{"n": 2}))
	created := []uint64{first.Seq, second.Seq} // every task.created so far

	tests := []struct {
		name  string
		start any
		from  uint64 // the first seq the webhook gets; 0 for only later events
	}{
		{"all", "all", first.Seq},
		{"seq", second.Seq, second.Seq},
		{"seq string", fmt.Sprint(second.Seq), second.Seq},
		{"time", second.Timestamp, second.Seq},
		{"new", "new", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := newReceiver(t, nil)
			resp, body := s.do(http.MethodPost, "/api/v1/webhooks", map[string]any{"event": "task.created", "url": recv.URL, "start": tt.start})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("create: %d %s", resp.StatusCode, body)
			}

			later := s.publish(eventBody("task.created", map[string]string{"after": tt.name}))
			var want []uint64
			for _, seq := range created {
				if tt.from != 0 && seq >= tt.from {
					want = append(want, seq)
				}
			}
			want = append(want, later.Seq)
			created = append(created, later.Seq)

			got := recv.waitFor(t, len(want), 10*time.Second)
			if !reflect.DeepEqual(seqs(got), want) {
				t.Errorf("delivered %v, want %v", seqs(got), want)
			}
		})
	}

	for _, bad := range []any{"yesterday", 0, -1, 1.5, 9999, true} {
		resp, body := s.do(http.MethodPost, "/api/v1/webhooks", map[string]any{"event": "task.created", "url": "http://127.0.0.1:1/", "start": bad})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "start") {
			t.Errorf("start %v = %d %s, want 400 naming start", bad, resp.StatusCode, body)
		}
	}
}

func TestStatusOfAllWebhooks(t *testing.T) {
	s := start(t, t.TempDir())
	a := s.createWebhook("task.created", "http://127.0.0.1:1/a")
	b := s.createWebhook("preset.created", "http://127.0.0.1:1/b")
	s.post("/api/v1/webhooks/"+b.UUID+"/pause", nil, http.StatusOK)

	resp, body := s.do(http.MethodGet, "/api/v1/webhooks/status", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	var list []struct {
		WebhookID string `json:"webhookId"`
		State     string `json:"state"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	states := map[string]string{}
	for _, st := range list {
		states[st.WebhookID] = st.State
	}
	if len(list) != 2 || states[b.UUID] != "paused" || (states[a.UUID] != "active" && states[a.UUID] != "retrying") {
		t.Errorf("statuses = %+v, want a active or retrying and b paused", list)
	}
}
