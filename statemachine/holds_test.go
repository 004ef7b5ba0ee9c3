package statemachine

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
)

// heldOrderRecord is an order held at intake for reason until until.
func heldOrderRecord(id, reason string, until int64) *gridpb.OrderRecord {
	return &gridpb.OrderRecord{Id: id, Channel: "tmall", RequestHash: []byte("h" + id), PayByUnixNano: until,
		Customer: &pb.Customer{Id: "cust-" + id},
		Lines:    []*gridpb.OrderLineRecord{{Sku: "A", Qty: 1, UnitPrice: "10", Warehouse: "W1"}},
		Hold: &gridpb.OrderHoldRecord{Reason: reason, UntilUnixNano: until,
			Findings: []*pb.HoldFinding{{Code: reason + "_finding", Detail: "why"}},
			// Set by the caller, cleared by create_order.
			Decision: "release", DecidedBy: "someone"}}
}

func createHeld(t *testing.T, h *harness, at int64, orders ...*gridpb.OrderRecord) {
	t.Helper()
	r := h.apply(at, createOrders(orders...))
	for i, res := range r.Results {
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("create %s: %v", orders[i].Id, res)
		}
	}
}

func decide(h *harness, at int64, principal, id, decision, reason string, payBy int64) *Result {
	return h.applyAs(at, principal, &gridpb.Command{Kind: &gridpb.Command_DecideHold{DecideHold: &gridpb.DecideHoldCommand{
		OrderId: id, Decision: decision, Reason: reason, PayByUnixNano: payBy}}})
}

func heldIDs(hs []HeldOrder) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}

