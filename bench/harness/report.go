package harness

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"strings"
	"time"
)

// Report is a run's result.
type Report struct {
	Scenario string            `json:"scenario"`
	Note     string            `json:"note"`
	Options  *Options          `json:"options"`
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"seconds"`
	Loop     string            `json:"loop"`
	Counts   map[string]int64  `json:"counts"`
	Dropped  int64             `json:"generator_dropped"`
	Accepted float64           `json:"accepted_per_second"`
	Latency  Latency           `json:"latency_accepted"`
	Rejects  Latency           `json:"latency_admission_rejects"`
	NodeCPU  *NodeCPU          `json:"node_cpu,omitempty"`
	Series   []Point           `json:"series"`
	Recovery *Recovery         `json:"recovery,omitempty"`
	Audit    AuditResult       `json:"audit"`
	Ledger   *LedgerStats      `json:"ledger,omitempty"`
	Stream   *StreamStats      `json:"stream,omitempty"`
	Errors   map[string]string `json:"first_errors,omitempty"`
	Profiles []string          `json:"profiles,omitempty"`
	// Reference is the run against the do-nothing reference server
	// (-reference) and the node's figures over its.
	Reference *ReferenceResult `json:"reference,omitempty"`
	// benchCPU is the bench process's own CPU over the load.
	benchCPU *NodeCPU
}

// Latency is a histogram's summary, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Point is one second of the run.
type Point struct {
	T          int     `json:"t"`
	Sent       int64   `json:"sent"`
	Accepted   int64   `json:"accepted"`
	OutOfStock int64   `json:"out_of_stock"`
	Admission  int64   `json:"admission_429"`
	Errors     int64   `json:"errors"`
	RatePlan   float64 `json:"intended_rate,omitempty"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
}

// Recovery is how a surge ended: the peak, and how long after it the p99
// of accepted orders took to come back under the target.
type Recovery struct {
	PeakEndsAt  int     `json:"peak_ends_at_s"`
	TargetP99Ms float64 `json:"target_p99_ms"`
	BackAfterS  float64 `json:"back_under_target_after_s"` // -1: not within the run
}

// surgeTargetP99 is the target for a surge's recovery.
const surgeTargetP99 = 15 * time.Millisecond

func ms(us int64) float64 { return float64(us) / 1000 }

func newReport(o *Options, sc *Scenario, rec *Recorder, elapsed time.Duration, rate Rate) *Report {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := &Report{Scenario: sc.Name, Note: sc.Note, Options: o, Started: rec.start, Seconds: elapsed.Seconds(),
		Loop: "closed", Counts: map[string]int64{}, Dropped: rec.dropped, Errors: map[string]string{}}
	if rate != nil {
		r.Loop = "open"
	}
	for c := Class(0); c < classes; c++ {
		r.Counts[c.String()] = rec.counts[c]
	}
	for c, d := range rec.details {
		r.Errors[c.String()] = d
	}
	r.Accepted = float64(rec.counts[Created]+rec.counts[Replayed]) / elapsed.Seconds()
	r.Latency = summary(rec.total.TotalCount(), rec.total.ValueAtQuantile, rec.total.Max())
	r.Rejects = summary(rec.rejects.TotalCount(), rec.rejects.ValueAtQuantile, rec.rejects.Max())
	for i, s := range rec.seconds {
		p := Point{T: i, Sent: s.sent, Accepted: s.counts[Created] + s.counts[Replayed], OutOfStock: s.counts[OutOfStock],
			Admission: s.counts[Admission], Errors: s.counts[Conflict] + s.counts[Unavailable] + s.counts[ServerError] + s.counts[TransportError],
			P50: ms(s.hist.ValueAtQuantile(50)), P99: ms(s.hist.ValueAtQuantile(99))}
		if rate != nil {
			p.RatePlan = rate(time.Duration(i)*time.Second + time.Second/2)
		}
		r.Series = append(r.Series, p)
	}
	if sc.Name == "surge" && rate != nil {
		quiet, ramp := o.Duration/4, o.Ramp
		hold := max(0, o.Duration-2*quiet-2*ramp)
		end := int((quiet + ramp + hold).Seconds())
		rv := &Recovery{PeakEndsAt: end, TargetP99Ms: ms(surgeTargetP99.Microseconds()), BackAfterS: -1}
		for _, p := range r.Series {
			if p.T >= end && p.Accepted > 0 && p.P99 < rv.TargetP99Ms {
				rv.BackAfterS = float64(p.T - end)
				break
			}
		}
		r.Recovery = rv
	}
	return r
}

