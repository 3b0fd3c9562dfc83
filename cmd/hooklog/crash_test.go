package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Sizes and deadlines of the crash test. The deadlines are generous because
// the test runs under -race on shared machines. Each wait ends as soon as its
// condition holds.
const (
	crashClients         = 8
	crashAckedBeforeKill = 200
	crashStartTimeout    = 30 * time.Second
	crashPublishTimeout  = 60 * time.Second
	crashDeliverTimeout  = 30 * time.Second
	crashStopTimeout     = 10 * time.Second
	crashPollInterval    = 10 * time.Millisecond
)

// TestCrashKeepsAcknowledgedEvents publishes from several clients, kills the
// server with SIGKILL while they publish and restarts it on the same data
// directory. Then every acknowledged event must be in the log exactly once,
// at its acknowledged seq, and the seqs must have no gaps. The receiver must
// get every task.created event in log order. Only the event in flight at the
// crash may arrive twice.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it twice; skipped with -short")
	}

	binary := buildHooklog(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	port := freePort(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: crashClients}}
	t.Cleanup(client.CloseIdleConnections)

	receiver := newRecordingReceiver()
	receiverServer := httptest.NewServer(receiver)
	t.Cleanup(receiverServer.Close)

	first := startHooklog(t, binary, port, dataDir, "first run")
	registerWebhook(t, client, first.baseURL, "task.created", receiverServer.URL+"/hook")

	// Publish until enough events are acknowledged and delivery has begun,
	// then kill the server while the clients are still publishing.
	killed := make(chan struct{})
	closeKilled := sync.OnceFunc(func() { close(killed) })
	var acked atomic.Int64
	results := make([]clientResult, crashClients)
	var clients sync.WaitGroup
	for c := range crashClients {
		clients.Go(func() {
			results[c] = publishUntilKilled(t, client, first.baseURL, c, killed, &acked)
		})
	}
	// If the test stops early, the clients must still end before it returns.
	t.Cleanup(func() {
		closeKilled()
		first.kill()
		clients.Wait()
	})

	waitFor(t, crashPublishTimeout, "acknowledged events and a first delivery before the kill", func() bool {
		return acked.Load() >= crashAckedBeforeKill && receiver.count() > 0
	})
	closeKilled()
	first.kill()
	clients.Wait()

	deliveredBeforeCrash := receiver.count()
	receiver.startPhase(phaseAfterRestart)

	// Restart on the same data directory and port, and read the whole log.
	second := startHooklog(t, binary, port, dataDir, "second run")
	records := readLog(t, client, second.baseURL)

	head := healthHead(t, client, second.baseURL)
	if got, want := uint64(len(records)), head; got != want {
		t.Errorf("log after restart has %d records, want %d (the head in /health)", got, want)
	}
	for i, r := range records {
		if got, want := r.Seq, uint64(i+1); got != want {
			t.Fatalf("record %d of the log has seq %d, want %d (seqs must be 1, 2, 3, … with no gaps or duplicates)", i, got, want)
		}
	}

	if len(records) == 0 {
		t.Fatal("log after restart is empty, want the webhook.created record and the published events")
	}
	if got, want := records[0].Event, "webhook.created"; got != want {
		t.Errorf("seq 1 has event %q, want %q", got, want)
	}
	if got, want := records[0].Source, "internal"; got != want {
		t.Errorf("seq 1 has source %q, want %q", got, want)
	}

	// Map every published event in the log back to the request that sent it.
	logged := make(map[publishKey]logRecord)
	var taskSeqs []uint64
	for _, r := range records[1:] {
		if r.Event != "task.created" {
			t.Errorf("seq %d has event %q, want task.created", r.Seq, r.Event)
			continue
		}
		if got, want := r.Source, "published"; got != want {
			t.Errorf("seq %d has source %q, want %q", r.Seq, got, want)
		}

		var key publishKey
		if err := json.Unmarshal(r.Data, &key); err != nil {
			t.Errorf("seq %d has data %s that does not decode as {client, n}: %v", r.Seq, r.Data, err)
			continue
		}
		if key.Client < 0 || key.Client >= crashClients || key.N < 0 || key.N >= results[key.Client].sent {
			t.Errorf("seq %d has data %s, which no client sent", r.Seq, r.Data)
			continue
		}
		if got, want := string(r.Data), string(eventData(key)); got != want {
			t.Errorf("seq %d has data %s, want %s byte for byte", r.Seq, got, want)
		}
		if earlier, ok := logged[key]; ok {
			t.Errorf("client %d request %d is in the log twice, at seq %d and seq %d", key.Client, key.N, earlier.Seq, r.Seq)
			continue
		}

		logged[key] = r
		taskSeqs = append(taskSeqs, r.Seq)
	}

	// Every acknowledged event is in the log exactly once, at its seq.
	ackedTotal, unackedInLog := 0, 0
	for c, result := range results {
		for n, published := range result.acked {
			ackedTotal++
			key := publishKey{Client: c, N: n}
			r, ok := logged[key]
			if !ok {
				t.Errorf("client %d request %d was acknowledged with seq %d but is missing from the log", c, n, published.Seq)
				continue
			}
			if got, want := r.Seq, published.Seq; got != want {
				t.Errorf("client %d request %d is at seq %d, want seq %d from its 201 response", c, n, got, want)
			}
			if got, want := r.ID, published.ID; got != want {
				t.Errorf("client %d request %d has id %q in the log, want %q from its 201 response", c, n, got, want)
			}
			if got, want := r.Timestamp, published.Timestamp; got != want {
				t.Errorf("client %d request %d has timestamp %q in the log, want %q from its 201 response", c, n, got, want)
			}
		}
	}
	for key := range logged {
		if _, ok := results[key.Client].acked[key.N]; !ok {
			unackedInLog++
		}
	}
	t.Logf("%d events acknowledged, %d unacknowledged events in the log, head %d", ackedTotal, unackedInLog, head)

	// The receiver gets every task.created event in the log, including
	// those committed just before the kill whose client saw no response.
	waitFor(t, crashDeliverTimeout, "delivery of every task.created event in the log", func() bool {
		return receiver.covers(taskSeqs)
	})
	deliveries := receiver.snapshot()
	t.Logf("%d deliveries before the crash, %d after the restart", deliveredBeforeCrash, len(deliveries)-deliveredBeforeCrash)

	bySeq := make(map[uint64]logRecord, len(records))
	for _, r := range records {
		bySeq[r.Seq] = r
	}
	for i, d := range deliveries {
		if i > 0 && d.seq < deliveries[i-1].seq {
			t.Errorf("delivery %d has seq %d after seq %d, want non-decreasing seqs", i, d.seq, deliveries[i-1].seq)
		}

		r, ok := bySeq[d.seq]
		if !ok || r.Event != "task.created" {
			t.Errorf("delivery %d has seq %d, which is not a task.created event in the log", i, d.seq)
			continue
		}
		if got, want := d.webhookID, r.ID; got != want {
			t.Errorf("delivery of seq %d has webhook-id %q, want the event id %q", d.seq, got, want)
		}

		var body deliveredBody
		if err := json.Unmarshal(d.body, &body); err != nil {
			t.Errorf("delivery of seq %d has body %s that is not the delivery JSON: %v", d.seq, d.body, err)
			continue
		}
		if got, want := body.Event, r.Event; got != want {
			t.Errorf("delivery of seq %d has event %q, want %q", d.seq, got, want)
		}
		if got, want := body.Timestamp, r.Timestamp; got != want {
			t.Errorf("delivery of seq %d has timestamp %q, want the log's %q", d.seq, got, want)
		}
		if !bytes.Equal(body.Data, r.Data) {
			t.Errorf("delivery of seq %d has data %s, want the log's %s byte for byte", d.seq, body.Data, r.Data)
		}
	}

	// Only the event in flight at the crash may arrive twice: once from the
	// killed process and once after the restart.
	phasesBySeq := make(map[uint64][]int)
	for _, d := range deliveries {
		phasesBySeq[d.seq] = append(phasesBySeq[d.seq], d.phase)
	}
	var duplicated []uint64
	for seq, phases := range phasesBySeq {
		if len(phases) == 1 {
			continue
		}
		duplicated = append(duplicated, seq)
		if got, want := len(phases), 2; got != want {
			t.Errorf("seq %d was delivered %d times, want at most %d", seq, got, want)
			continue
		}
		if phases[0] != phaseBeforeCrash || phases[1] != phaseAfterRestart {
			t.Errorf("seq %d was delivered twice in phases %v, want once before the crash and once after the restart", seq, phases)
		}
	}
	if got, want := len(duplicated), 1; got > want {
		t.Errorf("seqs %v were delivered more than once, want at most %d (the event in flight at the crash)", duplicated, want)
	}

	second.terminate(t)
}