// An order created with a hold is on_hold from the command's time, in the
// hold index (listed by reason and paged by held time and id); a decision
// writes hold_decided, then releases it to pending payment at the new
// pay-by or cancels it (owing the release of its stock), and takes it off
// the index; a second decision, one on an order not held, on an unknown
// order or not release or cancel is refused.
func TestHoldsAndDecisions(t *testing.T) {
	h := newHarness(t)
	const until = 10_000
	createHeld(t, h, 100, heldOrderRecord("h1", HoldLimit, until))
	createHeld(t, h, 200, heldOrderRecord("h3", HoldAddress, until), heldOrderRecord("h2", HoldRisk, until))
	createHeld(t, h, 300, heldOrderRecord("h4", HoldRisk, until))
	createHeld(t, h, 300, &gridpb.OrderRecord{Id: "p1", RequestHash: []byte("hp1"), PayByUnixNano: until})

	o := readOrder(t, h, "h1")
	if o.Status != lifecycle.StatusOnHold || o.Hold.HeldUnixNano != 100 || o.Hold.Decision != "" || o.Hold.DecidedBy != "" ||
		o.PayByUnixNano != until || o.Hold.UntilUnixNano != until {
		t.Fatalf("held order %v", o)
	}
	if evs, _ := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "h1"); len(evs) != 1 || evs[0].Status != lifecycle.StatusOnHold {
		t.Fatalf("events of h1: %v", evs)
	}
	all := []HeldOrder{{"h1", HoldLimit, 100}, {"h2", HoldRisk, 200}, {"h3", HoldAddress, 200}, {"h4", HoldRisk, 300}}
	if got := h.m.Holds("", 0, "", 10); !slices.Equal(got, all) {
		t.Fatalf("holds %v, want %v", got, all)
	}
	wantCounts := map[string]int{HoldLimit: 1, HoldRisk: 2, HoldAddress: 1}
	if got := h.m.HoldCounts(); !maps.Equal(got, wantCounts) {
		t.Fatalf("hold counts %v, want %v", got, wantCounts)
	}
	if got := heldIDs(h.m.Holds(HoldRisk, 0, "", 10)); !slices.Equal(got, []string{"h2", "h4"}) {
		t.Fatalf("risk holds %v", got)
	}
	if got := heldIDs(h.m.Holds(HoldDuplicate, 0, "", 10)); len(got) != 0 {
		t.Fatalf("duplicate holds %v", got)
	}
	pages := []struct {
		afterAt int64
		afterID string
		want    []string
	}{
		{0, "", []string{"h1", "h2"}},
		{200, "h2", []string{"h3", "h4"}},
		{200, "h3", []string{"h4"}},
		{300, "h4", nil},
	}
	for _, p := range pages {
		if got := heldIDs(h.m.Holds("", p.afterAt, p.afterID, 2)); !slices.Equal(got, p.want) {
			t.Fatalf("page after (%d, %s): %v, want %v", p.afterAt, p.afterID, got, p.want)
		}
	}
	if got := heldIDs(h.m.Holds(HoldRisk, 200, "h2", 1)); !slices.Equal(got, []string{"h4"}) {
		t.Fatalf("risk page: %v", got)
	}

	// Release h2 with a new pay-by.
	res := decide(h, 400, "ops:ann", "h2", DecisionRelease, "called the customer", 5000)
	if res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Order.Status != lifecycle.StatusPendingPayment {
		t.Fatalf("release: %v", res)
	}
	o = readOrder(t, h, "h2")
	if o.Status != lifecycle.StatusPendingPayment || o.PayByUnixNano != 5000 || o.Hold.Decision != DecisionRelease ||
		o.Hold.DecidedBy != "ops:ann" || o.Hold.DecisionReason != "called the customer" || o.Hold.DecidedUnixNano != 400 ||
		o.Hold.Reason != HoldRisk || o.StockAction != "" {
		t.Fatalf("released order %v", o)
	}
	evs, err := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "h2")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[1].Type != EventHoldDecided || evs[2].Type != lifecycle.StatusPendingPayment ||
		evs[1].Status != lifecycle.StatusOnHold || evs[1].Principal != "ops:ann" || evs[1].AtUnixNano != 400 ||
		!maps.Equal(evs[1].Details, map[string]string{"decision": "release", "hold": "risk", "reason": "called the customer"}) ||
		evs[2].Details["reason"] != "hold released" {
		t.Fatalf("events %v", evs)
	}
	if got := heldIDs(h.m.Holds("", 0, "", 10)); !slices.Equal(got, []string{"h1", "h3", "h4"}) {
		t.Fatalf("holds after a release: %v", got)
	}
	if due := h.m.DueOrders(5000, 10); !slices.Equal(due, []string{"h2"}) {
		t.Fatalf("due at the new pay-by: %v", due)
	}
	if due := h.m.DueOrders(4999, 10); len(due) != 0 {
		t.Fatalf("due before: %v", due)
	}
	// A release with no pay-by keeps the hold's.
	if res := decide(h, 410, "ops:ann", "h4", DecisionRelease, "", 0); res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Order.PayByUnixNano != until {
		t.Fatalf("release without a pay-by: %v", res)
	}

	// Cancel h3: cancelled, its reservations owe a release.
	res = decide(h, 500, "ops:bob", "h3", DecisionCancel, "fake address", 0)
	if res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Order.Status != lifecycle.StatusCancelled || res.Order.StockAction != lifecycle.ActionRelease {
		t.Fatalf("cancel: %v", res)
	}
	if got := eventTypes(t, h, "h3"); !slices.Equal(got, []string{"created", EventHoldDecided, lifecycle.StatusCancelled}) {
		t.Fatalf("events of h3: %v", got)
	}
	if owed, _ := OwedStockActions(cluster.LocalReader{R: h.db}, h.prefix, 10); !slices.Equal(owed, []string{"h3"}) {
		t.Fatalf("owed %v", owed)
	}
	if got := h.m.HoldCounts(); !maps.Equal(got, map[string]int{HoldLimit: 1}) {
		t.Fatalf("hold counts %v", got)
	}

	// Refused decisions change nothing.
	refusals := []struct {
		id, decision string
		outcome      gridpb.Outcome
		detail       string
	}{
		{"h2", DecisionCancel, gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, "the hold was decided already (release)"},
		{"h3", DecisionRelease, gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, "the hold was decided already (cancel)"},
		{"p1", DecisionRelease, gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, "the order is not held"},
		{"nope", DecisionRelease, gridpb.Outcome_OUTCOME_NOT_FOUND, ""},
		{"h1", "approve", gridpb.Outcome_OUTCOME_UNSPECIFIED, "decide_hold: decision must be release or cancel"},
		{"h1", "", gridpb.Outcome_OUTCOME_UNSPECIFIED, "decide_hold: decision must be release or cancel"},
	}
	for _, r := range refusals {
		before, _, _ := ReadOrder(cluster.LocalReader{R: h.db}, h.prefix, r.id)
		res := decide(h, 600, "ops:ann", r.id, r.decision, "", 7000)
		if res.Outcome != r.outcome || res.Detail != r.detail {
			t.Fatalf("decide %s %q: %v %q, want %v %q", r.id, r.decision, res.Outcome, res.Detail, r.outcome, r.detail)
		}
		if r.outcome == gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION && res.Order.GetId() != r.id {
			t.Fatalf("decide %s: the refusal does not carry the order: %v", r.id, res.Order)
		}
		after, _, _ := ReadOrder(cluster.LocalReader{R: h.db}, h.prefix, r.id)
		if before.GetVersion() != after.GetVersion() {
			t.Fatalf("decide %s %q changed the order", r.id, r.decision)
		}
	}
	if got := heldIDs(h.m.Holds("", 0, "", 10)); !slices.Equal(got, []string{"h1"}) {
		t.Fatalf("holds after refusals: %v", got)
	}

	// A held order cancelled by a transition leaves the index; a decision
	// on it is refused naming its status.
	if r := transitionTo(h, 700, "h1", lifecycle.StatusCancelled); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("cancel h1: %v", r)
	}
	if n := len(h.m.Holds("", 0, "", 10)); n != 0 {
		t.Fatalf("%d holds after the cancel", n)
	}
	if res := decide(h, 701, "ops:ann", "h1", DecisionRelease, "", 0); res.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION ||
		res.Detail != "the order is no longer held: it is cancelled" {
		t.Fatalf("decide a cancelled hold: %v", res)
	}
}