func summary(n int64, q func(float64) int64, maxUs int64) Latency {
	if n == 0 {
		return Latency{}
	}
	return Latency{Count: n, P50: ms(q(50)), P90: ms(q(90)), P99: ms(q(99)), P999: ms(q(99.9)), Max: ms(maxUs)}
}

func (r *Report) writeText(w io.Writer) {
	fmt.Fprintf(w, "scenario %s (%s loop, %s, %s): %s\n", r.Scenario, r.Loop, r.Options.Mode, r.Options.Transport, r.Note)
	if r.Options.Holds {
		fmt.Fprintf(w, "holds: on (a purchase limit per customer on every SKU, address checks, the risk score)\n")
	} else {
		fmt.Fprintf(w, "holds: off (no limit; a throwaway node without address checks and risk score)\n")
	}
	fmt.Fprintf(w, "ran %.1fs: accepted %.0f orders/s (%d created, %d retries answered with their order)\n",
		r.Seconds, r.Accepted, r.Counts["created"], r.Counts["replayed"])
	fmt.Fprintf(w, "rejected: %d out of stock, %d admission (429); errors: %d other 4xx, %d 503, %d 5xx, %d transport; generator dropped %d\n",
		r.Counts["out_of_stock"], r.Counts["admission_429"], r.Counts["conflict_4xx"], r.Counts["unavailable_503"],
		r.Counts["server_error_5xx"], r.Counts["transport_error"], r.Dropped)
	l := r.Latency
	fmt.Fprintf(w, "latency of accepted orders (from intended send): p50 %.2fms  p90 %.2fms  p99 %.2fms  p99.9 %.2fms  max %.2fms\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	if c := r.NodeCPU; c != nil {
		fmt.Fprintf(w, "node CPU: %.1fs over %d node(s), %.2f cores, %.0fµs per answered order\n", c.Seconds, c.Nodes, c.Cores, c.MicrosPerOrder)
	}
	if r.Rejects.Count > 0 {
		fmt.Fprintf(w, "latency of 429 answers: p50 %.2fms  p99 %.2fms  max %.2fms\n", r.Rejects.P50, r.Rejects.P99, r.Rejects.Max)
	}
	if rv := r.Recovery; rv != nil {
		if rv.BackAfterS >= 0 {
			fmt.Fprintf(w, "surge: p99 back under %.0fms %.0fs after the peak ended (at %ds)\n", rv.TargetP99Ms, rv.BackAfterS, rv.PeakEndsAt)
		} else {
			fmt.Fprintf(w, "surge: p99 not back under %.0fms within the run after the peak ended (at %ds)\n", rv.TargetP99Ms, rv.PeakEndsAt)
		}
	}
	for c, d := range r.Errors {
		fmt.Fprintf(w, "first %s: %s\n", c, d)
	}
	r.Reference.writeText(w)
	if lg := r.Ledger; lg != nil {
		if lg.Error != "" {
			fmt.Fprintf(w, "ledger: %s\n", lg.Error)
		} else {
			fmt.Fprintf(w, "ledger: %.0f leaves (%.0f/s), checkpointed %.0fms after the load (caught up: %v); commit→inclusion p50 %.1fms p99 %.1fms; append p50 %.1fms p99 %.1fms (%d batches)\n",
				lg.Leaves, lg.LeavesPerSecond, lg.CaughtUpAfterMs, lg.CaughtUp, lg.InclusionP50Ms, lg.InclusionP99Ms, lg.AppendP50Ms, lg.AppendP99Ms, lg.Batches)
			if lg.Anchors > 0 {
				fmt.Fprintf(w, "ledger: Fabric anchoring p50 %.0fms p99 %.0fms (%d anchors)\n", lg.AnchorP50Ms, lg.AnchorP99Ms, lg.Anchors)
			}
			if lg.Proofs > 0 {
				fmt.Fprintf(w, "ledger: GET /v1/orders/{id}/proof p50 %.0fµs p99 %.0fµs (%d, sequential)\n", lg.ProofP50Us, lg.ProofP99Us, lg.Proofs)
			}
		}
	}
	if st := r.Stream; st != nil {
		fmt.Fprintf(w, "event stream: %d events on one open GET /v1/stream; commit → event p50 %.1fms p99 %.1fms max %.1fms (caught up: %v, missing %d, repeated %d)\n",
			st.Events, st.DelayP50Ms, st.DelayP99Ms, st.DelayMaxMs, st.CaughtUp, st.Gaps, st.Repeats)
	}
	verdict := "PASSED"
	if !r.Audit.Passed {
		verdict = "FAILED"
	}
	if r.Audit.Skipped {
		verdict = "skipped (-audit=false)"
	}
	fmt.Fprintf(w, "audit %s\n", verdict)
	for _, c := range r.Audit.Checks {
		mark := "ok  "
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, strings.TrimSuffix(c.Detail, "; "))
	}
}

