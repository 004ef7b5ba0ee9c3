package actors

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	activations  *prometheus.CounterVec
	reservations *prometheus.CounterVec
	reserveBatch prometheus.Histogram
	expired      prometheus.Counter
	reconciled   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_grain_activations_total", Help: "Grain activations by kind.",
		}, []string{"kind"}),
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_reservations_total", Help: "Reserve calls by outcome.",
		}, []string{"outcome"}),
		reserveBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_reserve_batch_size", Help: "Reservations folded into one Raft entry.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_orders_expired_total", Help: "Unpaid orders expired by the sweeper.",
		}),
		reconciled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_stock_actions_reconciled_total", Help: "Owed stock actions finished by the sweeper.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.activations, m.reservations, m.reserveBatch, m.expired, m.reconciled)
	}
	return m
}