// The hold_decided event says whether the reviewer overrode the risk
// model's verdict, with the score's inputs as a risk.Features object.
func TestHoldDecisionOverride(t *testing.T) {
	h := newHarness(t)
	features := risk.Features{CustomerAgeHours: 12.5, CustomerOrders1h: 3, CustomerOrders24h: 7, DeviceCustomers: 2, AddressCustomers: 4,
		Amount: 199.5, AmountRatio: 2.25, Channel: "tmall", RegionMismatch: true, HourOfDay: 3, SKUPressure: 0.5}
	var plain []float32
	for _, v := range features.Vector(nil)[:risk.PlainColumnCount] {
		plain = append(plain, float32(v))
	}
	cases := []struct {
		id, verdict, decision, override string
	}{
		{"v1", "hold", DecisionRelease, "true"},
		{"v2", "accept", DecisionCancel, "true"},
		{"v3", "hold", DecisionCancel, "false"},
		{"v4", "accept", DecisionRelease, "false"},
		{"v5", "refuse", DecisionRelease, "true"},
	}
	for _, c := range cases {
		o := heldOrderRecord(c.id, HoldRisk, 1<<62)
		o.Risk = &gridpb.RiskRecord{Score: 0.81234, Model: "m-1", Verdict: c.verdict, Features: plain}
		createHeld(t, h, 10, o)
		if res := decide(h, 20, "ops:ann", c.id, c.decision, "", 0); res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("%s: %v", c.id, res)
		}
		evs, err := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, c.id)
		if err != nil || len(evs) != 3 {
			t.Fatalf("%s events: %v %v", c.id, evs, err)
		}
		d := evs[1].Details
		if d["override"] != c.override || d["risk_score"] != "0.8123" || d["risk_model"] != "m-1" || d["decision"] != c.decision {
			t.Fatalf("%s (%s, %s): details %v, want override %s", c.id, c.verdict, c.decision, d, c.override)
		}
		got, err := risk.ParseFeatures([]byte(d["features"]))
		if err != nil {
			t.Fatalf("%s features %q: %v", c.id, d["features"], err)
		}
		if got != features {
			t.Fatalf("%s features %+v, want %+v", c.id, got, features)
		}
	}
	// No risk record: no override, no features.
	createHeld(t, h, 30, heldOrderRecord("n1", HoldAddress, 1<<62))
	decide(h, 31, "ops:ann", "n1", DecisionCancel, "", 0)
	evs, _ := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "n1")
	if _, ok := evs[1].Details["override"]; ok || evs[1].Details["features"] != "" {
		t.Fatalf("details without a risk record: %v", evs[1].Details)
	}
	// Features of the wrong length are left out, not guessed.
	o := heldOrderRecord("w1", HoldRisk, 1<<62)
	o.Risk = &gridpb.RiskRecord{Verdict: "hold", Features: make([]float32, risk.ColumnCount)}
	createHeld(t, h, 40, o)
	decide(h, 41, "ops:ann", "w1", DecisionRelease, "", 0)
	evs, _ = ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "w1")
	if _, ok := evs[1].Details["features"]; ok || evs[1].Details["override"] != "true" {
		t.Fatalf("details with a full vector: %v", evs[1].Details)
	}
}

