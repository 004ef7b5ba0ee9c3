package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/browsertest"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/screening"
)

// decidedHold is one DecideHold call the fake queue received.
type decidedHold struct{ principal, id, decision, reason string }

// fakeHoldQueue is a review queue in memory: held orders, oldest first;
// a decision takes the order off the queue, except for the orders in
// refuse, which answer ILLEGAL_TRANSITION with their detail and stay.
type fakeHoldQueue struct {
	mu      sync.Mutex
	held    []*gridpb.OrderRecord
	refuse  map[string]string
	decided []decidedHold
}

func (f *fakeHoldQueue) Holds(reason string, afterAt int64, afterID string, limit int) ([]*gridpb.OrderRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*gridpb.OrderRecord
	for _, o := range f.held {
		h := o.Hold
		if reason != "" && h.Reason != reason {
			continue
		}
		if afterID != "" && cmp.Or(cmp.Compare(h.HeldUnixNano, afterAt), cmp.Compare(o.Id, afterID)) <= 0 {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, o)
	}
	return out, nil
}

func (f *fakeHoldQueue) HoldCounts() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]int64{}
	for _, o := range f.held {
		counts[o.Hold.Reason]++
	}
	return counts
}

func (f *fakeHoldQueue) DecideHold(_ context.Context, principal, id, decision, reason string) (*gridpb.OrderGrainResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decided = append(f.decided, decidedHold{principal, id, decision, reason})
	i := slices.IndexFunc(f.held, func(o *gridpb.OrderRecord) bool { return o.Id == id })
	if i < 0 {
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}, nil
	}
	if detail, ok := f.refuse[id]; ok {
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Detail: detail, Order: f.held[i]}, nil
	}
	o := proto.Clone(f.held[i]).(*gridpb.OrderRecord)
	f.held = slices.Delete(f.held, i, i+1)
	o.Status = "pending_payment"
	if decision == "cancel" {
		o.Status = "cancelled"
	}
	o.Hold.Decision, o.Hold.DecidedBy, o.Hold.DecisionReason = decision, principal, reason
	return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}, nil
}

func (f *fakeHoldQueue) calls() []decidedHold {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.decided)
}

// orderReader is a grid that reads orders from a map (GET
// /v1/orders/{id}/risk); nothing else of it is called here.
type orderReader struct {
	Grid
	orders map[string]*gridpb.OrderRecord
}

func (g orderReader) ReadOrder(id string) (*gridpb.OrderRecord, bool, error) {
	o, ok := g.orders[id]
	return o, ok, nil
}

// heldOrder is an order held for reason since ago, its hold ending in a
// day from then.
func heldOrder(id, reason string, ago time.Duration, findings ...*pb.HoldFinding) *gridpb.OrderRecord {
	held := time.Now().Add(-ago)
	return &gridpb.OrderRecord{Id: id, Status: "on_hold", Channel: "web", Currency: "CNY", Total: "129.00",
		Lines: []*gridpb.OrderLineRecord{{}},
		Hold:  &gridpb.OrderHoldRecord{Reason: reason, Findings: findings, HeldUnixNano: held.UnixNano(), UntilUnixNano: held.Add(24 * time.Hour).UnixNano()}}
}

