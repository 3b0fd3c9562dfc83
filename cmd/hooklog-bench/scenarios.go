package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// receiver is a null receiver in the bench process: it counts deliveries
// and can record each one's latency from the "sent" time in its data.
type receiver struct {
	srv       *http.Server
	url       string
	count     atomic.Int64
	strays    atomic.Int64 // requests to other paths than only
	latency   bool
	only      string // when set, the one path counted; others get 503
	mu        sync.Mutex
	latencies []time.Duration
}

// startReceiver starts a receiver on addr. When only is not empty, the
// receiver counts requests to that path alone.
func startReceiver(addr string, latency bool, only string) (*receiver, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + l.Addr().String(), latency: latency, only: only}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(l)
	return r, nil
}

var sentKey = []byte(`"sent":`)

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.only != "" && req.URL.Path != r.only {
		r.strays.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.latency {
		if i := bytes.Index(body, sentKey); i >= 0 {
			rest := body[i+len(sentKey):]
			end := bytes.IndexByte(rest, ',')
			if sent, err := strconv.ParseInt(string(rest[:max(end, 0)]), 10, 64); err == nil && sent > 0 {
				d := time.Since(time.Unix(0, sent))
				r.mu.Lock()
				r.latencies = append(r.latencies, d)
				r.mu.Unlock()
			}
		}
	}
	r.count.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) close() {
	r.srv.Close()
}