// An undecided hold expires at its until time like an unpaid order.
func TestHeldOrderExpires(t *testing.T) {
	h := newHarness(t)
	createHeld(t, h, 10, heldOrderRecord("h1", HoldRisk, 1000))
	if due := h.m.DueOrders(999, 10); len(due) != 0 {
		t.Fatalf("due before until: %v", due)
	}
	if due := h.m.DueOrders(1000, 10); !slices.Equal(due, []string{"h1"}) {
		t.Fatalf("due at until: %v", due)
	}
	expire := func(at int64) {
		h.applyAs(at, "system:sweeper", &gridpb.Command{Kind: &gridpb.Command_ExpireOrders{ExpireOrders: &gridpb.ExpireOrdersCommand{OrderIds: []string{"h1"}}}})
	}
	expire(999)
	if o := readOrder(t, h, "h1"); o.Status != lifecycle.StatusOnHold || len(h.m.Holds("", 0, "", 10)) != 1 {
		t.Fatalf("expired early: %v", o.Status)
	}
	expire(1000)
	o := readOrder(t, h, "h1")
	if o.Status != lifecycle.StatusExpired || o.StockAction != lifecycle.ActionRelease {
		t.Fatalf("after expiry: %v", o)
	}
	if len(h.m.Holds("", 0, "", 10)) != 0 || len(h.m.HoldCounts()) != 0 || len(h.m.DueOrders(1<<62, 10)) != 0 {
		t.Fatalf("still indexed: %v %v", h.m.Holds("", 0, "", 10), h.m.HoldCounts())
	}
	if res := decide(h, 1001, "ops:ann", "h1", DecisionRelease, "", 0); res.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION ||
		res.Detail != "the order is no longer held: it is expired" {
		t.Fatalf("decide an expired hold: %v", res)
	}
}

