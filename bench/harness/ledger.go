package harness

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ledgerCatchUpMax bounds the wait for the ledger after the load.
const ledgerCatchUpMax = 60 * time.Second

// scrape reads a node's Prometheus metrics.
func scrape(client *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
}

func gauge(m map[string]*dto.MetricFamily, name string) float64 {
	total := 0.0
	if f := m[name]; f != nil {
		for _, x := range f.Metric {
			switch {
			case x.Gauge != nil:
				total += x.Gauge.GetValue()
			case x.Counter != nil:
				total += x.Counter.GetValue()
			}
		}
	}
	return total
}

// quantile estimates a quantile of a histogram (linear within a bucket),
// from the difference of two scrapes when before is non-nil.
func quantile(after, before map[string]*dto.MetricFamily, name string, q float64) (float64, uint64) {
	counts := func(m map[string]*dto.MetricFamily) ([]float64, []uint64) {
		f := m[name]
		if f == nil || len(f.Metric) == 0 || f.Metric[0].Histogram == nil {
			return nil, nil
		}
		var bounds []float64
		var cum []uint64
		for _, b := range f.Metric[0].Histogram.Bucket {
			bounds = append(bounds, b.GetUpperBound())
			cum = append(cum, b.GetCumulativeCount())
		}
		return bounds, cum
	}
	bounds, cum := counts(after)
	if bounds == nil {
		return math.NaN(), 0
	}
	if _, prev := counts(before); prev != nil {
		for i := range cum {
			cum[i] -= prev[i]
		}
	}
	total := cum[len(cum)-1]
	if total == 0 {
		return math.NaN(), 0
	}
	rank := q * float64(total)
	lo, prevCount := 0.0, uint64(0)
	for i, c := range cum {
		if float64(c) >= rank {
			frac := (rank - float64(prevCount)) / math.Max(1, float64(c-prevCount))
			return lo + frac*(bounds[i]-lo), total
		}
		lo, prevCount = bounds[i], c
	}
	return bounds[len(bounds)-1], total
}

// LedgerStats is what the audit ledger did during the run.
type LedgerStats struct {
	Leaves          float64 `json:"leaves_appended"`
	LeavesPerSecond float64 `json:"leaves_per_second"`
	CaughtUpAfterMs float64 `json:"checkpointed_after_load_ms"`
	CaughtUp        bool    `json:"caught_up"`
	InclusionP50Ms  float64 `json:"inclusion_p50_ms"`
	InclusionP99Ms  float64 `json:"inclusion_p99_ms"`
	AppendP50Ms     float64 `json:"append_p50_ms"`
	AppendP99Ms     float64 `json:"append_p99_ms"`
	Batches         uint64  `json:"append_batches"`
	AnchorP50Ms     float64 `json:"anchor_p50_ms,omitempty"`
	AnchorP99Ms     float64 `json:"anchor_p99_ms,omitempty"`
	Anchors         uint64  `json:"anchors,omitempty"`
	ProofP50Us      float64 `json:"proof_p50_us"`
	ProofP99Us      float64 `json:"proof_p99_us"`
	Proofs          int     `json:"proofs"`
	Error           string  `json:"error,omitempty"`
}

// ledgerStats waits for the ledger to hold every event of the run and
// measures its throughput, commit-to-inclusion lag and proof latency.
func ledgerStats(client *http.Client, url string, before map[string]*dto.MetricFamily, elapsed time.Duration, ids []string) *LedgerStats {
	st := &LedgerStats{}
	start := time.Now()
	var after map[string]*dto.MetricFamily
	for {
		m, err := scrape(client, url)
		if err != nil {
			st.Error = err.Error()
			return st
		}
		after = m
		if gauge(m, "ordergrid_ledger_lag_seconds") == 0 && gauge(m, "ordergrid_ledger_size_leaves") == gauge(m, "ordergrid_ledger_checkpoint_size_leaves") {
			st.CaughtUp = true
			break
		}
		if time.Since(start) > ledgerCatchUpMax {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	st.CaughtUpAfterMs = float64(time.Since(start).Milliseconds())
	st.Leaves = gauge(after, "ordergrid_ledger_appended_leaves_total") - gauge(before, "ordergrid_ledger_appended_leaves_total")
	st.LeavesPerSecond = st.Leaves / elapsed.Seconds()
	q := func(name string, p float64) (float64, uint64) {
		v, n := quantile(after, before, name, p)
		if math.IsNaN(v) {
			v = 0
		}
		return v * 1000, n
	}
	st.InclusionP50Ms, _ = q("ordergrid_ledger_inclusion_seconds", 0.5)
	st.InclusionP99Ms, _ = q("ordergrid_ledger_inclusion_seconds", 0.99)
	st.AppendP50Ms, st.Batches = q("ordergrid_ledger_append_seconds", 0.5)
	st.AppendP99Ms, _ = q("ordergrid_ledger_append_seconds", 0.99)
	st.AnchorP50Ms, st.Anchors = q("ordergrid_ledger_anchor_seconds", 0.5)
	st.AnchorP99Ms, _ = q("ordergrid_ledger_anchor_seconds", 0.99)
	lat := proofLatency(client, url, ids)
	if len(lat) > 0 {
		st.Proofs = len(lat)
		st.ProofP50Us = float64(lat[len(lat)/2].Microseconds())
		st.ProofP99Us = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())
	}
	return st
}

// proofLatency fetches the proof bundles of up to proofSamplesMax orders, one
// at a time, and returns the sorted latencies.
func proofLatency(client *http.Client, url string, ids []string) []time.Duration {
	const proofSamplesMax = 500
	if len(ids) > proofSamplesMax {
		ids = ids[:proofSamplesMax]
	}
	var lat []time.Duration
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/orders/"+id+"/proof", nil)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				lat = append(lat, time.Since(t0))
			}
		}
		cancel()
	}
	slices.Sort(lat)
	return lat
}
