package eventlog

import (
	"github.com/prometheus/client_golang/prometheus"
)

// logMetrics are the log's Prometheus metrics. Without a registerer they
// are kept but not exported.
type logMetrics struct {
	appended       *prometheus.CounterVec // by event name
	appendFailures prometheus.Counter
	batches        prometheus.Counter
	batchSize      prometheus.Histogram
	appendDuration prometheus.Histogram
	commitDuration prometheus.Histogram
}

func newLogMetrics(l *Log, reg prometheus.Registerer, events []string) *logMetrics {
	m := &logMetrics{
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooklog_log_events_appended_total",
			Help: "Events appended to the log, by event name.",
		}, []string{"event"}),
		appendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hooklog_log_append_failures_total",
			Help: "Appends that failed after reaching the writer, such as a commit error on a full disk.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hooklog_log_append_batches_total",
			Help: "Group commits: Badger transactions that each hold the events of one or more appends.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hooklog_log_append_batch_events",
			Help:    "Events per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hooklog_log_append_duration_seconds",
			Help:    "Time from an append's arrival at the log to its durable acknowledgement, including the wait for its group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hooklog_log_sync_duration_seconds",
			Help:    "Time to commit one group commit's Badger transaction, which writes the batch and syncs it to disk.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	for _, name := range events {
		m.appended.WithLabelValues(name)
	}
	if reg == nil {
		return m
	}

	reg.MustRegister(m.appended, m.appendFailures, m.batches, m.batchSize, m.appendDuration, m.commitDuration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hooklog_log_head_seq",
			Help: "Sequence number of the last event in the log; 0 when it is empty.",
		}, func() float64 { return float64(l.Head()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hooklog_log_first_seq",
			Help: "Sequence number of the first event in the log; 0 when it is empty.",
		}, func() float64 { return float64(min(l.Head(), 1)) }),
	)
	return m
}
