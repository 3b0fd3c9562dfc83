// Package metrics builds the Prometheus registry that main passes to every
// package reporting metrics. Library code never uses the global default
// registerer, so tests can give each part a registry of its own.
package metrics

import (
	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// NewStorageCollector returns a collector of the size of a Badger database
// on disk: hooklog_storage_bytes with kind "lsm" (the LSM tree's tables) and
// "vlog" (the value log). Badger refreshes these sizes about once a minute.
func NewStorageCollector(db *badger.DB) prometheus.Collector {
	return storageCollector{db: db}
}

type storageCollector struct {
	db *badger.DB
}

var storageDesc = prometheus.NewDesc("hooklog_storage_bytes",
	"Size of the Badger database on disk, by kind: lsm (tables) or vlog (value log).", []string{"kind"}, nil)

func (c storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storageDesc
}

func (c storageCollector) Collect(ch chan<- prometheus.Metric) {
	lsm, vlog := c.db.Size()
	ch <- prometheus.MustNewConstMetric(storageDesc, prometheus.GaugeValue, float64(lsm), "lsm")
	ch <- prometheus.MustNewConstMetric(storageDesc, prometheus.GaugeValue, float64(vlog), "vlog")
}
