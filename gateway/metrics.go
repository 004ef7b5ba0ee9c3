package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	rejects  *prometheus.CounterVec
	orders   *prometheus.CounterVec
	inFlight prometheus.Gauge
	// observed are the last minutes' intake and latency for the ops
	// summary (opsring.go).
	observed *intakeRing
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ordergrid_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"route"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_rejects_total", Help: "Refused requests or orders by reason.",
		}, []string{"reason"}),
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordergrid_orders_total", Help: "Order intake results.",
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordergrid_http_in_flight", Help: "HTTP requests being served.",
		}),
		observed: newIntakeRing(time.Now),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.rejects, m.orders, m.inFlight)
	}
	return m
}
