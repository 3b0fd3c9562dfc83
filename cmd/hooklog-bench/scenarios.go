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

func startReceiver(addr string, latency bool) (*receiver, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + l.Addr().String(), latency: latency}
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
	recv, err := startReceiver("127.0.0.1:0", latency)
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
// The catch-up reports its drain next to the median rate too.
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
// compares the drain with live delivery in the same server: events
// published while the receiver is up, with the same log and the same 99
// webhooks that keep failing. The data directory is kept for the restart
// scenario.
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
	appendRSS, _ := s.usage()
	s.resetPeak()

	recv, err := startReceiver(addr, false)
	if err != nil {
		return err
	}
	defer recv.close()
	recv.only = "/hook"
	up := time.Now()
	began, err := recv.waitCount(1, time.Minute)
	if err != nil {
		return err
	}
	end, err := recv.waitCount(int64(n), 60*time.Minute)
	if err != nil {
		return err
	}
	// The drain counts from the first delivery: before it, the webhook
	// waits for its next scheduled retry.
	rate := float64(n-1) / end.Sub(began).Seconds()
	drainRSS, goroutines := s.usage()
	drainAnon := s.peakAnon.Load()

	live, err := b.liveDelivery(ctx, s, recv)
	if err != nil {
		return err
	}
	b.baselines["catchup-events"] = float64(n + 100 + live.published)
	if strays := recv.strays.Load(); strays > 0 {
		return fmt.Errorf("the receiver got %d requests of other webhooks, so the delivery rates would be wrong", strays)
	}

	r := result{
		scenario: fmt.Sprintf("catch-up: %d events appended while down (in %s), 100 webhooks, 99 still down", n, appendTook.Round(time.Second)),
		value: fmt.Sprintf("%.0f events/s, drained in %s after the retry %s after the receiver came back",
			rate, end.Sub(began).Round(100*time.Millisecond), began.Sub(up).Round(100*time.Millisecond)),
		baseline: live.describe(),
		ratio:    ratio(rate, live.rate),
		target:   "≥ 1 (no slower than live); anonymous RSS ≤ 150 MB while draining",
		peakRSS:  drainRSS + " draining, " + appendRSS + " appending",
	}
	if fresh := b.baselines["delivery"]; fresh > 0 {
		r.baseline += fmt.Sprintf("; %.0f events/s ordered delivery on a new server", fresh)
		r.ratio += fmt.Sprintf(" (%s of the new server's)", ratio(rate, fresh))
	}
	r.goroutines = goroutines
	r.met = yesNo(live.behind() && rate >= live.rate && drainAnon <= 150e6)
	b.add(r)
	return nil
}

// livePublishers is the number of clients that publish during live
// delivery: enough to publish faster than one webhook delivers.
const livePublishers = 16

// liveRun is the outcome of liveDelivery.
type liveRun struct {
	rate        float64 // deliveries per second while the clients published
	published   int     // events published
	publishRate float64 // events published per second
	delivered   int     // of them, delivered by the end of publishing
}

// behind reports whether the webhook fell behind the publishers, so that
// rate is its delivery rate and not the publishers'.
func (l liveRun) behind() bool {
	return l.published-l.delivered > l.published/100
}

func (l liveRun) describe() string {
	s := fmt.Sprintf("%.0f events/s live delivery in the same server while %d clients published %.0f events/s", l.rate, livePublishers, l.publishRate)
	if !l.behind() {
		s += " (the webhook kept up, so its live rate is not measured)"
	}
	return s
}

// liveDelivery measures one webhook's live delivery: livePublishers clients
// publish single events, one per request, for the run's duration, and the
// rate counts the deliveries within that time. The webhook's worker must
// fall behind for the rate to be its own. liveDelivery then waits until
// every published event is delivered.
func (b *bench) liveDelivery(ctx context.Context, s *server, recv *receiver) (liveRun, error) {
	body := eventBody("task.created", b.sizes.dataBytes, 0)
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
	took := time.Since(began)
	delivered := recv.count.Load() - before
	if err != nil {
		return liveRun{}, err
	}

	run := liveRun{
		rate:        float64(delivered) / took.Seconds(),
		published:   int(published.Load()),
		publishRate: float64(published.Load()) / took.Seconds(),
		delivered:   int(delivered),
	}
	if _, err := recv.waitCount(before+published.Load(), 10*time.Minute); err != nil {
		return liveRun{}, err
	}
	return run, nil
}

// restart measures the time from start to serving with the catch-up's log
// and 100 webhooks, against a log of 100 webhooks and no events.
func (b *bench) restart(ctx context.Context) error {
	runs := int(b.baselines["catchup-dir"])
	if runs == 0 {
		return fmt.Errorf("restart needs the catch-up scenario first")
	}
	bigDir := filepath.Join(b.root, fmt.Sprintf("data-%d", runs))

	small, _, err := b.startServer(b.newDataDir())
	if err != nil {
		return err
	}
	for i := range 100 {
		if _, err := small.createWebhook("task.created", fmt.Sprintf("http://127.0.0.1:1/w/%d", i), "new"); err != nil {
			small.stop()
			return err
		}
	}
	smallDir := filepath.Join(b.root, fmt.Sprintf("data-%d", b.runs))
	if err := small.stop(); err != nil {
		return err
	}

	var smallReady time.Duration
	for range 3 {
		s, ready, err := b.startServer(smallDir)
		if err != nil {
			return err
		}
		smallReady = max(smallReady, ready)
		s.stop()
	}

	var bigReady time.Duration
	var rss, goroutines string
	for range 3 {
		s, ready, err := b.startServer(bigDir)
		if err != nil {
			return err
		}
		bigReady = max(bigReady, ready)
		rss, goroutines = s.usage()
		s.stop()
	}

	b.add(result{
		scenario:   fmt.Sprintf("restart to serving: %.0f events, 100 webhooks (slowest of 3)", b.baselines["catchup-events"]),
		value:      ms(bigReady),
		baseline:   fmt.Sprintf("%s with 100 webhooks and no events", ms(smallReady)),
		ratio:      ratio(bigReady.Seconds(), smallReady.Seconds()),
		target:     "≤ 1 s",
		met:        yesNo(bigReady <= time.Second),
		peakRSS:    rss,
		goroutines: goroutines,
	})
	return nil
}
