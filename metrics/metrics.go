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

// NewStorageCollector returns a collector of the size on disk of Badger
// databases: hooklog_storage_bytes with kind "lsm" (the LSM trees' tables)
// and "vlog" (the value logs), summed over dbs. Badger refreshes these
// sizes about once a minute.
func NewStorageCollector(dbs ...*badger.DB) prometheus.Collector {
	return storageCollector{dbs: dbs}
}

type storageCollector struct {
	dbs []*badger.DB
}

var storageDesc = prometheus.NewDesc("hooklog_storage_bytes",
	"Size of the Badger databases on disk, by kind: lsm (tables) or vlog (value logs).", []string{"kind"}, nil)

func (c storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storageDesc
}

func (c storageCollector) Collect(ch chan<- prometheus.Metric) {
	var lsm, vlog int64
	for _, db := range c.dbs {
		l, v := db.Size()
		lsm, vlog = lsm+l, vlog+v
	}
	ch <- prometheus.MustNewConstMetric(storageDesc, prometheus.GaugeValue, float64(lsm), "lsm")
	ch <- prometheus.MustNewConstMetric(storageDesc, prometheus.GaugeValue, float64(vlog), "vlog")
}
