package actors

import (
	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/statemachine"
)

type metrics struct {
	activations  *prometheus.CounterVec
	reservations *prometheus.CounterVec
	reserveBatch prometheus.Histogram
	expired      prometheus.Counter
	reconciled   prometheus.Counter
	routed       *prometheus.CounterVec
	reroutes     prometheus.Counter
	// retriedReservations counts lines a retry found reserved by its
	// earlier attempt (answered 503 after it reserved) and took.
	retriedReservations prometheus.Counter
	// createBatch observes the orders of each create_orders entry;
	// batchFallbacks counts orders a batch handed to their grains.
	createBatch    prometheus.Histogram
	batchFallbacks prometheus.Counter
	keyBatch       prometheus.Histogram
	// transitionBatch observes the events of each transitions entry.
	transitionBatch prometheus.Histogram
	// alertsRaised counts the stuck-order alerts the sweeper raised.
	alertsRaised prometheus.Counter
	// screened counts the intake's verdicts on new orders (accept, hold,
	// refuse) by reason; decisions the reviewers' decisions on holds.
	screened  *prometheus.CounterVec
	decisions *prometheus.CounterVec
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
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_routing_decisions_total",
			Help: "Orders routed, by A/B arm (active, candidate), and refused (out_of_stock, unroutable).",
		}, []string{"result"}),
		reroutes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_routing_reroutes_total", Help: "Orders routed again because the routed warehouse was short when reserving.",
		}),
		retriedReservations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_retry_reservations_taken_total",
			Help: "Order lines whose retry took the reservation an earlier attempt (answered 503) left pending.",
		}),
		createBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_create_batch_orders", Help: "New orders recorded by one create_orders Raft entry.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		batchFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_batch_fallbacks_total",
			Help: "Orders an intake batch handed to their order grain (routing refused them, or a routed warehouse was short).",
		}),
		keyBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_subject_key_batch_keys", Help: "New subjects' data keys stored by one put_subject_keys Raft entry.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		transitionBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_transition_batch_events", Help: "Order events judged by one transitions Raft entry.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		alertsRaised: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_alerts_raised_total", Help: "Stuck-order alerts raised by this node's sweeper (alert_raised events).",
		}),
		screened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_intake_screened_total",
			Help: "New orders judged at intake by verdict (hold, refuse) and reason (limit, address, risk), as this node answered them.",
		}, []string{"verdict", "reason"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_hold_decisions_total", Help: "Reviewers' decisions on held orders through this node (release, cancel).",
		}, []string{"decision"}),
	}
	if reg != nil {
		reg.MustRegister(m.activations, m.reservations, m.reserveBatch, m.expired, m.reconciled, m.routed, m.reroutes, m.retriedReservations,
			m.createBatch, m.batchFallbacks, m.keyBatch, m.transitionBatch, m.alertsRaised, m.screened, m.decisions)
	}
	return m
}

// watchAlerts exports the open stuck-order alerts of the partitions this
// node leads (summed over the nodes: the cluster's), and the alerts this
// node's replicas cleared (every replica clears each one: read one node).
func (m *metrics) watchAlerts(reg prometheus.Registerer, host *cluster.Host) {
	if reg == nil {
		return
	}
	machines := func(led bool) []*statemachine.Machine {
		var out []*statemachine.Machine
		for _, p := range host.Partitions() {
			if sm, ok := p.StateMachine().(*statemachine.Machine); ok && (!led || p.IsLeader()) {
				out = append(out, sm)
			}
		}
		return out
	}
	for _, reason := range []string{statemachine.HoldLimit, statemachine.HoldAddress, statemachine.HoldRisk, statemachine.HoldDuplicate} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordergrid_holds_open", Help: "Orders held for review and undecided, of the partitions this node leads.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 {
			total := 0
			for _, sm := range machines(true) {
				total += sm.HoldCounts()[reason]
			}
			return float64(total)
		}))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ordergrid_alerts_open", Help: "Open stuck-order alerts of the partitions this node leads.",
	}, func() float64 {
		total := 0
		for _, sm := range machines(true) {
			total += sm.OpenAlerts()
		}
		return float64(total)
	}), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "ordergrid_alerts_cleared_total", Help: "Stuck-order alerts cleared (alert_cleared events) as this node's replicas applied them since it started.",
	}, func() float64 {
		var total uint64
		for _, sm := range machines(false) {
			total += sm.AlertsCleared()
		}
		return float64(total)
	}))
}

// watchActive exports the grains active on this node, per kind.
func (m *metrics) watchActive(reg prometheus.Registerer, c *actorcluster.Cluster) {
	if reg == nil {
		return
	}
	for _, kind := range []string{"SkuGrain", "OrderGrain"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordergrid_grains_active", Help: "Grains active on this node.", ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			if k, ok := c.TryGetClusterKind(kind); ok {
				return float64(k.Count())
			}
			return 0
		}))
	}
}
