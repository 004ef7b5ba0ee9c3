package gateway

import (
	"cmp"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"time"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
)

// The ops page and its data. GET /ops serves the page, a static shell
// that holds no data (no token needed); in the browser it asks for an API
// token and reads GET /v1/ops/summary and GET /v1/stream with it. Its
// assets are embedded in the binary: no CDN, no font or script from
// elsewhere (Content-Security-Policy 'self').

// opsAssets are the ops page's files.
//
//go:embed pages/ops
var opsAssets embed.FS

// opsPage is the page's directory in opsAssets.
const opsPage = "pages/ops"

// opsAlertGroupsMax bounds the alert groups a summary lists (the largest).
const opsAlertGroupsMax = 50

// OpsSource is what the ops summary reads of the node beside the
// gateway's own observations (cmd/ordergrid wires the node's actors,
// cluster host and ledger sequencer).
type OpsSource interface {
	// OrderCounts counts the orders of every partition (archived ones left
	// out) by dimension (status, channel, warehouse, region) and value.
	OrderCounts() map[string]map[string]int64
	// LocalStatus is this node's view of its partitions.
	LocalStatus(withHash bool) *clusterpb.StatusResponse
	// LedgerLag is how far the log is behind, at now.
	LedgerLag(now time.Time) (ledger.Lag, error)
}

// opsSecurityPolicy keeps the page to its own origin: its scripts, styles
// and the API calls it makes.
const opsSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (g *Gateway) opsRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	api("GET /v1/ops/summary", g.getOpsSummary)
	g.handle("GET /ops", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveOpsAsset(w, "index.html") }))
	g.handle("GET /ops/{asset}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveOpsAsset(w, r.PathValue("asset")) }))
}