// publishKey identifies one publish request, and is also its event data.
type publishKey struct {
	Client int `json:"client"`
	N      int `json:"n"`
}

func eventData(key publishKey) []byte {
	return fmt.Appendf(nil, `{"client":%d,"n":%d}`, key.Client, key.N)
}

// publishResponse is the body of a 201 response to POST /api/v1/events.
type publishResponse struct {
	Seq       uint64 `json:"seq"`
	ID        string `json:"id"`
	Event     string `json:"event"`
	Timestamp string `json:"timestamp"`
}

// clientResult is what one publishing client saw.
type clientResult struct {
	sent  int                     // requests sent: n ran from 0 to sent-1
	acked map[int]publishResponse // by n, the requests that got a 201 response
}

// publishUntilKilled publishes task.created events one after another until a
// request fails after killed is closed. A failure before that fails the test.
func publishUntilKilled(t *testing.T, client *http.Client, baseURL string, clientID int, killed <-chan struct{}, acked *atomic.Int64) clientResult {
	result := clientResult{acked: make(map[int]publishResponse)}
	for n := 0; ; n++ {
		key := publishKey{Client: clientID, N: n}
		body := fmt.Appendf(nil, `{"event":"task.created","data":%s}`, eventData(key))
		result.sent++

		published, err := publish(client, baseURL, body)
		if err != nil {
			select {
			case <-killed:
			default:
				t.Errorf("client %d request %d failed before the kill: %v", clientID, n, err)
			}
			return result
		}

		if published.Seq == 0 || published.Event != "task.created" {
			t.Errorf("client %d request %d got 201 with %+v, want a seq from 1 and event task.created", clientID, n, published)
		}
		result.acked[n] = published
		acked.Add(1)
	}
}