// A pending order moved on_hold (a cross-channel duplicate) is held for
// review with reason duplicate until its pay-by, and decided as any hold;
// so is one held at intake, decided, and held again.
func TestTransitionOnHoldIsADuplicateHold(t *testing.T) {
	h := newHarness(t)
	createHeld(t, h, 10, &gridpb.OrderRecord{Id: "p1", RequestHash: []byte("hp1"), PayByUnixNano: 900})
	r := h.apply(20, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: "p1", Type: lifecycle.StatusOnHold,
		Details: map[string]string{"reason": "duplicate of jd order 77"}}}})
	if r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("hold: %v", r)
	}
	o := readOrder(t, h, "p1")
	want := &gridpb.OrderHoldRecord{Reason: HoldDuplicate, HeldUnixNano: 20, UntilUnixNano: 900,
		Findings: []*pb.HoldFinding{{Code: HoldDuplicate, Detail: "duplicate of jd order 77"}}}
	if o.Status != lifecycle.StatusOnHold || o.Hold.String() != want.String() {
		t.Fatalf("held order %v", o)
	}
	if got := h.m.Holds("", 0, "", 10); !slices.Equal(got, []HeldOrder{{"p1", HoldDuplicate, 20}}) {
		t.Fatalf("holds %v", got)
	}
	if res := decide(h, 30, "ops:ann", "p1", DecisionRelease, "not a duplicate", 2000); res.Outcome != gridpb.Outcome_OUTCOME_OK ||
		res.Order.Status != lifecycle.StatusPendingPayment || res.Order.PayByUnixNano != 2000 {
		t.Fatalf("release: %v", res)
	}
	if n := len(h.m.Holds("", 0, "", 10)); n != 0 {
		t.Fatalf("%d holds after the release", n)
	}
	// Held again after a decision: a new, undecided duplicate hold.
	transitionTo(h, 40, "p1", lifecycle.StatusOnHold)
	if o := readOrder(t, h, "p1"); o.Hold.Decision != "" || o.Hold.HeldUnixNano != 40 || o.Hold.Reason != HoldDuplicate {
		t.Fatalf("held again: %v", o.Hold)
	}
	if got := h.m.Holds("", 0, "", 10); !slices.Equal(got, []HeldOrder{{"p1", HoldDuplicate, 40}}) {
		t.Fatalf("holds after holding again %v", got)
	}
}

// A hold taken off by a transition (on_hold to pending_payment, no
// decision) and put back is in the index as Load would rebuild it.
func TestHoldLiftedAndHeldAgainIsIndexed(t *testing.T) {
	h := newHarness(t)
	// A hold of intake's checks is lifted by a decision only.
	createHeld(t, h, 10, heldOrderRecord("r1", HoldRisk, 5000))
	if r := transitionTo(h, 15, "r1", lifecycle.StatusPendingPayment); r.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION ||
		r.Detail != "held for risk review: decide it with POST /v1/holds/r1/decide" {
		t.Fatalf("lift of a risk hold: %v", r)
	}
	// A duplicate's hold is lifted by the event, as before the queue.
	createHeld(t, h, 10, heldOrderRecord("h1", HoldDuplicate, 5000))
	if r := transitionTo(h, 20, "h1", lifecycle.StatusPendingPayment); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("lift: %v", r)
	}
	if got := h.m.Holds("", 0, "", 10); len(got) != 1 || got[0].ID != "r1" {
		t.Fatalf("holds after the lift: %v", got)
	}
	if r := transitionTo(h, 30, "h1", lifecycle.StatusOnHold); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("hold again: %v", r)
	}
	live := h.m.Holds("", 0, "", 10)
	if len(live) != 2 || live[0].ID != "h1" && live[1].ID != "h1" {
		t.Fatalf("an order on hold is not in the index: %v", live)
	}
	loaded := New(0, h.prefix).(*Machine)
	if err := loaded.Load(h.db); err != nil {
		t.Fatal(err)
	}
	if got := loaded.Holds("", 0, "", 10); !slices.Equal(got, live) {
		t.Fatalf("loaded holds %v, live %v", got, live)
	}
	if res := decide(h, 40, "ops:ann", "h1", DecisionCancel, "", 0); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("decide: %v", res)
	}
	if got := h.m.Holds("", 0, "", 10); len(got) != 1 || got[0].ID != "r1" {
		t.Fatalf("holds after the decision: %v", got)
	}
}

// historyOrder is an order of customer at at, with total and keys.
func historyOrder(id, customer string, total string, addressKey, deviceKey string) *gridpb.OrderRecord {
	return &gridpb.OrderRecord{Id: id, RequestHash: []byte("h" + id), PayByUnixNano: 1 << 62, Customer: &pb.Customer{Id: customer},
		Total: total, AddressKey: addressKey, DeviceKey: deviceKey}
}

var historyNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func ago(d time.Duration) int64 { return historyNow - int64(d) }

