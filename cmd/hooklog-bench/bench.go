package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bench holds a run's settings and results.
type bench struct {
	binary string
	root   string
	sizes  sizes
	log    io.Writer

	results   []result
	baselines map[string]float64 // by name, such as "null-1"
	runs      int                // data directories made so far
}

// result is one row of the report.
type result struct {
	scenario   string
	value      string
	baseline   string
	ratio      string
	target     string
	met        string // "yes", "no" or empty
	peakRSS    string
	goroutines string
}

func (b *bench) add(r result) {
	b.results = append(b.results, r)
	if r.baseline == "" {
		fmt.Fprintf(b.log, "  %s: %s\n", r.scenario, r.value)
		return
	}
	fmt.Fprintf(b.log, "  %s: %s (baseline %s, ratio %s)\n", r.scenario, r.value, r.baseline, orDash(r.ratio))
}

func (b *bench) printTable(w io.Writer) {
	fmt.Fprintln(w, "| scenario | result | baseline (same run) | ratio | target | met | peak RSS | goroutines |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range b.results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.scenario, r.value, orDash(r.baseline), orDash(r.ratio), orDash(r.target), orDash(r.met), orDash(r.peakRSS), orDash(r.goroutines))
	}
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// newDataDir returns a new, empty data directory under the run's root.
func (b *bench) newDataDir() string {
	b.runs++
	return filepath.Join(b.root, fmt.Sprintf("data-%d", b.runs))
}

// client is the bench's HTTP client: keep-alive connections, enough of them
// for every concurrency level.
var client = &http.Client{
	Timeout: 60 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     time.Minute,
	},
}

// server is a hooklog process under measurement.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *os.File

	peakGoroutines atomic.Int64
	peakAnon       atomic.Int64 // bytes of anonymous memory: the heap and stacks, not mapped files
	stopSampling   chan struct{}
	sampled        sync.WaitGroup
}

// startServer starts hooklog on a free loopback port with dir as its data
// directory and waits until it answers /health. Retries are short so that a
// receiver coming back is retried within a second.
func (b *bench) startServer(dir string, extra ...string) (*server, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "..", filepath.Base(dir)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}

	args := append([]string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--data", dir,
		"--retry-schedule", "100ms,200ms,400ms", "--retry-max-delay", "1s", "--log-level", "error",
		"--max-body-bytes", "16777216", "--max-event-bytes", "1048576"}, extra...)
	cmd := exec.Command(b.binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile

	began := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, 0, err
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: logFile, stopSampling: make(chan struct{})}
	for {
		resp, err := client.Get(s.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(began) > 60*time.Second {
			s.kill()
			return nil, 0, fmt.Errorf("hooklog did not respond to /health within a minute; see %s", logFile.Name())
		}
		time.Sleep(2 * time.Millisecond)
	}
	ready := time.Since(began)

	s.sampled.Add(1)
	go s.sampleUsage()
	return s, ready, nil
}

// sampleUsage keeps the highest RssAnon of the process, read every 100 ms,
// and the highest go_goroutines on /metrics, scraped every second. A
// scrape computes the lag of every webhook, so scraping more often than
// that would measure the bench's own load; Prometheus scrapes every 15 s
// by default.
func (s *server) sampleUsage() {
	defer s.sampled.Done()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for tick := 0; ; tick++ {
		s.sample(tick%10 == 0)
		select {
		case <-ticker.C:
		case <-s.stopSampling:
			return
		}
	}
}

// sample keeps the current anonymous memory, and the current goroutines
// when goroutines is true, where they are new peaks.
func (s *server) sample(goroutines bool) {
	if goroutines {
		if n, err := s.metric("go_goroutines"); err == nil {
			storeMax(&s.peakGoroutines, int64(n))
		}
	}
	storeMax(&s.peakAnon, s.status("RssAnon:"))
}

// storeMax sets peak to v if v is higher.
func storeMax(peak *atomic.Int64, v int64) {
	for old := peak.Load(); v > old && !peak.CompareAndSwap(old, v); old = peak.Load() {
	}
}

// metric reads one unlabelled metric from /metrics.
func (s *server) metric(name string) (float64, error) {
	resp, err := client.Get(s.url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// peakRSS returns the process's peak resident set size, from VmHWM. It
// counts the pages of Badger's memory-mapped files that the process has
// touched, which the kernel reclaims as page cache under memory pressure.
func (s *server) peakRSS() int64 {
	return s.status("VmHWM:")
}

// status reads a size field of /proc/PID/status, in bytes.
func (s *server) status(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if value, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeak starts a new peak RSS measurement (Linux: writing 5 to
// clear_refs resets VmHWM).
func (s *server) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
	s.peakGoroutines.Store(0)
	s.peakAnon.Store(0)
}

// usage returns the peak RSS, with its anonymous part, and the peak
// goroutines as report cells. It samples once first, so a scenario shorter
// than the sampler's period still counts its goroutines.
func (s *server) usage() (string, string) {
	s.sample(true)
	return fmt.Sprintf("%.0f MB (anon %.0f MB)", float64(s.peakRSS())/1e6, float64(s.peakAnon.Load())/1e6),
		strconv.FormatInt(s.peakGoroutines.Load(), 10)
}

// stop ends the server with SIGTERM and waits for it.
func (s *server) stop() error {
	close(s.stopSampling)
	s.sampled.Wait()
	defer s.stderr.Close()

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		return fmt.Errorf("hooklog did not stop within 30 s of SIGTERM")
	}
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.stderr.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// post sends a JSON body and returns the answer, failing on a non-2xx status.
func post(url string, body []byte) ([]byte, error) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, answer)
	}
	return answer, nil
}

// createWebhook registers a webhook and returns its id.
func (s *server) createWebhook(event, url, start string) (string, error) {
	body, _ := json.Marshal(map[string]string{"event": event, "url": url, "start": start})
	answer, err := post(s.url+"/api/v1/webhooks", body)
	if err != nil {
		return "", err
	}
	var hook struct {
		UUID string `json:"uuid"`
	}
	return hook.UUID, json.Unmarshal(answer, &hook)
}

// eventBody returns a publish body with data of about size bytes.
func eventBody(event string, size int, sent int64) []byte {
	pad := strings.Repeat("x", max(0, size-40))
	return fmt.Appendf(nil, `{"event":%q,"data":{"sent":%d,"pad":%q}}`, event, sent, pad)
}

// publishMany appends n events in arrays of up to 500.
func (s *server) publishMany(event string, n, size int) error {
	for done := 0; done < n; {
		batch := min(500, n-done)
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i := range batch {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(eventBody(event, size, 0))
		}
		buf.WriteByte(']')
		if _, err := post(s.url+"/api/v1/events", buf.Bytes()); err != nil {
			return err
		}
		done += batch
	}
	return nil
}

// runNull is the null receiver process of the baselines: it reads each
// request body and answers 204.
func runNull(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: hooklog-bench null PORT")
		return 2
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Addr: "127.0.0.1:" + args[0], Handler: handler}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// closedLoop runs clients goroutines that call do until d has passed and
// returns the completed calls per second.
func closedLoop(ctx context.Context, clients int, d time.Duration, do func() error) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	began := time.Now()
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := do(); err != nil {
					once.Do(func() { firstErr = err })
					cancel()
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(began).Seconds(), firstErr
}
