package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// deliveryMetrics are delivery's Prometheus metrics. Without a registerer
// they are kept but not exported.
type deliveryMetrics struct {
	attempts        *prometheus.CounterVec // by outcome and class
	delivered       prometheus.Counter
	parked          prometheus.Counter
	requestDuration prometheus.Histogram
	latency         prometheus.Histogram
	inFlight        prometheus.Gauge
}

// Values of the class label of hooklog_delivery_attempts_total.
var attemptClasses = []string{"2xx", "3xx", "4xx", "5xx", "other_status", "timeout", "connection", "refused_address"}

func newDeliveryMetrics(reg prometheus.Registerer) *deliveryMetrics {
	m := &deliveryMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooklog_delivery_attempts_total",
			Help: "Delivery attempts by outcome (success or failure) and class: the status class, timeout, connection (refused, DNS, TLS and other transport errors) or refused_address.",
		}, []string{"outcome", "class"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hooklog_delivery_succeeded_total",
			Help: "Events acknowledged by a receiver with a 2xx status, counted once per webhook and attempt.",
		}),
		parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hooklog_delivery_parked_total",
			Help: "Events given up after their retries ran out and parked for their webhook.",
		}),
		requestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hooklog_delivery_request_duration_seconds",
			Help:    "Duration of one delivery attempt: connect, request, response headers and the capped body.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hooklog_delivery_latency_seconds",
			Help:    "Time from an event's append to its first 2xx from a webhook, for deliveries in log order (not replays or redeliveries).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hooklog_delivery_in_flight_requests",
			Help: "Delivery requests waiting for their receiver now.",
		}),
	}
	m.attempts.WithLabelValues("success", "2xx")
	for _, class := range attemptClasses[1:] {
		m.attempts.WithLabelValues("failure", class)
	}

	if reg != nil {
		reg.MustRegister(m.attempts, m.delivered, m.parked, m.requestDuration, m.latency, m.inFlight)
	}
	return m
}

// observe counts one attempt at r, made with trigger, that ended at now.
func (m *deliveryMetrics) observe(a Attempt, r eventlog.Record, trigger string, now time.Time) {
	m.requestDuration.Observe(a.Duration.Seconds())
	if a.OK() {
		m.attempts.WithLabelValues("success", "2xx").Inc()
		m.delivered.Inc()
		if trigger == TriggerScheduled {
			m.latency.Observe(max(0, now.Sub(r.Timestamp).Seconds()))
		}
		return
	}
	m.attempts.WithLabelValues("failure", metricClass(a)).Inc()
}

// metricClass maps an attempt's outcome to the bounded class label.
func metricClass(a Attempt) string {
	switch a.Class {
	case ClassTimeout, ClassRefusedAddress:
		return a.Class
	case ClassRefused, ClassDNS, ClassTLS, ClassConnection:
		return "connection"
	}
	switch {
	case a.Status >= 200 && a.Status < 300:
		return "2xx"
	case a.Status >= 300 && a.Status < 400:
		return "3xx"
	case a.Status >= 400 && a.Status < 500:
		return "4xx"
	case a.Status >= 500 && a.Status < 600:
		return "5xx"
	default:
		return "other_status"
	}
}

// webhookCollector exports per-webhook series, computed at scrape time from
// the stored delivery state, so a deleted webhook's series disappear with it.
// The label is the webhook id, never the URL: one series of each metric per
// webhook, and one per webhook and state for hooklog_webhook_state.
type webhookCollector struct {
	m *Manager
}

var (
	lagDesc = prometheus.NewDesc("hooklog_webhook_lag_events",
		"Events after the webhook's cursor that it subscribes to and has not finished.", []string{"webhook_id"}, nil)
	ageDesc = prometheus.NewDesc("hooklog_webhook_oldest_undelivered_age_seconds",
		"Age of the oldest event the webhook still owes; 0 when it owes none.", []string{"webhook_id"}, nil)
	parkedDesc = prometheus.NewDesc("hooklog_webhook_parked_events",
		"Events parked for the webhook.", []string{"webhook_id"}, nil)
	attemptsDesc = prometheus.NewDesc("hooklog_webhook_failed_attempts",
		"Failed attempts at the event the webhook is retrying; 0 when none is.", []string{"webhook_id"}, nil)
	stateDesc = prometheus.NewDesc("hooklog_webhook_state",
		"1 for the webhook's current state (active, retrying, paused or disabled), 0 for the others.", []string{"webhook_id", "state"}, nil)
)

var webhookStates = []string{projections.StateActive, "retrying", projections.StatePaused, projections.StateDisabled}

func (c webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lagDesc, ageDesc, parkedDesc, attemptsDesc, stateDesc} {
		ch <- d
	}
}

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	statuses, err := c.m.Statuses()
	if err != nil {
		c.m.logger.Error("collecting per-webhook metrics failed", "error", err)
		return
	}

	for _, st := range statuses {
		id := st.WebhookID
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(st.Lag), id)
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, st.OldestUndeliveredAgeSeconds, id)
		ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(st.Parked), id)
		ch <- prometheus.MustNewConstMetric(attemptsDesc, prometheus.GaugeValue, float64(st.Attempts), id)
		for _, state := range webhookStates {
			value := 0.0
			if st.State == state {
				value = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, value, id, state)
		}
	}
}
