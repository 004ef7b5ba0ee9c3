package main

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

func ms(s float64) string { return fmt.Sprintf("%.1fms", s*1000) }

// ledgerReport waits for the ledger to hold every event of the run and
// reports its throughput, commit-to-inclusion lag and proof latency.
func ledgerReport(client *http.Client, url string, before map[string]*dto.MetricFamily, elapsed time.Duration, ids []string) {
	start := time.Now()
	var after map[string]*dto.MetricFamily
	for {
		m, err := scrape(client, url)
		if err != nil {
			fmt.Printf("ledger: %v\n", err)
			return
		}
		after = m
		if gauge(m, "ordergrid_ledger_lag_seconds") == 0 && gauge(m, "ordergrid_ledger_size_leaves") == gauge(m, "ordergrid_ledger_checkpoint_size_leaves") {
			break
		}
		if time.Since(start) > ledgerCatchUpMax {
			fmt.Printf("ledger: not caught up %s after the load\n", ledgerCatchUpMax)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	leaves := gauge(after, "ordergrid_ledger_appended_leaves_total") - gauge(before, "ordergrid_ledger_appended_leaves_total")
	fmt.Printf("ledger: %.0f leaves appended (%.0f/s over the run), checkpointed %s after the load ended\n",
		leaves, leaves/elapsed.Seconds(), time.Since(start).Round(time.Millisecond))
	p50, n := quantile(after, before, "ordergrid_ledger_inclusion_seconds", 0.50)
	p99, _ := quantile(after, before, "ordergrid_ledger_inclusion_seconds", 0.99)
	fmt.Printf("ledger: commit-to-inclusion lag p50 %s  p99 %s  (%d leaves)\n", ms(p50), ms(p99), n)
	a50, an := quantile(after, before, "ordergrid_ledger_append_seconds", 0.50)
	a99, _ := quantile(after, before, "ordergrid_ledger_append_seconds", 0.99)
	fmt.Printf("ledger: append batch through Raft p50 %s  p99 %s  (%d batches, %.0f leaves each on average)\n", ms(a50), ms(a99), an, leaves/math.Max(1, float64(an)))
	if x50, xn := quantile(after, before, "ordergrid_ledger_anchor_seconds", 0.50); xn > 0 {
		x99, _ := quantile(after, before, "ordergrid_ledger_anchor_seconds", 0.99)
		fmt.Printf("ledger: Fabric anchoring transaction p50 %s  p99 %s  (%d anchors)\n", ms(x50), ms(x99), xn)
	}
	proofLatency(client, url, ids)
}

// proofLatency fetches the proof bundles of up to proofSamplesMax orders, one
// at a time, and reports the latency.
func proofLatency(client *http.Client, url string, ids []string) {
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
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	fmt.Printf("ledger: GET /v1/orders/{id}/proof p50 %s  p99 %s  (%d bundles, sequential)\n",
		lat[len(lat)/2].Round(time.Microsecond), lat[min(len(lat)-1, len(lat)*99/100)].Round(time.Microsecond), len(lat))
}
