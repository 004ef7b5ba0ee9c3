package gateway

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
)

// The ring keeps one closed second per second: orders, 429s, requests and
// their latency percentiles; a second with no observation reads as zero,
// one older than the window is gone, and it never holds more than the
// window.
func TestIntakeRing(t *testing.T) {
	var mu sync.Mutex
	clock := time.Unix(1_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	r := newIntakeRing(now)
	r.ordersAccepted(3)
	r.answered(http.StatusTooManyRequests, 0, false)
	for i := range 100 {
		// 98 fast requests, 2 slow ones.
		d := time.Millisecond
		if i >= 98 {
			d = time.Second
		}
		r.answered(http.StatusCreated, d, true)
	}
	set(clock.Add(3 * time.Second))
	r.ordersAccepted(1)
	set(clock.Add(time.Second))
	from, secs := r.series()
	if len(secs) != opsWindowSeconds || from != clock.Unix()-opsWindowSeconds {
		t.Fatalf("%d seconds from %d, want %d from %d", len(secs), from, opsWindowSeconds, clock.Unix()-opsWindowSeconds)
	}
	first := secs[len(secs)-4] // 1_000_000
	if first.unix != 1_000_000 || first.accepted != 3 || first.tooMany != 1 || first.requests != 100 {
		t.Fatalf("first second: %+v", first)
	}
	if first.p50 < time.Millisecond || first.p50 > 1250*time.Microsecond || first.p99 < time.Second || first.p99 > 1250*time.Millisecond {
		t.Fatalf("percentiles p50 %v p99 %v, want about 1ms and 1s", first.p50, first.p99)
	}
	if gap := secs[len(secs)-3]; gap.unix != 1_000_001 || gap.accepted != 0 || gap.requests != 0 {
		t.Fatalf("a quiet second: %+v", gap)
	}
	if last := secs[len(secs)-1]; last.unix != 1_000_003 || last.accepted != 1 || last.p50 != 0 {
		t.Fatalf("last second: %+v", last)
	}
	// Eleven minutes on, the first second is out of the window.
	set(clock.Add(11 * time.Minute))
	_, secs = r.series()
	for _, s := range secs {
		if s.accepted != 0 || s.requests != 0 {
			t.Fatalf("stale second in the window: %+v", s)
		}
	}
}

// fakeOps is a node's ops source with fixed answers.
type fakeOps struct {
	counts map[string]map[string]int64
	lagErr error
}

func (f fakeOps) OrderCounts() map[string]map[string]int64 { return f.counts }

func (f fakeOps) LocalStatus(bool) *clusterpb.StatusResponse {
	return &clusterpb.StatusResponse{NodeId: "n1", Partitions: []*clusterpb.PartitionStatus{
		{Id: 0, State: "Leader", LeaderId: "n1", CommitIndex: 10, AppliedIndex: 10, Term: 2},
		{Id: 1, State: "Follower", LeaderId: "n2", CommitIndex: 12, AppliedIndex: 9, Term: 3}}}
}

func (f fakeOps) LedgerLag(time.Time) (ledger.Lag, error) {
	return ledger.Lag{}, f.lagErr
}

// tokenGateway is a gateway over b with a token of every role (the
// channel-bound ones bound to "web").
func tokenGateway(t *testing.T, b Backend) (*Gateway, map[Role]string) {
	t.Helper()
	toks := map[Role]string{}
	var entries []TokenEntry
	for _, r := range roles {
		var chans []string
		if r.channelBound() {
			chans = []string{"web"}
		}
		tok, e, err := NewToken(string(r), r, chans, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		toks[r], entries = tok, append(entries, e)
	}
	tokens, err := NewTokens(entries)
	if err != nil {
		t.Fatal(err)
	}
	return New(b, Options{Tokens: tokens, Logger: slog.New(slog.DiscardHandler)}), toks
}

func opsGet(gw *Gateway, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	return rec
}

// GET /v1/ops/summary is for ops and admin: it answers the counts, the
// intake series, the alerts by cause and the partitions in one document;
// others get 403 naming the roles, no token 401.
func TestOpsSummary(t *testing.T) {
	alerts := &fakeAlerts{alerts: []*gridpb.AlertGroup{
		{Stage: "paid", Warehouse: "WH-1", Channel: "tmall", OldestSinceUnixNano: 5, OldestOrder: "o_a"},
		{Stage: "paid", Warehouse: "WH-1", Channel: "tmall", OldestSinceUnixNano: 3, OldestOrder: "o_b"},
		{Stage: "shipped", Warehouse: "WH-2", Channel: "web", Carrier: "SF", OldestSinceUnixNano: 1, OldestOrder: "o_c"}}}
	ops := fakeOps{counts: map[string]map[string]int64{
		"status": {"paid": 2, "pending_payment": 1}, "channel": {"tmall": 3},
		"warehouse": {"WH-1": 2, "": 1}, "region": {"east": 3}}}
	gw, toks := tokenGateway(t, Backend{Alerts: alerts, Ops: ops})

	if rec := opsGet(gw, "/v1/ops/summary", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", rec.Code)
	}
	for _, r := range []Role{RoleIntake, RolePartner, RoleCompliance} {
		rec := opsGet(gw, "/v1/ops/summary", toks[r])
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "needs role ops or admin") {
			t.Fatalf("as %s: %d %s", r, rec.Code, rec.Body)
		}
	}
	gw.metrics.observed.ordersAccepted(2)
	for _, r := range []Role{RoleOps, RoleAdmin} {
		rec := opsGet(gw, "/v1/ops/summary", toks[r])
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("as %s: %d %s %s", r, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		var got opsSummary
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Orders != 3 || got.Counts["status"]["paid"] != 2 || got.Counts["warehouse"][""] != 1 || got.Counts["region"]["east"] != 3 {
			t.Errorf("counts: %d %v", got.Orders, got.Counts)
		}
		in := got.Intake
		if in.ResolutionSeconds != 1 || len(in.OrdersPerSecond) != opsWindowSeconds || len(in.TooManyPerSecond) != opsWindowSeconds ||
			len(in.LatencyP50Ms) != opsWindowSeconds || len(in.LatencyP99Ms) != opsWindowSeconds || len(in.RequestsPerSecond) != opsWindowSeconds {
			t.Errorf("intake series: %+v", in)
		}
		if _, err := time.Parse(time.RFC3339, in.From); err != nil {
			t.Errorf("intake from %q: %v", in.From, err)
		}
		if got.Alerts.Open != 3 || len(got.Alerts.Groups) != 2 || got.Alerts.Groups[0].Count != 2 || got.Alerts.Groups[0].OldestOrder != "o_b" ||
			got.Alerts.Groups[1].Carrier != "SF" {
			t.Errorf("alerts: %+v", got.Alerts)
		}
		if got.Node != "n1" || len(got.Partitions) != 2 || got.Partitions[1].Leader != "n2" || got.Partitions[1].Lag != 3 || got.Partitions[0].Lag != 0 {
			t.Errorf("partitions: %s %+v", got.Node, got.Partitions)
		}
		if got.Ledger != nil || got.StreamHead != nil || got.Errors != nil {
			t.Errorf("no ledger, no stream: %+v %v %v", got.Ledger, got.StreamHead, got.Errors)
		}
	}
	// The accepted orders show in the current second's successor.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	var got opsSummary
	if err := json.Unmarshal(opsGet(gw, "/v1/ops/summary", toks[RoleOps]).Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var accepted, requests uint32
	for i := range got.Intake.OrdersPerSecond {
		accepted += got.Intake.OrdersPerSecond[i]
		requests += got.Intake.RequestsPerSecond[i]
	}
	if accepted != 2 || requests < 2 {
		t.Errorf("intake: %d orders, %d requests over the window; want 2 orders and the summaries asked for", accepted, requests)
	}
}

// Without a node source the summary still answers the gateway's own part,
// with empty counts; a part that fails is named in errors.
func TestOpsSummaryParts(t *testing.T) {
	gw, toks := tokenGateway(t, Backend{})
	rec := opsGet(gw, "/v1/ops/summary", toks[RoleOps])
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	for _, k := range []string{"node", "at", "stream_head", "orders", "counts", "intake", "alerts", "partitions", "ledger"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %s", k, rec.Body)
		}
	}
	counts := got["counts"].(map[string]any)
	for _, d := range []string{"status", "channel", "warehouse", "region"} {
		if m, ok := counts[d].(map[string]any); !ok || len(m) != 0 {
			t.Errorf("counts by %s: %v", d, counts[d])
		}
	}
	failing := &fakeAlertsErr{err: errors.New("partition 3 is loading")}
	gw, toks = tokenGateway(t, Backend{Alerts: failing})
	rec = opsGet(gw, "/v1/ops/summary", toks[RoleOps])
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"errors":{"alerts":"partition 3 is loading"}`) {
		t.Errorf("failing alerts: %d %s", rec.Code, rec.Body)
	}
}

type fakeAlertsErr struct{ err error }

func (f *fakeAlertsErr) AlertGroups([]string) (*gridpb.AlertGroups, error) { return nil, f.err }

// GET /ops serves the page without a token, as HTML with lang, a labelled
// password input and a policy that keeps it to its own origin; every file
// it references is embedded and served, with its type, and no file names
// anything on another host. Unknown or path-like names are 404.
func TestOpsPage(t *testing.T) {
	gw, _ := tokenGateway(t, Backend{})
	rec := opsGet(gw, "/ops", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /ops: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	html := rec.Body.String()
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("policy %q", csp)
	}
	for _, want := range []string{`<html lang="en">`, `<label for="token">API token</label>`, `id="token" name="token" type="password"`,
		`id="connection"`, `id="counts-status"`, `id="chart-orders"`, `id="chart-429"`, `id="chart-latency"`, `id="alerts-table"`,
		`id="partitions-table"`, `id="ledger-lag"`, `id="feed"`, `id="review"`, `id="holds-counts"`, `id="holds-table"`, `id="holds-message"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page has no %s", want)
		}
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("references: %v", refs)
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/ops/") {
			t.Errorf("reference %q is not one of the page's files", ref)
			continue
		}
		rec := opsGet(gw, ref, "")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != types[ref[strings.LastIndex(ref, "."):]] {
			t.Errorf("GET %s: %d %q", ref, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	// No file names another host: the only URL is the SVG namespace, a name, never fetched.
	err := fs.WalkDir(opsAssets, opsPage, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(opsAssets, path)
		if err != nil {
			return err
		}
		rest := strings.ReplaceAll(string(body), `"http://www.w3.org/2000/svg"`, "")
		if strings.Contains(rest, "http://") || strings.Contains(rest, "https://") || strings.Contains(rest, "//cdn") {
			t.Errorf("%s names another host", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/ops/nothing.js", "/ops/index.go", "/ops/..%2fops.go", "/ops/%2e%2e"} {
		if rec := opsGet(gw, bad, ""); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", bad, rec.Code)
		}
	}
}
