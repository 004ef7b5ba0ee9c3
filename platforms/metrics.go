package platforms

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts platform calls (each HTTP attempt, retries included) by
// channel, connection, method and result: ok, throttled, not_found, auth,
// temporary, malformed, rejected, unsupported, canceled.
type Metrics struct {
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// NewMetrics registers ordergrid_platform_calls_total and
// ordergrid_platform_call_seconds with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"channel", "connection", "method", "result"}
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_platform_calls_total",
			Help: "Calls to the commerce platforms' APIs (each attempt), by result."}, labels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ordergrid_platform_call_seconds",
			Help:    "Duration of one call to a commerce platform's API, in seconds.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, labels),
	}
	reg.MustRegister(m.calls, m.seconds)
	return m
}

func (m *Metrics) observe(channel, connection, method, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(channel, connection, method, result).Inc()
	m.seconds.WithLabelValues(channel, connection, method, result).Observe(took.Seconds())
}

// result is the metrics label of an attempt's outcome.
func result(aerr *APIError, err error) string {
	if err != nil {
		return "canceled"
	}
	if aerr == nil {
		return "ok"
	}
	for _, r := range []struct {
		kind  error
		label string
	}{{ErrThrottled, "throttled"}, {ErrNotFound, "not_found"}, {ErrAuth, "auth"}, {ErrTemporary, "temporary"},
		{ErrMalformed, "malformed"}, {ErrUnsupported, "unsupported"}} {
		if errors.Is(aerr, r.kind) {
			return r.label
		}
	}
	return "rejected"
}