// The ops page's review queue in a real browser (headless Chromium): the
// counts by reason and the held orders with their findings; the risk
// score expands into its contributions, with signs in text; Release asks
// for a reason, and with one the queue gets DecideHold(id, "release",
// reason), the row leaves and the counts follow; an empty reason is not
// sent; a refused decision shows its detail in the row; the page passes
// the accessibility check. A node without the queue (503) says so in the
// panel and the rest of the page works on.
func TestOpsPageReviewQueueInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	names := screening.GroupedFeatureNames()
	features := make([]float32, len(names)-1)
	contributions := make([]float32, len(names))
	at := func(name string) int {
		i := slices.Index(names, name)
		if i < 0 {
			t.Fatalf("no feature %q in %v", name, names)
		}
		return i
	}
	contributions[at("first_order")] = 0.58
	features[at("first_order")] = 1
	contributions[at("hour_of_day")] = -0.21
	features[at("hour_of_day")] = 3

	risky := heldOrder("o_risk1", "risk", 40*time.Minute, &pb.HoldFinding{Code: "risk_score", Detail: "0.91 at or above the hold threshold 0.80"})
	risky.Risk = &gridpb.RiskRecord{Score: 0.91, Verdict: "hold", Model: "m-test", Base: -2.1, Features: features, Contributions: contributions}
	queue := &fakeHoldQueue{
		held: []*gridpb.OrderRecord{
			risky,
			heldOrder("o_addr1", "address", 30*time.Minute, &pb.HoldFinding{Code: "address_incomplete", Detail: "no street number"}),
			heldOrder("o_lim1", "limit", 12*time.Minute, &pb.HoldFinding{Code: "limit_exceeded", Detail: "rule gpu-1: at most 2 per customer, 3 asked"}),
			heldOrder("o_lim2", "limit", 5*time.Minute, &pb.HoldFinding{Code: "limit_exceeded", Detail: "rule gpu-1: at most 2 per customer, 4 asked"}),
		},
		refuse: map[string]string{"o_addr1": "the hold was decided already (release)"},
	}
	grid := orderReader{orders: map[string]*gridpb.OrderRecord{"o_risk1": risky}}
	gw, toks := tokenGateway(t, Backend{Holds: queue, Grid: grid, Ops: fakeOps{counts: map[string]map[string]int64{"status": {"on_hold": 4}}}})
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)

	b := browsertest.Start(t, browsertest.Viewport(1280, 900))
	if code := b.Open(t, srv.URL+"/ops"); code != http.StatusOK {
		t.Fatalf("GET /ops: %d", code)
	}
	signIn(t, b, toks[RoleOps])
	b.WaitText(t, "#holds-total", "4", 10*time.Second)
	for reason, want := range map[string]string{"limit": "2", "address": "1", "risk": "1", "duplicate": "0"} {
		if got := b.Text(t, `[data-count="hold:`+reason+`"]`); got != want {
			t.Errorf("held for %s: %q, want %s", reason, got, want)
		}
	}
	var order []string
	b.Eval(t, `Array.from(document.querySelectorAll("#holds-table tbody tr[data-order]")).map((tr) => tr.dataset.order)`, &order)
	if strings.Join(order, " ") != "o_risk1 o_addr1 o_lim1 o_lim2" {
		t.Errorf("rows %v, want the oldest first", order)
	}
	row := func(id string) string { return `#holds-table tr[data-order="` + id + `"]` }
	for sel, want := range map[string]string{
		row("o_lim1") + ` [data-role="findings"]`:  "limit_exceeded: rule gpu-1: at most 2 per customer, 3 asked",
		row("o_lim1") + ` [data-role="held-at"]`:   "12 min ago",
		row("o_lim1") + ` [data-role="until"]`:     "in 23 h",
		row("o_lim1") + ` [data-role="total"]`:     "129.00 CNY",
		row("o_lim1") + ` [data-role="channel"]`:   "web",
		row("o_addr1") + ` [data-role="findings"]`: "address_incomplete: no street number",
		row("o_risk1") + ` [data-role="risk"]`:     "0.91 hold",
		row("o_lim1") + ` [data-role="risk"]`:      "–",
	} {
		if got := b.Text(t, sel); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q in it", sel, got, want)
		}
	}

	// The risk score opens its contributions: signs and words, not only colour.
	click(t, b, row("o_risk1")+" button.risk-toggle")
	b.WaitText(t, `#risk-o_risk1 tr[data-feature="first_order"]`, "+0.58 raises", 5*time.Second)
	if got := b.Text(t, `#risk-o_risk1 tr[data-feature="hour_of_day"]`); !strings.Contains(got, "3") || !strings.Contains(got, "-0.21 lowers") {
		t.Errorf("hour_of_day: %q", got)
	}
	if got := b.Text(t, `#risk-o_risk1 caption`); !strings.Contains(got, "0.91 (hold)") {
		t.Errorf("caption %q", got)
	}
	var bars int
	b.Eval(t, `document.querySelectorAll("#risk-o_risk1 svg rect").length`, &bars)
	if bars != 2 {
		t.Errorf("%d bars, want one for each feature that moved the score (2)", bars)
	}
	if got := b.Text(t, `#risk-o_risk1 .note`); !strings.Contains(got, "No effect (0.00): ") || !strings.Contains(got, "amount") {
		t.Errorf("the features without effect: %q", got)
	}
	b.Screenshot(t, "ops-review-queue")

	// Release without a reason: the browser asks for one, nothing is sent.
	click(t, b, row("o_lim2")+` button[data-decision="release"]`)
	click(t, b, row("o_lim2")+` button[data-role="confirm"]`)
	var missing bool
	b.Eval(t, `document.querySelector('#decision-reason-o_lim2').validity.valueMissing`, &missing)
	if !missing {
		t.Error("an empty reason is not flagged as missing")
	}
	click(t, b, row("o_lim2")+` button[aria-label^="Back"]`)

	// Release with a reason, typed: the queue gets the decision, the row
	// leaves, the counts follow.
	const why = "customer confirmed by phone"
	click(t, b, row("o_lim1")+` button[data-decision="release"]`)
	typeInto(t, b, "#decision-reason-o_lim1", why)
	click(t, b, row("o_lim1")+` button[data-role="confirm"]`)
	b.WaitText(t, "#holds-message", "Order o_lim1 released (now pending_payment)", 5*time.Second)
	b.WaitText(t, "#holds-total", "3", 5*time.Second)
	b.WaitText(t, `[data-count="hold:limit"]`, "1", 5*time.Second)
	if n := count(t, b, row("o_lim1")); n != 0 {
		t.Errorf("the released order's row is still there (%d)", n)
	}
	if got := queue.calls(); len(got) != 1 || got[0] != (decidedHold{"ops", "o_lim1", "release", why}) {
		t.Fatalf("decisions %+v, want o_lim1 released by ops with the reason", got)
	}

	// A refused decision: its detail in the row, which stays.
	click(t, b, row("o_addr1")+` button[data-decision="cancel"]`)
	typeInto(t, b, "#decision-reason-o_addr1", "address cannot be fixed")
	click(t, b, row("o_addr1")+` button[data-role="confirm"]`)
	b.WaitText(t, row("o_addr1")+" .row-error", "Not cancelled: the hold was decided already (release); the order is on_hold (HTTP 409, not-held)", 5*time.Second)
	if got := queue.calls(); len(got) != 2 || got[1] != (decidedHold{"ops", "o_addr1", "cancel", "address cannot be fixed"}) {
		t.Fatalf("decisions %+v", got)
	}
	// It stays through the next reads of the queue.
	before := b.Text(t, "#holds-at")
	pollUntil(t, b, fmt.Sprintf(`document.getElementById("holds-at").textContent !== %q`, before), 15*time.Second)
	if n := count(t, b, row("o_addr1")+" .row-error:not([hidden])"); n != 1 {
		t.Errorf("the refused row lost its error across a re-read (%d)", n)
	}
	b.Screenshot(t, "ops-review-refused")
	checkAccessibility(t, b)

	// A node without the queue: the panel says so, the rest works on.
	bare, toks2 := tokenGateway(t, Backend{Ops: fakeOps{counts: map[string]map[string]int64{"status": {"paid": 2}}}})
	srv2 := httptest.NewServer(bare)
	t.Cleanup(srv2.Close)
	if code := b.Open(t, srv2.URL+"/ops"); code != http.StatusOK {
		t.Fatalf("GET /ops: %d", code)
	}
	signIn(t, b, toks2[RoleOps])
	b.WaitText(t, "#holds-message", "The review queue is not available on this node: the review queue is not wired on this node (HTTP 503", 10*time.Second)
	b.WaitText(t, "#orders-total", "2", 5*time.Second)
	if got := b.Text(t, "#message"); got != "" {
		t.Errorf("the page's message: %q, want none", got)
	}
	b.Screenshot(t, "ops-review-unwired")
	checkAccessibility(t, b)
}

