package cluster

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the partitions' Prometheus metrics.
type Metrics struct {
	commitSeconds prometheus.Histogram
	applied       prometheus.Counter
	applyBatches  prometheus.Histogram
	forwarded     prometheus.Counter
	transfers     prometheus.Counter
	leaderCalls   *prometheus.CounterVec
	purges        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordergrid_raft_commit_seconds",
			Help:    "Time from proposing a command to its commit and local apply.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_raft_applied_commands_total",
			Help: "Commands applied to partition state machines.",
		}),
		applyBatches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordergrid_raft_apply_batch_commands",
			Help:    "Commands per state-machine apply batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_raft_forwarded_proposals_total",
			Help: "Proposals a follower forwarded to its partition's leader.",
		}),
		transfers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_raft_leadership_transfers_total",
			Help: "Leadership transfers started to spread leaders over the nodes.",
		}),
		leaderCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_leader_calls_total",
			Help: "Domain calls run on a partition's leader, by method and where they ran from (local, forwarded).",
		}, []string{"method", "via"}),
		purges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_erasure_purges_total",
			Help: "Purges of a partition's files after an erasure, by result (ok, failed: retried with backoff).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.commitSeconds, m.applied, m.applyBatches, m.forwarded, m.transfers, m.leaderCalls, m.purges)
	}
	return m
}

func (m *Metrics) observeApply(n int) {
	m.applied.Add(float64(n))
	m.applyBatches.Observe(float64(n))
}

// registerPebble exports the storage engine's counters: what the database
// writes (its WAL, flushes and compactions: the write amplification of
// every order), its size on disk and its memtables.
func registerPebble(reg prometheus.Registerer, db *pebble.DB) {
	if reg == nil {
		return
	}
	// db.Metrics takes the database's locks briefly; Prometheus scrapes
	// seldom enough for that not to matter.
	metric := func(f func(m *pebble.Metrics) float64) func() float64 {
		return func() float64 { return f(db.Metrics()) }
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ordergrid_pebble_wal_bytes_written_total",
			Help: "Bytes written to the write-ahead log (Raft logs and applied state of every partition)."},
			metric(func(m *pebble.Metrics) float64 { return float64(m.WAL.BytesWritten) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ordergrid_pebble_flushed_bytes_total",
			Help: "Bytes written to tables by memtable flushes."},
			metric(func(m *pebble.Metrics) float64 {
				t := m.Total()
				return float64(t.TableBytesFlushed + t.BlobBytesFlushed)
			})),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ordergrid_pebble_compacted_bytes_total",
			Help: "Bytes written to tables by compactions."},
			metric(func(m *pebble.Metrics) float64 {
				t := m.Total()
				return float64(t.TableBytesCompacted + t.BlobBytesCompacted)
			})),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ordergrid_pebble_compactions_total", Help: "Compactions run."},
			metric(func(m *pebble.Metrics) float64 { return float64(m.Compact.Count) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ordergrid_pebble_disk_usage_bytes",
			Help: "Bytes the database uses on disk (tables, WAL, manifests)."},
			metric(func(m *pebble.Metrics) float64 { return float64(m.DiskSpaceUsage()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ordergrid_pebble_memtable_bytes",
			Help: "Bytes held by the memtables."},
			metric(func(m *pebble.Metrics) float64 { return float64(m.MemTable.Size) })),
	)
}
