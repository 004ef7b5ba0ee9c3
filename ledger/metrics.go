package ledger

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	leaves         prometheus.Counter
	size           prometheus.Gauge
	checkpointSize prometheus.Gauge
	checkpoints    prometheus.Counter
	lag            *prometheus.GaugeVec
	inclusion      prometheus.Histogram
	appendSeconds  prometheus.Histogram
	batchLeaves    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leaves: prometheus.NewCounter(prometheus.CounterOpts{Name: "ordergrid_ledger_appended_leaves_total",
			Help: "Leaves this node appended to the log as the sequencer."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ordergrid_ledger_size_leaves",
			Help: "Leaves in the log on this node's replica."}),
		checkpointSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ordergrid_ledger_checkpoint_size_leaves",
			Help: "Tree size of the newest signed checkpoint."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "ordergrid_ledger_checkpoints_total",
			Help: "Checkpoints this node signed as the sequencer."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ordergrid_ledger_lag_seconds",
			Help: "Age of the oldest event in this node's replica of a partition not yet in the log (0: caught up), on the sequencer; a replica that is behind its leader hides events it has not applied."},
			[]string{"group", "partition"}),
		inclusion: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordergrid_ledger_inclusion_seconds",
			Help:    "From an event's commit in its partition to its leaf's commit in the log.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordergrid_ledger_append_seconds",
			Help: "Latency of one append batch through the ledger's Raft group.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batchLeaves: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordergrid_ledger_append_batch_leaves",
			Help: "Leaves per append batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
	}
	if reg != nil {
		reg.MustRegister(m.leaves, m.size, m.checkpointSize, m.checkpoints, m.lag, m.inclusion, m.appendSeconds, m.batchLeaves)
	}
	return m
}
