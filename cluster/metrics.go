package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the partitions' Prometheus metrics.
type Metrics struct {
	commitSeconds prometheus.Histogram
	applied       prometheus.Counter
	applyBatches  prometheus.Histogram
	forwarded     prometheus.Counter
	transfers     prometheus.Counter
	leaderCalls   *prometheus.CounterVec
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
	}
	if reg != nil {
		reg.MustRegister(m.commitSeconds, m.applied, m.applyBatches, m.forwarded, m.transfers, m.leaderCalls)
	}
	return m
}

func (m *Metrics) observeApply(n int) {
	m.applied.Add(float64(n))
	m.applyBatches.Observe(float64(n))
}