// publish sends one event and returns the 201 response. Any other status is
// returned as an error.
func publish(client *http.Client, baseURL string, body []byte) (publishResponse, error) {
	resp, err := client.Post(baseURL+"/api/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		return publishResponse{}, err
	}
	defer resp.Body.Close()

	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return publishResponse{}, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return publishResponse{}, fmt.Errorf("status %d, want 201: %s", resp.StatusCode, raw)
	}

	var published publishResponse
	if err := json.Unmarshal(raw, &published); err != nil {
		return publishResponse{}, fmt.Errorf("decode response %s: %w", raw, err)
	}
	return published, nil
}

// logRecord is one element of GET /api/v1/events.
type logRecord struct {
	Seq       uint64          `json:"seq"`
	ID        string          `json:"id"`
	Event     string          `json:"event"`
	Timestamp string          `json:"timestamp"`
	Source    string          `json:"source"`
	Data      json.RawMessage `json:"data"`
}

// readLog reads the whole log, 1000 records per request.
func readLog(t *testing.T, client *http.Client, baseURL string) []logRecord {
	t.Helper()

	var records []logRecord
	after := uint64(0)
	for {
		url := baseURL + "/api/v1/events?after=" + strconv.FormatUint(after, 10) + "&limit=1000"
		var page []logRecord
		getJSON(t, client, url, &page)
		if len(page) == 0 {
			return records
		}

		records = append(records, page...)
		after = page[len(page)-1].Seq
	}
}

func healthHead(t *testing.T, client *http.Client, baseURL string) uint64 {
	t.Helper()

	var health struct {
		Head uint64 `json:"head"`
	}
	getJSON(t, client, baseURL+"/health", &health)
	return health.Head
}

func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()

	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()

	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read response: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200: %s", url, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("GET %s: decode response %s: %v", url, raw, err)
	}
}

func registerWebhook(t *testing.T, client *http.Client, baseURL, event, url string) {
	t.Helper()

	body, err := json.Marshal(map[string]string{"event": event, "url": url})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(baseURL+"/api/v1/webhooks", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	defer resp.Body.Close()

	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create webhook: status %d, want 200: %s", resp.StatusCode, raw)
	}
}

// Phases of a delivery: sent by the killed process or by the restarted one.
const (
	phaseBeforeCrash  = 0
	phaseAfterRestart = 1
)

// receivedDelivery is one request the receiver got.
type receivedDelivery struct {
	seq       uint64 // from X-Hooklog-Sequence
	webhookID string // from webhook-id
	body      []byte
	phase     int
}