// humanNumber writes an axis label: 950, 12.5k, 42k, 1.2M.
func humanNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// chart is an SVG line chart of per-second series.
type chart struct {
	Title  string
	Unit   string
	Max    float64
	Lines  []chartLine
	Width  int
	Height int
	Ticks  []tick
	XTicks []tick
}

type chartLine struct {
	Name   string
	Color  string
	Points string
}

type tick struct {
	Pos   float64
	Label string
}

func makeChart(title, unit string, series []Point, lines map[string]func(Point) float64, colors map[string]string, order []string) chart {
	c := chart{Title: title, Unit: unit, Width: 900, Height: 260}
	for _, name := range order {
		for _, p := range series {
			c.Max = max(c.Max, lines[name](p))
		}
	}
	if c.Max == 0 {
		c.Max = 1
	}
	c.Max *= 1.1
	n := max(1, len(series)-1)
	x := func(i int) float64 { return 50 + float64(i)*float64(c.Width-70)/float64(n) }
	y := func(v float64) float64 { return float64(c.Height-30) - v/c.Max*float64(c.Height-50) }
	for _, name := range order {
		var pts []string
		for i, p := range series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(lines[name](p))))
		}
		c.Lines = append(c.Lines, chartLine{Name: name, Color: colors[name], Points: strings.Join(pts, " ")})
	}
	for k := 0; k <= 4; k++ {
		v := c.Max / 1.1 * float64(k) / 4
		c.Ticks = append(c.Ticks, tick{Pos: y(v), Label: humanNumber(v)})
	}
	step := max(1, len(series)/10)
	for i := 0; i < len(series); i += step {
		c.XTicks = append(c.XTicks, tick{Pos: x(i), Label: fmt.Sprintf("%ds", i)})
	}
	return c
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ordergrid bench: {{.R.Scenario}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:960px}
h1{font-size:1.4em} table{border-collapse:collapse;margin:1em 0} td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}
.ok{color:#17803d}.fail{color:#b42318;font-weight:bold} svg{background:#fafafa;border:1px solid #eee;margin:.5em 0}
.legend span{margin-right:1.2em}
</style></head><body>
<h1>ordergrid bench: {{.R.Scenario}}</h1>
<p>{{.R.Note}}. {{.R.Loop}} loop, {{.R.Options.Mode}} intake over {{.R.Options.Transport}}, {{printf "%.1f" .R.Seconds}} s from {{.R.Started.Format "2006-01-02 15:04:05 MST"}}.</p>
<table>
<tr><th>accepted</th><td>{{printf "%.0f" .R.Accepted}} orders/s</td></tr>
<tr><th>latency of accepted orders (from intended send)</th><td>p50 {{printf "%.2f" .R.Latency.P50}} ms · p90 {{printf "%.2f" .R.Latency.P90}} · p99 {{printf "%.2f" .R.Latency.P99}} · p99.9 {{printf "%.2f" .R.Latency.P999}} · max {{printf "%.2f" .R.Latency.Max}}</td></tr>
<tr><th>answers</th><td>{{range $k, $v := .R.Counts}}{{$k}} {{$v}} · {{end}}generator dropped {{.R.Dropped}}</td></tr>
{{if .R.Recovery}}<tr><th>surge recovery</th><td>{{if ge .R.Recovery.BackAfterS 0.0}}p99 under {{.R.Recovery.TargetP99Ms}} ms {{.R.Recovery.BackAfterS}} s after the peak ended{{else}}p99 not back under {{.R.Recovery.TargetP99Ms}} ms within the run{{end}}</td></tr>{{end}}
</table>
{{range .Charts}}
<h2>{{.Title}}</h2>
<div class="legend">{{range .Lines}}<span style="color:{{.Color}}">■ {{.Name}}</span>{{end}}</div>
<svg width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}">
{{range .Ticks}}<line x1="50" x2="880" y1="{{.Pos}}" y2="{{.Pos}}" stroke="#e5e5e5"/><text x="45" y="{{.Pos}}" font-size="11" text-anchor="end" dominant-baseline="middle">{{.Label}}</text>{{end}}
{{range .XTicks}}<text x="{{.Pos}}" y="250" font-size="11" text-anchor="middle">{{.Label}}</text>{{end}}
{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"/>{{end}}
<text x="50" y="12" font-size="11">{{.Unit}}</text>
</svg>
{{end}}
{{with .R.Reference}}<h2>Reference</h2>
{{if .Skipped}}<p>Skipped: {{.Skipped}}</p>{{else}}<p>The same scenario and flags against a do-nothing HTTP intake ({{.Server}}), {{.Order}}; no audit. Server CPU of the reference: {{.CPUSource}}.{{if .SoldOut}} A run sold out: accepted/s is bounded by the stock; answered/s and CPU per answer compare.{{end}}</p>
<table>{{range $i, $row := .Table}}<tr>{{range $row}}{{if eq $i 0}}<th>{{.}}</th>{{else}}<td>{{.}}</td>{{end}}{{end}}</tr>{{end}}</table>{{end}}{{end}}
<h2>Audit: {{if .R.Audit.Passed}}<span class="ok">passed</span>{{else}}<span class="fail">FAILED</span>{{end}}</h2>
<table>{{range .R.Audit.Checks}}<tr><td class="{{if .Passed}}ok{{else}}fail{{end}}">{{if .Passed}}✓{{else}}✗{{end}}</td><td>{{.Name}}</td><td>{{.Detail}}</td></tr>{{end}}</table>
{{with .R.Ledger}}<h2>Audit ledger</h2><table>
<tr><th>leaves appended</th><td>{{printf "%.0f" .Leaves}} ({{printf "%.0f" .LeavesPerSecond}}/s)</td></tr>
<tr><th>commit → inclusion</th><td>p50 {{printf "%.1f" .InclusionP50Ms}} ms · p99 {{printf "%.1f" .InclusionP99Ms}} ms</td></tr>
<tr><th>proof bundle</th><td>p50 {{printf "%.0f" .ProofP50Us}} µs · p99 {{printf "%.0f" .ProofP99Us}} µs</td></tr></table>{{end}}
{{with .R.Stream}}<h2>Event stream</h2><table>
<tr><th>events on one open GET /v1/stream</th><td>{{.Events}} (missing {{.Gaps}}, repeated {{.Repeats}}, caught up: {{.CaughtUp}})</td></tr>
<tr><th>commit → event on the stream</th><td>p50 {{printf "%.1f" .DelayP50Ms}} ms · p99 {{printf "%.1f" .DelayP99Ms}} ms · max {{printf "%.1f" .DelayMaxMs}} ms</td></tr></table>{{end}}
</body></html>
`))

func (r *Report) writeHTML(path string) error {
	charts := []chart{
		makeChart("Throughput per second", "answers per second", r.Series, map[string]func(Point) float64{
			"accepted":      func(p Point) float64 { return float64(p.Accepted) },
			"out of stock":  func(p Point) float64 { return float64(p.OutOfStock) },
			"429":           func(p Point) float64 { return float64(p.Admission) },
			"errors":        func(p Point) float64 { return float64(p.Errors) },
			"intended rate": func(p Point) float64 { return p.RatePlan },
		}, map[string]string{"accepted": "#1f77b4", "out of stock": "#8c564b", "429": "#ff7f0e", "errors": "#d62728", "intended rate": "#aaaaaa"},
			[]string{"intended rate", "accepted", "out of stock", "429", "errors"}),
		makeChart("Latency of accepted orders per second", "milliseconds", r.Series, map[string]func(Point) float64{
			"p50": func(p Point) float64 { return p.P50 },
			"p99": func(p Point) float64 { return p.P99 },
		}, map[string]string{"p50": "#2ca02c", "p99": "#9467bd"}, []string{"p50", "p99"}),
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := page.Execute(f, struct {
		R      *Report
		Charts []chart
	}{r, charts}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