// waitCount waits until the receiver has n deliveries and returns when the
// last one arrived, or fails after timeout.
func (r *receiver) waitCount(n int64, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for r.count.Load() < n {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("receiver got %d of %d deliveries within %s", r.count.Load(), n, timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Now(), nil
}

// baselines measures what the machine allows: a null HTTP handler in
// another process at each concurrency, the data directory's fsync and
// Badger's synced batch appends.
func (b *bench) measureBaselines(ctx context.Context) error {
	url, stop, err := startNull()
	if err != nil {
		return err
	}
	defer stop()

	body := eventBody("task.created", b.sizes.dataBytes, 0)
	for _, clients := range []int{1, 16, 64} {
		rate, err := closedLoop(ctx, clients, b.sizes.duration, func() error {
			_, err := post(url, body)
			return err
		})
		if err != nil {
			return err
		}
		b.baselines[fmt.Sprintf("null-%d", clients)] = rate
		b.add(result{scenario: fmt.Sprintf("baseline: null handler, %d clients, 1 KiB POST", clients), value: fmt.Sprintf("%.0f req/s", rate)})
	}

	fsync, err := measureFsync(b.root)
	if err != nil {
		return err
	}
	b.baselines["fsync"] = fsync.Seconds()
	b.add(result{scenario: "baseline: write 4 KiB and fsync in the data directory", value: fmt.Sprintf("%.0f µs each", float64(fsync.Microseconds()))})

	rate, err := measureBadger(filepath.Join(b.root, "badger-baseline"), b.sizes.dataBytes, b.sizes.duration)
	if err != nil {
		return err
	}
	b.baselines["badger"] = rate
	b.add(result{scenario: "baseline: Badger synced transactions of 100 × 1 KiB", value: fmt.Sprintf("%.0f events/s", rate)})
	return nil
}

// startNull starts the null handler in another process and returns its
// URL and the function that stops it.
func startNull() (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	null := exec.Command(self, "null", strconv.Itoa(port))
	if err := null.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		null.Process.Kill()
		null.Wait()
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("null handler did not start within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func measureFsync(dir string) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()

	block := make([]byte, 4096)
	const rounds = 500
	began := time.Now()
	for range rounds {
		if _, err := f.Write(block); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return time.Since(began) / rounds, nil
}

func measureBadger(dir string, size int, d time.Duration) (float64, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		return 0, err
	}
	defer db.Close()

	value := bytes.Repeat([]byte("x"), size)
	written := 0
	began := time.Now()
	for time.Since(began) < d {
		txn := db.NewTransaction(true)
		for range 100 {
			key := fmt.Appendf(nil, "e%016d", written)
			if err := txn.Set(key, value); err != nil {
				txn.Discard()
				return 0, err
			}
			written++
		}
		if err := txn.Commit(); err != nil {
			return 0, err
		}
	}
	return float64(written) / time.Since(began).Seconds(), nil
}

// publishThroughput measures acknowledged publishes per second at 1, 16
// and 64 concurrent clients. At each concurrency it alternates runs of the
// null handler and of hooklog, rounds times, and reports the medians: the
// two share the machine's cores, whose speed varies from one run to the
// next on a virtual machine.
func (b *bench) publishThroughput(ctx context.Context) error {
	s, _, err := b.startServer(b.newDataDir())
	if err != nil {
		return err
	}
	defer s.stop()
	nullURL, stopNull, err := startNull()
	if err != nil {
		return err
	}
	defer stopNull()

	body := eventBody("task.created", b.sizes.dataBytes, 0)
	for _, clients := range []int{1, 16, 64} {
		s.resetPeak()
		var runs alternation
		for range b.sizes.rounds {
			base, err := closedLoop(ctx, clients, b.sizes.duration, func() error {
				_, err := post(nullURL, body)
				return err
			})
			if err != nil {
				return err
			}
			rate, err := closedLoop(ctx, clients, b.sizes.duration, func() error {
				_, err := post(s.url+"/api/v1/events", body)
				return err
			})
			if err != nil {
				return err
			}
			runs.add(rate, base)
		}

		r := runs.result(fmt.Sprintf("publish, %d clients, 1 KiB, durable", clients), "events/s", "req/s null handler")
		if clients == 64 {
			r.target, r.met = "≥ 0.35", yesNo(runs.ratio() >= 0.35)
		}
		r.peakRSS, r.goroutines = s.usage()
		b.add(r)
	}
	return nil
}

// median returns the middle value of values, or the mean of the two middle
// ones.
func median(values []float64) float64 {
	sorted := slices.Sorted(slices.Values(values))
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// alternation collects the runs of a scenario that alternates the null
// handler and hooklog: hooklog's rate and the null handler's of each run.
type alternation struct {
	rates, bases, ratios []float64
}

func (a *alternation) add(rate, base float64) {
	a.rates = append(a.rates, rate)
	a.bases = append(a.bases, base)
	a.ratios = append(a.ratios, rate/base)
}

// ratio returns the median of the runs' ratios.
func (a *alternation) ratio() float64 {
	return median(a.ratios)
}

// result returns the report row of the runs, with their medians and the
// ratio of each run.
func (a *alternation) result(scenario, unit, baseUnit string) result {
	if len(a.ratios) > 1 {
		scenario += fmt.Sprintf(" (median of %d runs)", len(a.ratios))
	}
	parts := make([]string, len(a.ratios))
	for i, r := range a.ratios {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return result{
		scenario: scenario,
		value:    fmt.Sprintf("%.0f %s", median(a.rates), unit),
		baseline: fmt.Sprintf("%.0f %s, run before each", median(a.bases), baseUnit),
		ratio:    fmt.Sprintf("%.2f (runs: %s)", a.ratio(), strings.Join(parts, ", ")),
	}
}

func ratio(value, base float64) string {
	if base <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", value/base)
}

// startWithReceiver starts hooklog on a new data directory and a null
// receiver on a free loopback port, and returns a function that stops both.
func (b *bench) startWithReceiver(latency bool) (*server, *receiver, func(), error) {
	s, _, err := b.startServer(b.newDataDir())
	if err != nil {
		return nil, nil, nil, err
	}
	recv, err := startReceiver("127.0.0.1:0", latency, "")
	if err != nil {
		s.stop()
		return nil, nil, nil, err
	}
	return s, recv, func() {
		recv.close()
		s.stop()
	}, nil
}

// endToEndLatency publishes at fixed rates to one webhook and measures the
// time from sending each publish to its arrival at the receiver.
func (b *bench) endToEndLatency(ctx context.Context) error {
	s, recv, stop, err := b.startWithReceiver(true)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := s.createWebhook("task.created", recv.url+"/hook", "new"); err != nil {
		return err
	}

	var sent int64
	for _, rate := range []int{100, 1000, 5000} {
		s.resetPeak()
		recv.mu.Lock()
		recv.latencies = recv.latencies[:0]
		recv.mu.Unlock()

		n, err := openLoop(ctx, rate, b.sizes.duration, func() error {
			_, err := post(s.url+"/api/v1/events", eventBody("task.created", b.sizes.dataBytes, time.Now().UnixNano()))
			return err
		})
		if err != nil {
			return err
		}
		sent += n
		if _, err := recv.waitCount(sent, time.Minute); err != nil {
			return err
		}

		recv.mu.Lock()
		lat := slices.Clone(recv.latencies)
		recv.mu.Unlock()
		slices.Sort(lat)
		p50, p99, worst := percentile(lat, 0.5), percentile(lat, 0.99), lat[len(lat)-1]

		r := result{
			scenario: fmt.Sprintf("end-to-end latency at %d events/s (%d events)", rate, n),
			value:    fmt.Sprintf("p50 %s, p99 %s, max %s", ms(p50), ms(p99), ms(worst)),
			baseline: fmt.Sprintf("fsync %s", ms(time.Duration(b.baselines["fsync"]*float64(time.Second)))),
		}
		// An event waits for at least one fsync, its publish's, before it
		// is delivered. At 5,000 events/s the latency is a queue's length
		// instead, so that rate gets no ratio.
		if fsync := b.baselines["fsync"]; fsync > 0 && rate < 5000 {
			r.ratio = "p50 " + ratio(p50.Seconds(), fsync) + " × fsync"
		}
		if rate == 1000 {
			r.target, r.met = "p99 ≤ 5 ms", yesNo(p99 <= 5*time.Millisecond)
		}
		r.peakRSS, r.goroutines = s.usage()
		b.add(r)
	}
	return nil
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// openLoop calls do at a fixed rate for d, whatever the answers take, from
// a pool of goroutines, and returns how many calls it made.
func openLoop(ctx context.Context, rate int, d time.Duration, do func() error) (int64, error) {
	jobs := make(chan struct{}, rate)
	var made atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range jobs {
				if err := do(); err != nil {
					once.Do(func() { firstErr = err })
				}
				made.Add(1)
			}
		})
	}

	interval := time.Second / time.Duration(rate)
	began := time.Now()
	for i := 0; ; i++ {
		at := began.Add(time.Duration(i) * interval)
		if at.Sub(began) >= d || ctx.Err() != nil {
			break
		}
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return made.Load(), firstErr
}

// orderedDelivery measures one webhook's delivery rate, in order, to a
// receiver that answers at once, against the null handler's one-at-a-time
// rate. Like publishThroughput it alternates runs of the null handler and
// of hooklog, each hooklog run with a new server, and reports the medians.
// The catch-up compares its drain without load with the median rate too.
func (b *bench) orderedDelivery(ctx context.Context) error {
	nullURL, stopNull, err := startNull()
	if err != nil {
		return err
	}
	defer stopNull()

	n := b.sizes.deliveryEvents
	body := eventBody("task.created", b.sizes.dataBytes, 0)
	var runs alternation
	var peakRSS, goroutines string // of the run with the highest peak
	var highest int64
	for range b.sizes.rounds {
		base, err := closedLoop(ctx, 1, b.sizes.duration, func() error {
			_, err := post(nullURL, body)
			return err
		})
		if err != nil {
			return err
		}
		run, err := b.deliverInOrder(n)
		if err != nil {
			return err
		}
		runs.add(run.rate, base)
		if run.peak >= highest {
			highest, peakRSS, goroutines = run.peak, run.peakRSS, run.goroutines
		}
	}

	b.baselines["delivery"] = median(runs.rates)
	r := runs.result(fmt.Sprintf("one webhook, ordered delivery of %d events", n), "events/s", "req/s null handler, 1 client")
	r.target, r.met = "≥ 0.5", yesNo(runs.ratio() >= 0.5)
	r.peakRSS, r.goroutines = peakRSS, goroutines
	b.add(r)
	return nil
}

// deliveryRun is the outcome of one run of deliverInOrder.
type deliveryRun struct {
	rate                float64 // events per second
	peak                int64   // the server's peak RSS in bytes
	peakRSS, goroutines string  // report cells
}

// deliverInOrder publishes n events to a new server, then creates a webhook
// that starts at the first one, and measures its delivery rate.
func (b *bench) deliverInOrder(n int) (deliveryRun, error) {
	s, recv, stop, err := b.startWithReceiver(false)
	if err != nil {
		return deliveryRun{}, err
	}
	defer stop()

	if err := s.publishMany("task.created", n, b.sizes.dataBytes); err != nil {
		return deliveryRun{}, err
	}
	began := time.Now()
	if _, err := s.createWebhook("task.created", recv.url+"/hook", "all"); err != nil {
		return deliveryRun{}, err
	}
	end, err := recv.waitCount(int64(n), 10*time.Minute)
	if err != nil {
		return deliveryRun{}, err
	}

	run := deliveryRun{rate: float64(n) / end.Sub(began).Seconds(), peak: s.peakRSS()}
	run.peakRSS, run.goroutines = s.usage()
	return run, nil
}

// fanOut measures 100 webhooks subscribed to the same events.
func (b *bench) fanOut(ctx context.Context) error {
	s, recv, stop, err := b.startWithReceiver(false)
	if err != nil {
		return err
	}
	defer stop()

	const webhooks = 100
	for i := range webhooks {
		if _, err := s.createWebhook("task.created", fmt.Sprintf("%s/w/%d", recv.url, i), "new"); err != nil {
			return err
		}
	}

	n := b.sizes.fanoutEvents
	began := time.Now()
	if err := s.publishMany("task.created", n, b.sizes.dataBytes); err != nil {
		return err
	}
	end, err := recv.waitCount(int64(n*webhooks), 10*time.Minute)
	if err != nil {
		return err
	}

	rate := float64(n*webhooks) / end.Sub(began).Seconds()
	base := b.baselines["null-64"]
	r := result{
		scenario: fmt.Sprintf("fan-out: %d events to 100 webhooks", n),
		value:    fmt.Sprintf("%.0f deliveries/s", rate),
		baseline: fmt.Sprintf("%.0f req/s null handler, 64 clients", base),
		ratio:    ratio(rate, base),
	}
	r.peakRSS, r.goroutines = s.usage()
	b.add(r)
	return nil
}

// catchUp appends the backlog while the receivers of 100 webhooks are
// down, then brings one receiver back and measures how fast it drains. It
// compares the drain with live delivery in the same server, with the same
// log and the same 99 webhooks that keep failing, under the same load:
// windows in which livePublishers clients publish single events. In the
// drain's windows they publish an event that no webhook subscribes to.
// The server then does the same publishing work as in the live windows,
// where they publish the webhook's event. The data directory is kept for
// the restart scenario.
func (b *bench) catchUp(ctx context.Context) error {
	dir := b.newDataDir()
	b.baselines["catchup-dir"] = float64(b.runs)
	// Waits of up to 10 s keep the 99 webhooks that stay down from
	// retrying all the time, as the default of up to an hour would.
	s, _, err := b.startServer(dir, "--retry-max-delay", "10s")
	if err != nil {
		return err
	}
	defer s.stop()

	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := s.createWebhook("task.created", "http://"+addr+"/hook", "new"); err != nil {
		return err
	}
	// The 99 others share one port where nothing listens. It must differ
	// from the receiver's: a webhook that reached the receiver too would
	// be counted as the drain's deliveries.
	down, err := freePort()
	for err == nil && down == port {
		down, err = freePort()
	}
	if err != nil {
		return err
	}
	for i := range 99 {
		if _, err := s.createWebhook("task.created", fmt.Sprintf("http://127.0.0.1:%d/w/%d", down, i), "new"); err != nil {
			return err
		}
	}

	n := b.sizes.backlogEvents
	appendBegan := time.Now()
	if err := s.publishMany("task.created", n, b.sizes.dataBytes); err != nil {
		return err
	}
	appendTook := time.Since(appendBegan)
	appendRSS, appendGoroutines := s.usage()
	s.resetPeak()
	b.add(b.appendResult(n, appendTook, appendRSS, appendGoroutines))

	recv, err := startReceiver(addr, false, "/hook")
	if err != nil {
		return err
	}
	defer recv.close()
	up := time.Now()
	began, err := recv.waitCount(1, time.Minute)
	if err != nil {
		return err
	}

	// Window i starts once i+1 of rounds+2 equal parts of the backlog are
	// delivered, so two parts remain when the last one starts: at a fifth,
	// two fifths and three fifths with three rounds.
	var drainWindows []window
	for i := range b.sizes.rounds {
		if _, err := recv.waitCount(int64(n*(i+1)/(b.sizes.rounds+2)), 60*time.Minute); err != nil {
			return err
		}
		w, err := b.loadWindow(ctx, s, recv, "task.updated")
		if err != nil {
			return err
		}
		if recv.count.Load() >= int64(n) {
			return fmt.Errorf("the backlog of %d events ran out during a window under load; use a larger --backlog", n)
		}
		drainWindows = append(drainWindows, w)
	}
	end, err := recv.waitCount(int64(n), 60*time.Minute)
	if err != nil {
		return err
	}
	drainRSS, goroutines := s.usage()
	drainAnon := s.peakAnon.Load()

	// Live delivery: each window starts with the webhook at the head of
	// the log and ends when its events are delivered.
	var liveWindows []window
	delivered := int64(n)
	for range b.sizes.rounds {
		w, err := b.loadWindow(ctx, s, recv, "task.created")
		if err != nil {
			return err
		}
		liveWindows = append(liveWindows, w)
		delivered += w.published
		if _, err := recv.waitCount(delivered, 10*time.Minute); err != nil {
			return err
		}
	}
	b.baselines["catchup-events"] = float64(int64(n+100) + publishedIn(drainWindows) + publishedIn(liveWindows))
	if strays := recv.strays.Load(); strays > 0 {
		return fmt.Errorf("the receiver got %d requests of other webhooks, so the delivery rates would be wrong", strays)
	}

	b.add(b.catchUpResult(catchUpRun{
		backlog: n, appendTook: appendTook, retryAfter: began.Sub(up), drained: end.Sub(began),
		drainWindows: drainWindows, liveWindows: liveWindows,
		peakRSS: drainRSS + " draining, " + appendRSS + " appending", goroutines: goroutines, drainAnon: drainAnon,
	}))
	return nil
}

// appendResult reports the catch-up's appends, arrays of 500 events from
// one client, against Badger's own synced batch appends.
func (b *bench) appendResult(n int, took time.Duration, peakRSS, goroutines string) result {
	rate := float64(n) / took.Seconds()
	r := result{
		scenario:   fmt.Sprintf("append of the catch-up's %d events, arrays of 500 from 1 client, durable", n),
		value:      fmt.Sprintf("%.0f events/s", rate),
		peakRSS:    peakRSS,
		goroutines: goroutines,
	}
	if base := b.baselines["badger"]; base > 0 {
		r.baseline = fmt.Sprintf("%.0f events/s Badger synced transactions of 100 × 1 KiB", base)
		r.ratio = ratio(rate, base)
	}
	return r
}

// catchUpRun holds the measurements of catchUp.
type catchUpRun struct {
	backlog                int
	appendTook, retryAfter time.Duration
	drained                time.Duration // from the first delivery to the last of the backlog
	drainWindows           []window      // under load, during the drain
	liveWindows            []window      // under load, live
	peakRSS, goroutines    string
	drainAnon              int64 // peak anonymous memory while draining, in bytes
}

// catchUpResult builds the catch-up's report row: the medians of the
// windows under load, and the drain outside them against a new server's
// ordered delivery.
func (b *bench) catchUpResult(run catchUpRun) result {
	drainRates, liveRates := rates(run.drainWindows), rates(run.liveWindows)
	drain, live := median(drainRates), median(liveRates)
	behind := true
	for _, w := range run.liveWindows {
		behind = behind && w.behind()
	}

	// The drain's rate outside the windows, without load.
	outside := run.drained
	deliveredOutside := int64(run.backlog - 1)
	for _, w := range run.drainWindows {
		outside -= w.took
		deliveredOutside -= w.delivered
	}
	unloaded := float64(deliveredOutside) / outside.Seconds()

	r := result{
		scenario: fmt.Sprintf("catch-up: %d events appended while down (in %s), 100 webhooks, 99 still down", run.backlog, run.appendTook.Round(100*time.Millisecond)),
		value: fmt.Sprintf("%.0f events/s under load (median of %d windows), %.0f events/s without; drained in %s after the retry %s after the receiver came back",
			drain, len(drainRates), unloaded, run.drained.Round(100*time.Millisecond), run.retryAfter.Round(100*time.Millisecond)),
		baseline: fmt.Sprintf("%.0f events/s live delivery in the same server under the same load (median of %d windows, %d clients publishing %.0f events/s)",
			live, len(liveRates), livePublishers, median(publishRates(run.liveWindows))),
		ratio:      fmt.Sprintf("%s (runs: %s)", ratio(drain, live), pairedRatios(drainRates, liveRates)),
		target:     "drain ≥ the slowest live window (no slower than live); anonymous RSS ≤ 150 MB while draining",
		peakRSS:    run.peakRSS,
		goroutines: run.goroutines,
	}
	if !behind {
		r.baseline += "; the webhook kept up in a live window, so its live rate is not measured"
	}
	if fresh := b.baselines["delivery"]; fresh > 0 {
		r.baseline += fmt.Sprintf("; %.0f events/s ordered delivery on a new server", fresh)
		r.ratio += fmt.Sprintf("; without load %s of the new server's", ratio(unloaded, fresh))
	}
	// The two phases run the same code at the same load, so their rates
	// differ by the machine's noise. The drain counts as no slower when
	// its median reaches the slowest live window.
	r.met = yesNo(behind && drain >= slices.Min(liveRates) && run.drainAnon <= 150e6)
	return r
}

// livePublishers is the number of clients that publish in a window under
// load: enough to publish faster than one webhook delivers.
const livePublishers = 16

// window is the outcome of loadWindow.
type window struct {
	took      time.Duration
	published int64 // events published
	delivered int64 // deliveries the receiver counted meanwhile
}

func (w window) rate() float64 {
	return float64(w.delivered) / w.took.Seconds()
}

// behind reports whether the webhook fell behind the publishers of a live
// window, so that its rate is the webhook's and not the publishers'.
func (w window) behind() bool {
	return w.published-w.delivered > w.published/100
}

func rates(windows []window) []float64 {
	var out []float64
	for _, w := range windows {
		out = append(out, w.rate())
	}
	return out
}

func publishRates(windows []window) []float64 {
	var out []float64
	for _, w := range windows {
		out = append(out, float64(w.published)/w.took.Seconds())
	}
	return out
}

func publishedIn(windows []window) int64 {
	var total int64
	for _, w := range windows {
		total += w.published
	}
	return total
}

// pairedRatios formats the ratio of each pair of windows, the first of
// each phase together and so on.
func pairedRatios(drain, live []float64) string {
	var parts []string
	for i := range min(len(drain), len(live)) {
		parts = append(parts, ratio(drain[i], live[i]))
	}
	return strings.Join(parts, ", ")
}

// loadWindow runs livePublishers clients that publish single events of
// the given name, one per request, for the run's duration, and counts the
// receiver's deliveries meanwhile.
func (b *bench) loadWindow(ctx context.Context, s *server, recv *receiver, event string) (window, error) {
	body := eventBody(event, b.sizes.dataBytes, 0)
	var published atomic.Int64
	before := recv.count.Load()
	began := time.Now()
	_, err := closedLoop(ctx, livePublishers, b.sizes.duration, func() error {
		if _, err := post(s.url+"/api/v1/events", body); err != nil {
			return err
		}
		published.Add(1)
		return nil
	})
	if err != nil {
		return window{}, err
	}
	return window{took: time.Since(began), published: published.Load(), delivered: recv.count.Load() - before}, nil
}

// restart measures the time from start to serving with the catch-up's log
// and 100 webhooks, and with a log of as many small events, whose data
// Badger keeps in its tables instead of its value log, against a log of 100
// webhooks and no events. Badger opens every table at start, so the small
// events show how the start grows with the tables.
func (b *bench) restart(ctx context.Context) error {
	runs := int(b.baselines["catchup-dir"])
	if runs == 0 {
		return fmt.Errorf("restart needs the catch-up scenario first")
	}
	bigDir := filepath.Join(b.root, fmt.Sprintf("data-%d", runs))

	emptyDir, err := b.logWithWebhooks(0, 0)
	if err != nil {
		return err
	}
	n := b.sizes.backlogEvents
	inlineDir, err := b.logWithWebhooks(n, inlineDataBytes)
	if err != nil {
		return err
	}

	emptyReady, _, _, err := b.slowestStart(emptyDir)
	if err != nil {
		return err
	}
	baseline := fmt.Sprintf("%s with 100 webhooks and no events", ms(emptyReady))
	for _, log := range []struct {
		dir, what string
	}{
		{bigDir, fmt.Sprintf("%.0f events of the catch-up", b.baselines["catchup-events"])},
		{inlineDir, fmt.Sprintf("%d events of %d bytes, kept in Badger's tables", n, inlineDataBytes)},
	} {
		ready, rss, goroutines, err := b.slowestStart(log.dir)
		if err != nil {
			return err
		}
		b.add(result{
			scenario:   fmt.Sprintf("restart to serving: %s, 100 webhooks (slowest of 3)", log.what),
			value:      ms(ready),
			baseline:   baseline,
			ratio:      ratio(ready.Seconds(), emptyReady.Seconds()),
			target:     "≤ 1 s",
			met:        yesNo(ready <= time.Second),
			peakRSS:    rss,
			goroutines: goroutines,
		})
	}
	return nil
}

// inlineDataBytes is the data size of the restart's small events: below the
// log's value threshold of 512 bytes, like FFmate's webhook.*, preset.*
// and watchfolder.* events.
const inlineDataBytes = 300

// logWithWebhooks makes a data directory with 100 webhooks and n events of
// size bytes of data. The webhooks subscribe to task.updated and the events
// are task.created, so nothing is delivered.
func (b *bench) logWithWebhooks(n, size int) (string, error) {
	dir := b.newDataDir()
	s, _, err := b.startServer(dir)
	if err != nil {
		return "", err
	}
	for i := range 100 {
		if _, err := s.createWebhook("task.updated", fmt.Sprintf("http://127.0.0.1:1/w/%d", i), "new"); err != nil {
			s.stop()
			return "", err
		}
	}
	if err := s.publishMany("task.created", n, size); err != nil {
		s.stop()
		return "", err
	}
	return dir, s.stop()
}

// slowestStart starts hooklog on dir three times and returns the slowest
// time to serving, with the usage of that start.
func (b *bench) slowestStart(dir string) (time.Duration, string, string, error) {
	var slowest time.Duration
	var rss, goroutines string
	for range 3 {
		s, ready, err := b.startServer(dir)
		if err != nil {
			return 0, "", "", err
		}
		if ready >= slowest {
			slowest = ready
			rss, goroutines = s.usage()
		}
		if err := s.stop(); err != nil {
			return 0, "", "", err
		}
	}
	return slowest, rss, goroutines, nil
}