// opsContentTypes are the types of the page's files, by extension.
var opsContentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// serveOpsAsset answers one of the page's files; any other name is a 404.
func serveOpsAsset(w http.ResponseWriter, name string) {
	ctype, known := opsContentTypes[path.Ext(name)]
	body, err := fs.ReadFile(opsAssets, opsPage+"/"+name)
	if !known || err != nil || name != path.Base(name) {
		writeProblem(w, &Problem{Status: http.StatusNotFound, Name: "no-route", Title: "No such page", Detail: "the ops page has no file " + name})
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", opsSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// opsIntake is the summary's intake series: one value a second, oldest
// first, from From.
type opsIntake struct {
	ResolutionSeconds int       `json:"resolution_seconds"`
	From              string    `json:"from"`
	OrdersPerSecond   []uint32  `json:"orders_per_second"`
	TooManyPerSecond  []uint32  `json:"too_many_per_second"`
	RequestsPerSecond []uint32  `json:"requests_per_second"`
	LatencyP50Ms      []float64 `json:"latency_p50_ms"`
	LatencyP99Ms      []float64 `json:"latency_p99_ms"`
}

type opsAlertGroup struct {
	Stage       string `json:"stage"`
	Warehouse   string `json:"warehouse"`
	Channel     string `json:"channel"`
	Carrier     string `json:"carrier"`
	Count       int64  `json:"count"`
	OldestSince string `json:"oldest_since"`
	OldestOrder string `json:"oldest_order"`
}

type opsAlerts struct {
	Open        int64           `json:"open"`
	Ungrouped   int64           `json:"ungrouped"`
	GroupsTotal int             `json:"groups_total"`
	Groups      []opsAlertGroup `json:"groups"`
}

type opsPartition struct {
	ID           uint32 `json:"id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is this node's commit index minus its applied index.
	Lag uint64 `json:"lag"`
}

type opsLedger struct {
	Size                 uint64         `json:"size"`
	CheckpointSize       uint64         `json:"checkpoint_size"`
	UncheckpointedLeaves uint64         `json:"uncheckpointed_leaves"`
	LagSeconds           float64        `json:"lag_seconds"`
	CheckpointLagSeconds float64        `json:"checkpoint_lag_seconds"`
	Anchor               *ledger.Anchor `json:"anchor"`
	Anchoring            any            `json:"anchoring,omitempty"`
}

// opsSummary is GET /v1/ops/summary's answer.
type opsSummary struct {
	Node       string                      `json:"node"`
	At         string                      `json:"at"`
	StreamHead *uint64                     `json:"stream_head"`
	Orders     int64                       `json:"orders"`
	Counts     map[string]map[string]int64 `json:"counts"`
	Intake     opsIntake                   `json:"intake"`
	Alerts     opsAlerts                   `json:"alerts"`
	Partitions []opsPartition              `json:"partitions"`
	Ledger     *opsLedger                  `json:"ledger"`
	// Errors name the parts that could not be read, and why.
	Errors map[string]string `json:"errors,omitempty"`
}

// getOpsSummary answers the ops page's data in one document: order counts,
// the last ten minutes' intake, open alerts by cause, partitions and the
// ledger. A part that cannot be read is left empty and named in errors.
// Role ops (or admin).
func (g *Gateway) getOpsSummary(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "the ops summary", RoleOps); p != nil {
		return p
	}
	now := time.Now()
	out := opsSummary{At: now.UTC().Format(time.RFC3339Nano), Errors: map[string]string{}, Partitions: []opsPartition{},
		Counts: map[string]map[string]int64{}}
	// The stream's head is read before the counts: the stream from it
	// holds every event the counts may not have seen yet.
	if g.events != nil {
		if head, err := g.events.Head(); err == nil {
			out.StreamHead = &head
		} else {
			out.Errors["stream_head"] = err.Error()
		}
	}
	for _, d := range []string{"status", "channel", "warehouse", "region"} {
		out.Counts[d] = map[string]int64{}
	}
	ops := g.ops
	if ops != nil {
		for d, values := range ops.OrderCounts() {
			out.Counts[d] = values
		}
		st := ops.LocalStatus(false)
		out.Node = st.GetNodeId()
		for _, p := range st.GetPartitions() {
			v := opsPartition{ID: p.Id, State: p.State, Leader: p.LeaderId, Term: p.Term, CommitIndex: p.CommitIndex, AppliedIndex: p.AppliedIndex}
			if p.CommitIndex > p.AppliedIndex {
				v.Lag = p.CommitIndex - p.AppliedIndex
			}
			out.Partitions = append(out.Partitions, v)
		}
	}
	for _, n := range out.Counts["status"] {
		out.Orders += n
	}
	out.Intake = g.opsIntake()
	out.Alerts = opsAlerts{Groups: []opsAlertGroup{}}
	if g.alerts != nil {
		got, err := g.alerts.AlertGroups(alertFields)
		if err != nil {
			out.Errors["alerts"] = err.Error()
		} else {
			out.Alerts = opsAlertsOf(got)
		}
	}
	out.Ledger = g.opsLedger(now, out.Errors)
	if len(out.Errors) == 0 {
		out.Errors = nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// opsIntake is the gateway's observations of the last ten minutes.
func (g *Gateway) opsIntake() opsIntake {
	from, secs := g.metrics.observed.series()
	in := opsIntake{ResolutionSeconds: 1, From: time.Unix(from, 0).UTC().Format(time.RFC3339),
		OrdersPerSecond: make([]uint32, len(secs)), TooManyPerSecond: make([]uint32, len(secs)), RequestsPerSecond: make([]uint32, len(secs)),
		LatencyP50Ms: make([]float64, len(secs)), LatencyP99Ms: make([]float64, len(secs))}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for i, s := range secs {
		in.OrdersPerSecond[i], in.TooManyPerSecond[i], in.RequestsPerSecond[i] = s.accepted, s.tooMany, s.requests
		in.LatencyP50Ms[i], in.LatencyP99Ms[i] = ms(s.p50), ms(s.p99)
	}
	return in
}

// opsAlertsOf lists the largest alert groups first (then the oldest).
func opsAlertsOf(got *gridpb.AlertGroups) opsAlerts {
	groups := got.Groups
	slices.SortFunc(groups, func(a, b *gridpb.AlertGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.OldestSinceUnixNano, b.OldestSinceUnixNano), cmp.Compare(a.OldestOrder, b.OldestOrder))
	})
	out := opsAlerts{Open: got.Open, Ungrouped: got.Ungrouped, GroupsTotal: len(groups), Groups: make([]opsAlertGroup, 0, min(len(groups), opsAlertGroupsMax))}
	for _, gr := range groups[:min(len(groups), opsAlertGroupsMax)] {
		out.Groups = append(out.Groups, opsAlertGroup{Stage: gr.Stage, Warehouse: gr.Warehouse, Channel: gr.Channel, Carrier: gr.Carrier,
			Count: gr.Count, OldestSince: timeString(gr.OldestSinceUnixNano), OldestOrder: gr.OldestOrder})
	}
	return out
}

// opsLedger is the ledger's part of the summary (nil: no ledger), its
// failures noted in errs.
func (g *Gateway) opsLedger(now time.Time, errs map[string]string) *opsLedger {
	if g.opts.Ledger == nil {
		return nil
	}
	out := &opsLedger{}
	if g.ops != nil {
		lag, err := g.ops.LedgerLag(now)
		if err != nil {
			errs["ledger"] = err.Error()
		}
		out.Size, out.CheckpointSize = lag.Size, lag.CheckpointSize
		out.LagSeconds, out.CheckpointLagSeconds = lag.Events.Seconds(), lag.Checkpoint.Seconds()
	} else {
		size, err := g.opts.Ledger.Size()
		if err != nil {
			errs["ledger"] = err.Error()
		}
		out.Size = size
		if cs, _, err := g.opts.Ledger.LatestCheckpoint(); err == nil {
			out.CheckpointSize = cs
		}
	}
	if out.Size > out.CheckpointSize {
		out.UncheckpointedLeaves = out.Size - out.CheckpointSize
	}
	if a, err := g.opts.Ledger.LatestAnchor(); err == nil {
		out.Anchor = ledger.AnchorView(a)
	}
	if g.opts.AnchorStatus != nil {
		out.Anchoring = g.opts.AnchorStatus()
	}
	return out
}