// deliveredBody is the JSON body of a delivery.
type deliveredBody struct {
	Event     string          `json:"event"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// recordingReceiver is a webhook receiver that stores every delivery in the
// order the requests arrive and responds with 200.
type recordingReceiver struct {
	mu         sync.Mutex // guards the fields below
	deliveries []receivedDelivery
	phase      int
}

func newRecordingReceiver() *recordingReceiver {
	return &recordingReceiver{phase: phaseBeforeCrash}
}

func (rr *recordingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender died mid-request, so this is not a delivery.
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}

	seq, err := strconv.ParseUint(r.Header.Get("X-Hooklog-Sequence"), 10, 64)
	if err != nil {
		http.Error(w, "invalid X-Hooklog-Sequence: "+err.Error(), http.StatusBadRequest)
		return
	}

	rr.mu.Lock()
	rr.deliveries = append(rr.deliveries, receivedDelivery{
		seq:       seq,
		webhookID: r.Header.Get("webhook-id"),
		body:      body,
		phase:     rr.phase,
	})
	rr.mu.Unlock()

	w.WriteHeader(http.StatusOK)
}

func (rr *recordingReceiver) startPhase(phase int) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.phase = phase
}

func (rr *recordingReceiver) count() int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.deliveries)
}

// covers reports whether every seq in seqs has been delivered.
func (rr *recordingReceiver) covers(seqs []uint64) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()

	delivered := make(map[uint64]bool, len(rr.deliveries))
	for _, d := range rr.deliveries {
		delivered[d.seq] = true
	}
	for _, seq := range seqs {
		if !delivered[seq] {
			return false
		}
	}
	return true
}

func (rr *recordingReceiver) snapshot() []receivedDelivery {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]receivedDelivery(nil), rr.deliveries...)
}

// buildHooklog builds the binary of this package into a temporary directory.
func buildHooklog(t *testing.T) string {
	t.Helper()

	binary := filepath.Join(t.TempDir(), "hooklog")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return binary
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// hooklogProcess is a running "hooklog server".
type hooklogProcess struct {
	name       string
	cmd        *exec.Cmd
	baseURL    string
	stderrPath string

	done    chan struct{} // closed when the process has exited
	waitErr error         // the error from cmd.Wait, read only after done is closed
}

// startHooklog starts the server on 127.0.0.1:port with short retry delays
// and waits until /health returns 200. The process is killed at cleanup if
// it is still running, and its stderr is logged if the test failed.
func startHooklog(t *testing.T, binary string, port int, dataDir, name string) *hooklogProcess {
	t.Helper()

	stderrPath := filepath.Join(t.TempDir(), "stderr.log")
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()

	cmd := exec.Command(binary, "server",
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--data", dataDir,
		"--retry-schedule", "50ms,100ms,200ms",
		"--retry-max-delay", "500ms",
	)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hooklog (%s): %v", name, err)
	}

	p := &hooklogProcess{
		name:       name,
		cmd:        cmd,
		baseURL:    "http://127.0.0.1:" + strconv.Itoa(port),
		stderrPath: stderrPath,
		done:       make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	// Cleanups run last in, first out: the kill runs before the log dump.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stderr of hooklog (%s):\n%s", p.name, p.stderr())
		}
	})
	t.Cleanup(p.kill)

	p.waitHealthy(t)
	return p
}

func (p *hooklogProcess) waitHealthy(t *testing.T) {
	t.Helper()

	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()

	deadline := time.Now().Add(crashStartTimeout)
	for {
		select {
		case <-p.done:
			t.Fatalf("hooklog (%s) exited before /health returned 200: %v", p.name, p.waitErr)
		default:
		}

		resp, err := client.Get(p.baseURL + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}

		if time.Now().After(deadline) {
			t.Fatalf("hooklog (%s): /health did not return 200 within %s (last error: %v)", p.name, crashStartTimeout, err)
		}
		time.Sleep(crashPollInterval)
	}
}

// kill sends SIGKILL unless the process has exited, and waits until it has.
// It is safe to call more than once.
func (p *hooklogProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}

	// Kill fails only when the process has exited meanwhile, which the wait
	// below also covers.
	_ = p.cmd.Process.Kill()
	<-p.done
}

// terminate sends SIGTERM and checks that the process exits with status 0
// within crashStopTimeout.
func (p *hooklogProcess) terminate(t *testing.T) {
	t.Helper()

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM to hooklog (%s): %v", p.name, err)
	}

	select {
	case <-p.done:
	case <-time.After(crashStopTimeout):
		t.Fatalf("hooklog (%s) did not exit within %s of SIGTERM", p.name, crashStopTimeout)
	}
	if p.waitErr != nil {
		t.Errorf("hooklog (%s) exited with %v after SIGTERM, want exit status 0", p.name, p.waitErr)
	}
}

func (p *hooklogProcess) stderr() string {
	out, err := os.ReadFile(p.stderrPath)
	if err != nil {
		return "(cannot read stderr: " + err.Error() + ")"
	}
	return string(out)
}

// waitFor polls condition until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, condition func() bool) {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(crashPollInterval)
	}
}
