package app

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/hooklog/hooklog/metrics"
)

// metricValue sums the samples of a metric family whose labels include
// labels: counter and gauge values, or a histogram's sample count.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}

	total, found := 0.0, false
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			found = true
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return total, found
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func wantMetric(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	got, found := metricValue(t, g, name, labels)
	if !found {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// A scripted scenario moves the counters and histograms of every stage:
// publish, deliver, fail and park.
func TestMetricsFollowScenario(t *testing.T) {
	reg := metrics.NewRegistry()
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Registry = reg
		cfg.Delivery.Policy.MaxAttempts = 2
		cfg.Delivery.PerWebhookMetrics = true
	})
	good := newReceiver(t, nil)
	bad := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	goodHook := s.createWebhook("task.created", good.URL)
	badHook := s.createWebhook("task.updated", bad.URL)

	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	s.publish(eventBody("task.created", map[string]int{"n": 2}))
	updated := s.publish(eventBody("task.updated", map[string]int{"n": 3}))
	good.waitFor(t, 2, 10*time.Second)
	waitState(t, s, badHook.UUID, func(st stateView) bool { return st.Cursor == updated.Seq })

	wantMetric(t, reg, "hooklog_log_events_appended_total", map[string]string{"event": "task.created"}, 2)
	wantMetric(t, reg, "hooklog_log_events_appended_total", map[string]string{"event": "webhook.created"}, 2)
	wantMetric(t, reg, "hooklog_log_events_appended_total", map[string]string{"event": "batch.finished"}, 0)
	wantMetric(t, reg, "hooklog_log_head_seq", nil, 5)
	wantMetric(t, reg, "hooklog_log_first_seq", nil, 1)
	wantMetric(t, reg, "hooklog_log_append_duration_seconds", nil, 5)
	if batches, _ := metricValue(t, reg, "hooklog_log_append_batches_total", nil); batches < 1 || batches > 5 {
		t.Errorf("append batches = %v, want 1 to 5", batches)
	}

	wantMetric(t, reg, "hooklog_delivery_attempts_total", map[string]string{"outcome": "success", "class": "2xx"}, 2)
	wantMetric(t, reg, "hooklog_delivery_attempts_total", map[string]string{"outcome": "failure", "class": "5xx"}, 2)
	wantMetric(t, reg, "hooklog_delivery_attempts_total", map[string]string{"outcome": "failure", "class": "timeout"}, 0)
	wantMetric(t, reg, "hooklog_delivery_succeeded_total", nil, 2)
	wantMetric(t, reg, "hooklog_delivery_parked_total", nil, 1)
	wantMetric(t, reg, "hooklog_delivery_request_duration_seconds", nil, 4)
	wantMetric(t, reg, "hooklog_delivery_latency_seconds", nil, 2)
	wantMetric(t, reg, "hooklog_delivery_in_flight_requests", nil, 0)

	wantMetric(t, reg, "hooklog_webhook_parked_events", map[string]string{"webhook_id": badHook.UUID}, 1)
	wantMetric(t, reg, "hooklog_webhook_parked_events", map[string]string{"webhook_id": goodHook.UUID}, 0)
	wantMetric(t, reg, "hooklog_webhook_lag_events", map[string]string{"webhook_id": goodHook.UUID}, 0)
	wantMetric(t, reg, "hooklog_webhook_state", map[string]string{"webhook_id": goodHook.UUID, "state": "active"}, 1)

	wantMetric(t, reg, "hooklog_http_requests_total", map[string]string{"route": "/api/v1/events", "method": "POST", "code": "201"}, 3)
	wantMetric(t, reg, "hooklog_http_requests_total", map[string]string{"route": "/api/v1/webhooks", "method": "POST", "code": "200"}, 2)

	// A paused webhook with a backlog shows its lag and state.
	s.post("/api/v1/webhooks/"+goodHook.UUID+"/pause", nil, http.StatusOK)
	s.publish(eventBody("task.created", map[string]int{"n": 4}))
	wantMetric(t, reg, "hooklog_webhook_lag_events", map[string]string{"webhook_id": goodHook.UUID}, 1)
	wantMetric(t, reg, "hooklog_webhook_state", map[string]string{"webhook_id": goodHook.UUID, "state": "paused"}, 1)

	// Raw paths never become labels.
	s.do(http.MethodGet, "/api/v1/webhooks/"+goodHook.UUID, nil)
	s.do(http.MethodGet, "/no/such/path", nil)
	wantMetric(t, reg, "hooklog_http_requests_total", map[string]string{"route": "/api/v1/webhooks/{id}", "method": "GET", "code": "200"}, 1)
	wantMetric(t, reg, "hooklog_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1)

	// A deleted webhook's series disappear.
	if resp, _ := s.do(http.MethodDelete, "/api/v1/webhooks/"+badHook.UUID, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	for _, name := range []string{"hooklog_webhook_parked_events", "hooklog_webhook_lag_events", "hooklog_webhook_state"} {
		if _, found := metricValue(t, reg, name, map[string]string{"webhook_id": badHook.UUID}); found {
			t.Errorf("%s still has a series for the deleted webhook", name)
		}
	}
}

// Every metric passes client_golang's linter.
func TestMetricsLint(t *testing.T) {
	reg := metrics.NewRegistry()
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Registry = reg
		cfg.Delivery.PerWebhookMetrics = true
	})
	recv := newReceiver(t, nil)
	s.createWebhook("task.created", recv.URL)
	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	recv.waitFor(t, 1, 10*time.Second)

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// /metrics is served over HTTP in the Prometheus text format.
func TestMetricsEndpoint(t *testing.T) {
	s := start(t, t.TempDir())
	s.publish(eventBody("batch.created", []int{1, 2}))

	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`hooklog_log_events_appended_total{event="batch.created"} 1`,
		"hooklog_log_head_seq 1",
		`hooklog_storage_bytes{kind="lsm"}`,
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The alert rules and the dashboard use only metrics that hooklog exports.
func TestOperationsFilesUseExportedMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Registry = reg
		cfg.Delivery.PerWebhookMetrics = true
	})
	recv := newReceiver(t, nil)
	s.createWebhook("task.created", recv.URL)
	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	recv.waitFor(t, 1, 10*time.Second)

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		exported[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[name+suffix] = true
			}
		}
	}

	name := regexp.MustCompile(`hooklog_[a-z0-9_]+`)
	for _, file := range []string{"../docs/prometheus/alerts.yml", "../docs/grafana/hooklog-dashboard.json", "../docs/operations.md"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		used := name.FindAllString(string(data), -1)
		if len(used) == 0 {
			t.Errorf("%s uses no hooklog metric", file)
		}
		for _, metric := range used {
			if !exported[metric] {
				t.Errorf("%s uses %s, which hooklog does not export", file, metric)
			}
		}
	}

	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, _ := os.ReadFile("../docs/grafana/hooklog-dashboard.json")
	if err := json.Unmarshal(data, &dashboard); err != nil || len(dashboard.Panels) == 0 {
		t.Fatalf("dashboard is not valid JSON with panels: %v", err)
	}
}