func addHistory(m *Machine, customer, addressKey, deviceKey string, now int64) History {
	var out History
	m.AddHistory(&out, HistoryQuery{Customer: customer, AddressKey: addressKey, DeviceKey: deviceKey}, now)
	return out
}

// AddHistory counts a customer's orders (in the last hour and day, the
// first, the amounts) and the other customers of an address and a device,
// at most sharersMax; Load rebuilds the same history, and the same holds.
func TestHistoryAndLoad(t *testing.T) {
	h := newHarness(t)
	createHeld(t, h, ago(48*time.Hour), historyOrder("a1", "c1", "100", "A1", "D1"))
	createHeld(t, h, ago(3*time.Hour), historyOrder("a2", "c1", "20.5", "A1", ""))
	createHeld(t, h, ago(time.Hour), historyOrder("a3", "c1", "5.25", "A2", "D1"))
	createHeld(t, h, ago(10*time.Minute), historyOrder("a4", "c1", "x", "", ""))
	createHeld(t, h, ago(time.Minute), historyOrder("b1", "c2", "7", "A1", "D2"))
	createHeld(t, h, ago(time.Minute), historyOrder("b2", "c3", "1", "A1", "D1"))
	createHeld(t, h, ago(time.Minute), historyOrder("b3", "", "1", "A1", "D1")) // no customer: not counted
	for i := range 10 {
		createHeld(t, h, ago(time.Minute), historyOrder(fmt.Sprint("s", i), fmt.Sprint("s", i), "1", "AS", ""))
	}
	createHeld(t, h, ago(time.Minute), heldOrderRecord("h1", HoldRisk, 1<<62), heldOrderRecord("h2", HoldLimit, 1<<62))
	createHeld(t, h, ago(time.Minute), heldOrderRecord("h3", HoldRisk, 1<<62))
	decide(h, ago(time.Second), "ops:ann", "h3", DecisionRelease, "", 0)

	want := History{FirstUnixNano: ago(48 * time.Hour), Orders: 4, Orders1h: 2, Orders24h: 3, AmountSum: 125.75,
		AddressCustomers: []string{"c2", "c3"}, DeviceCustomers: []string{"c3"}}
	check := func(m *Machine, what string) {
		t.Helper()
		if got := addHistory(m, "c1", "A1", "D1", historyNow); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: history of c1 %+v, want %+v", what, got, want)
		}
		// A new customer sees the customers of the address and device, not itself.
		if got := addHistory(m, "new", "A1", "D1", historyNow); got.Orders != 0 || got.FirstUnixNano != 0 ||
			!slices.Equal(got.AddressCustomers, []string{"c1", "c2", "c3"}) || !slices.Equal(got.DeviceCustomers, []string{"c1", "c3"}) {
			t.Fatalf("%s: history of a new customer %+v", what, got)
		}
		// At most sharersMax customers per key.
		if got := addHistory(m, "new", "AS", "", historyNow); len(got.AddressCustomers) != sharersMax ||
			!slices.Equal(got.AddressCustomers, []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}) {
			t.Fatalf("%s: sharers %v", what, got.AddressCustomers)
		}
		if got := addHistory(m, "s0", "AS", "", historyNow); !slices.Equal(got.AddressCustomers, []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7"}) {
			t.Fatalf("%s: sharers of s0 %v", what, got.AddressCustomers)
		}
		// Two hours earlier: a2 was an hour before (the window holds its
		// bounds), a1 more than a day; later orders are in no window.
		if got := addHistory(m, "c1", "", "", ago(2*time.Hour)); got.Orders1h != 1 || got.Orders24h != 1 || got.Orders != 4 {
			t.Fatalf("%s: history two hours ago %+v", what, got)
		}
		if got := addHistory(m, "", "", "", historyNow); !reflect.DeepEqual(got, History{}) {
			t.Fatalf("%s: history of no one %+v", what, got)
		}
		if got := m.Holds("", 0, "", 10); !slices.Equal(got, []HeldOrder{{"h1", HoldRisk, ago(time.Minute)}, {"h2", HoldLimit, ago(time.Minute)}}) {
			t.Fatalf("%s: holds %v", what, got)
		}
		if got := m.HoldCounts(); !maps.Equal(got, map[string]int{HoldRisk: 1, HoldLimit: 1}) {
			t.Fatalf("%s: hold counts %v", what, got)
		}
	}
	check(h.m, "live")
	// AddHistory adds to what it is given.
	out := History{FirstUnixNano: ago(72 * time.Hour), Orders: 1, AddressCustomers: []string{"c3", "x"}}
	h.m.AddHistory(&out, HistoryQuery{Customer: "c1", AddressKey: "A1"}, historyNow)
	if out.FirstUnixNano != ago(72*time.Hour) || out.Orders != 5 || !slices.Equal(out.AddressCustomers, []string{"c3", "x", "c2"}) {
		t.Fatalf("added history %+v", out)
	}

	h.m = New(0, h.prefix).(*Machine)
	if err := h.m.Load(h.db); err != nil {
		t.Fatal(err)
	}
	check(h.m, "loaded")
	// The loaded index goes on: a decision takes h1 off it.
	decide(h, historyNow, "ops:ann", "h1", DecisionCancel, "", 0)
	if got := heldIDs(h.m.Holds("", 0, "", 10)); !slices.Equal(got, []string{"h2"}) {
		t.Fatalf("holds after a decision on the loaded index: %v", got)
	}
}