// checkAccessibility runs the harness's check from the top of the page: a
// click on the heading moves the browser's Tab starting point there (the
// harness blurs the focused element, but Chromium's next Tab starts after
// the element last clicked or focused, and the check presses Tab once an
// element).
func checkAccessibility(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	click(t, b, "header h1")
	b.CheckAccessibility(t)
}

// signIn types the token and presses Connect, as a user would.
func signIn(t *testing.T, b *browsertest.Browser, token string) {
	t.Helper()
	typeInto(t, b, "#token", token)
	click(t, b, "#token-submit")
}

func click(t *testing.T, b *browsertest.Browser, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), browsertest.ActionTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		t.Fatalf("clicking %s: %v", selector, err)
	}
}

func typeInto(t *testing.T, b *browsertest.Browser, selector, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), browsertest.ActionTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.SendKeys(chromedp.CSS(selector), text)); err != nil {
		t.Fatalf("typing into %s: %v", selector, err)
	}
}

func count(t *testing.T, b *browsertest.Browser, selector string) int {
	t.Helper()
	var n int
	b.Eval(t, fmt.Sprintf("document.querySelectorAll(%q).length", selector), &n)
	return n
}

// pollUntil waits until expr is true in the page.
func pollUntil(t *testing.T, b *browsertest.Browser, expr string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), timeout+browsertest.ActionTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("%s: not true within %s: %v", expr, timeout, err)
	}
}