// Load rebuilds the same history whatever the order ids: with more
// orders of a customer than the recent times kept, the latest are kept,
// and with more customers of an address than counted, the same ones.
func TestHistoryLoadIsOrderIndependent(t *testing.T) {
	h := newHarness(t)
	// Old orders with ids after the recent ones'.
	for i := range 4 {
		createHeld(t, h, ago(48*time.Hour)+int64(i), historyOrder(fmt.Sprint("z", i), "c1", "1", "", ""))
	}
	for i := range historyRecentMax {
		createHeld(t, h, ago(30*time.Minute)+int64(i), historyOrder(fmt.Sprintf("a%02d", i), "c1", "1", "", ""))
	}
	// Customers of one address created in the opposite order of their ids.
	for i := sharersMax + 2; i > 0; i-- {
		createHeld(t, h, ago(time.Minute), historyOrder(fmt.Sprintf("s%02d", i), fmt.Sprintf("c%02d", i), "1", "AS", ""))
	}
	live := addHistory(h.m, "c1", "", "", historyNow)
	if live.Orders != 4+historyRecentMax || live.Orders1h != historyRecentMax || live.Orders24h != historyRecentMax ||
		live.FirstUnixNano != ago(48*time.Hour) {
		t.Fatalf("live history %+v", live)
	}
	liveSharers := addHistory(h.m, "c01", "AS", "", historyNow)
	h.m = New(0, h.prefix).(*Machine)
	if err := h.m.Load(h.db); err != nil {
		t.Fatal(err)
	}
	if got := addHistory(h.m, "c1", "", "", historyNow); !reflect.DeepEqual(got, live) {
		t.Fatalf("loaded history %+v, live %+v", got, live)
	}
	if got := addHistory(h.m, "c01", "AS", "", historyNow); !reflect.DeepEqual(got, liveSharers) {
		t.Fatalf("loaded sharers %v, live %v", got.AddressCustomers, liveSharers.AddressCustomers)
	}
}

// A decision after the hold's time is up is refused (EXPIRED): the expiry
// sweep takes the order, a late release cannot give it a fresh window.
func TestLateDecisionIsRefused(t *testing.T) {
	h := newHarness(t)
	createHeld(t, h, 10, heldOrderRecord("late", HoldAddress, 100))
	res := decide(h, 150, "ops:ann", "late", DecisionRelease, "", 1000)
	if res.Outcome != gridpb.Outcome_OUTCOME_EXPIRED || res.Order.GetStatus() != lifecycle.StatusOnHold {
		t.Fatalf("late release: %v", res)
	}
	if o := readOrder(t, h, "late"); o.Hold.Decision != "" || o.PayByUnixNano != 100 {
		t.Fatalf("after a late release: %v", o)
	}
}
