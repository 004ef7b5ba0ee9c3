package statemachine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/outbox"
	"github.com/ordergrid/ordergrid/lifecycle"
	"github.com/ordergrid/ordergrid/limits"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
)

// ledgerEvents reads every event of the harness's outbox, in order.
func ledgerEvents(t *testing.T, h *harness) []*ledger.Event {
	t.Helper()
	entries, _, err := outbox.Read(cluster.LocalReader{R: h.db}, h.prefix, outbox.Cursor{}, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []*ledger.Event
	for _, en := range entries {
		e, err := ledger.DecodeLeaf(en.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// ledgerEventsOf are the outbox's events of one type.
func ledgerEventsOf(t *testing.T, h *harness, typ string) []*ledger.Event {
	t.Helper()
	var out []*ledger.Event
	for _, e := range ledgerEvents(t, h) {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func setStock(t *testing.T, h *harness, at int64, sku, wh string, onHand int64) {
	t.Helper()
	if r := h.apply(at, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: sku, Warehouse: wh, OnHand: onHand}}}); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("set stock: %v", r)
	}
}

func reserveItems(t *testing.T, h *harness, at int64, sku string, items ...*gridpb.ReserveItem) []*gridpb.ReserveItemResult {
	t.Helper()
	r := h.apply(at, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: sku, Items: items}}})
	if r.Outcome != gridpb.Outcome_OUTCOME_OK || len(r.GetReserve().GetItems()) != len(items) {
		t.Fatalf("reserve: %v", r)
	}
	h.checkStock(sku)
	return r.Reserve.Items
}

func settleOrder(t *testing.T, h *harness, at int64, sku, order, action string) *Result {
	t.Helper()
	r := h.apply(at, &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: sku, OrderId: order, Action: action}}})
	h.checkStock(sku)
	return r
}

func counter(t *testing.T, h *harness, sku, rule, scope, buyer string) int64 {
	t.Helper()
	n, err := ReadLimitCounter(cluster.LocalReader{R: h.db}, h.prefix, sku, rule, 0, scope, buyer)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCounter(t *testing.T, h *harness, sku, rule, scope, buyer string, want int64) {
	t.Helper()
	if got := counter(t, h, sku, rule, scope, buyer); got != want {
		t.Fatalf("counter %s/%s/%s/%s = %d, want %d", sku, rule, scope, buyer, got, want)
	}
}

func stockTotal(t *testing.T, h *harness, sku string) *pb.StockLevel {
	t.Helper()
	st, _, err := ReadStock(cluster.LocalReader{R: h.db}, h.prefix, sku)
	if err != nil {
		t.Fatal(err)
	}
	return st.Total
}

func wantStock(t *testing.T, h *harness, sku string, onHand, avail, pending, committed int64) {
	t.Helper()
	s := stockTotal(t, h, sku)
	if s.OnHand != onHand || s.Available != avail || s.Pending != pending || s.Committed != committed {
		t.Fatalf("stock of %s: on hand %d available %d pending %d committed %d, want %d %d %d %d",
			sku, s.OnHand, s.Available, s.Pending, s.Committed, onHand, avail, pending, committed)
	}
}

// skuRule is a rule as a SKU's partition keeps it.
func skuRule(rule string, version uint64, per string, maxQty int64, hold bool) *gridpb.SkuLimitRule {
	return &gridpb.SkuLimitRule{Rule: rule, Version: version, Per: per, MaxQty: maxQty, Hold: hold}
}

// setRules puts rules among sku's purchase limits.
func setRules(t *testing.T, h *harness, at int64, sku string, rules ...*gridpb.SkuLimitRule) {
	t.Helper()
	for _, r := range rules {
		if res := h.apply(at, &gridpb.Command{Kind: &gridpb.Command_SetSkuLimit{SetSkuLimit: &gridpb.SetSkuLimitCommand{Sku: sku, Rule: r}}}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("set_sku_limit %s on %s: %v", r.Rule, sku, res)
		}
	}
}

func byCustomer(customer string) *gridpb.LimitBuyer { return &gridpb.LimitBuyer{Customer: customer} }

func readReservation(t *testing.T, h *harness, sku, order string) (*gridpb.ReservationRecord, bool) {
	t.Helper()
	r, ok, err := ReadReservation(cluster.LocalReader{R: h.db}, h.prefix, sku, order)
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

// A refusing limit: within it each reservation counts; past it nothing is
// reserved, the item is LIMIT_EXCEEDED naming the rule and the SKU, and a
// limit_refused event is logged; a replay is answered as before and
// counts nothing; another buyer has a counter of their own; of two checks
// on an item, the first the qty goes past decides.
func TestLimitRefuses(t *testing.T) {
	h := newHarness(t)
	setStock(t, h, 1, "A", "W1", 10)
	setRules(t, h, 1, "A", skuRule("r1", 1, limits.PerCustomer, 2, false))
	item := func(order, customer string) *gridpb.ReserveItem {
		return &gridpb.ReserveItem{OrderId: order, Qty: 1, ExpiresUnixNano: 1000, Buyer: byCustomer(customer)}
	}
	for _, r := range reserveItems(t, h, 2, "A", item("o1", "cu"), item("o2", "cu")) {
		if r.Outcome != gridpb.Outcome_OUTCOME_OK || r.LimitHeld != "" || r.Detail != "" {
			t.Fatalf("within the limit: %v", r)
		}
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	res := reserveItems(t, h, 3, "A", item("o3", "cu"))[0]
	wantDetail := "purchase limit r1: at most 2 of A per customer; this customer holds 2, the order asks 1 more"
	if res.Outcome != gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED || res.Detail != wantDetail || res.LimitHeld != "" || res.Warehouse != "" {
		t.Fatalf("past the limit: %v", res)
	}
	wantStock(t, h, "A", 10, 8, 2, 0)
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	if _, ok := readReservation(t, h, "A", "o3"); ok {
		t.Fatal("a refused item was reserved")
	}
	refusedEvents := ledgerEventsOf(t, h, "limit_refused")
	if len(refusedEvents) != 1 {
		t.Fatalf("%d limit_refused events, want 1", len(refusedEvents))
	}
	e := refusedEvents[0]
	if e.Kind != ledger.KindStock || e.Order != "o3" || e.SKU != "A" || e.Qty != 1 || e.Details["limit"] != "r1" ||
		e.Details["detail"] != wantDetail {
		t.Fatalf("limit_refused event %+v", e)
	}

	// A replay of o1's reservation is answered as made, and counts nothing.
	if r := reserveItems(t, h, 4, "A", item("o1", "cu"))[0]; r.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || r.Warehouse != "W1" {
		t.Fatalf("replay: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	wantStock(t, h, "A", 10, 8, 2, 0)

	// Another customer is not affected.
	if r := reserveItems(t, h, 5, "A", item("o4", "cu2"))[0]; r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("another customer: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu2", 1)
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	// Nor another SKU under the same rule.
	setStock(t, h, 5, "B", "W1", 10)
	setRules(t, h, 5, "B", skuRule("r1", 1, limits.PerCustomer, 2, false))
	if r := reserveItems(t, h, 5, "B", &gridpb.ReserveItem{OrderId: "o3", Qty: 2, ExpiresUnixNano: 1000,
		Buyer: byCustomer("cu")})[0]; r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("another SKU: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	wantCounter(t, h, "B", "r1", "customer", "cu", 2)

	// Two rules on the SKU: per customer (room left) and per device
	// (none): the device's refuses, and neither counter moves.
	setRules(t, h, 6, "A", skuRule("r2", 4, limits.PerDevice, 1, false))
	two := func(order, customer string) *gridpb.ReserveItem {
		return &gridpb.ReserveItem{OrderId: order, Qty: 1, ExpiresUnixNano: 1000, Buyer: &gridpb.LimitBuyer{Customer: customer, Device: "dev1"}}
	}
	if r := reserveItems(t, h, 6, "A", two("o5", "cu3"))[0]; r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("first on the device: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu3", 1)
	wantCounter(t, h, "A", "r2", "device", "dev1", 1)
	r := reserveItems(t, h, 7, "A", two("o6", "cu4"))[0]
	if r.Outcome != gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED ||
		r.Detail != "purchase limit r2: at most 1 of A per device; this device holds 1, the order asks 1 more" {
		t.Fatalf("second on the device: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu4", 0)
	wantCounter(t, h, "A", "r2", "device", "dev1", 1)
	// Both past their maximum, one holding and one refusing: refusal wins,
	// whichever comes first.
	setRules(t, h, 8, "A", skuRule("r0", 1, limits.PerDevice, 1, true))
	both := &gridpb.ReserveItem{OrderId: "o7", Qty: 1, ExpiresUnixNano: 1000, HoldExpiresUnixNano: 5000,
		Buyer: &gridpb.LimitBuyer{Customer: "cu", Device: "dev1"}}
	if r := reserveItems(t, h, 8, "A", both)[0]; r.Outcome != gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED || !strings.HasPrefix(r.Detail, "purchase limit r1:") {
		t.Fatalf("both past: %v", r)
	}
	// An order that names no device, under a rule per device, is refused
	// (a holding rule per device first holds nothing: the refusal decides).
	if r := reserveItems(t, h, 9, "A", &gridpb.ReserveItem{OrderId: "o8", Qty: 1, ExpiresUnixNano: 1000, Buyer: byCustomer("cu5")})[0]; r.Outcome != gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED ||
		r.Detail != "purchase limit r2 counts A per device, and the order names no device" {
		t.Fatalf("no device: %v", r)
	}
	wantStock(t, h, "A", 10, 6, 4, 0)
}

// A holding limit: past it the stock is reserved, the result names the
// rule, the counter counts it, and the reservation lasts until the later
// of its expiry and the hold's.
func TestLimitHolds(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	setStock(t, h, 1, "A", "W1", 4)
	setRules(t, h, 1, "A", skuRule("r1", 1, limits.PerCustomer, 2, true))
	item := func(order string, qty, expires, holdExpires int64) *gridpb.ReserveItem {
		return &gridpb.ReserveItem{OrderId: order, Qty: qty, ExpiresUnixNano: expires, HoldExpiresUnixNano: holdExpires,
			Buyer: byCustomer("cu")}
	}
	reserveItems(t, h, 2, "A", item("o1", 1, 100, 500), item("o2", 1, 100, 500))
	res := reserveItems(t, h, 3, "A", item("o3", 1, 100, 500))[0]
	if res.Outcome != gridpb.Outcome_OUTCOME_OK || res.LimitHeld != "r1" || res.Warehouse != "W1" ||
		res.Detail != "purchase limit r1: at most 2 of A per customer; this customer holds 2, the order asks 1 more" {
		t.Fatalf("held: %v", res)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 3)
	wantStock(t, h, "A", 4, 1, 3, 0)
	for order, want := range map[string]int64{"o1": 100, "o2": 100, "o3": 500} {
		rec, ok := readReservation(t, h, "A", order)
		if !ok || rec.ExpiresUnixNano != want || rec.Qty != 1 || !slices.Equal(rec.LimitKeys, []string{"r1\x000\x00customer\x00cu"}) {
			t.Fatalf("reservation %s: %v, want expiry %d", order, rec, want)
		}
	}
	due := func(now int64) []DueReservation {
		t.Helper()
		d, err := DueReservations(r, h.prefix, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := due(99); len(d) != 0 {
		t.Fatalf("due at 99: %v", d)
	}
	if d := due(499); !slices.Equal(d, []DueReservation{{"A", "o1"}, {"A", "o2"}}) {
		t.Fatalf("due at 499: %v", d)
	}
	if d := due(500); !slices.Equal(d, []DueReservation{{"A", "o1"}, {"A", "o2"}, {"A", "o3"}}) {
		t.Fatalf("due at 500: %v", d)
	}
	// A held reservation whose own expiry is later keeps it.
	res = reserveItems(t, h, 4, "A", item("o4", 1, 900, 500))[0]
	if rec, _ := readReservation(t, h, "A", "o4"); res.LimitHeld != "r1" || rec.ExpiresUnixNano != 900 {
		t.Fatalf("held with a later expiry: %v, expiry %d", res, rec.ExpiresUnixNano)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 4)
	// Past the limit and short of stock: short, not held, nothing counted.
	res = reserveItems(t, h, 5, "A", item("o5", 1, 100, 500))[0]
	if res.Outcome != gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK || res.LimitHeld != "" || res.Detail != "" {
		t.Fatalf("held but short: %v", res)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 4)
	// The sweep releases the held reservation at its own expiry, and the
	// counter gives it back.
	h.apply(500, &gridpb.Command{Kind: &gridpb.Command_ExpireReservations{ExpireReservations: &gridpb.ExpireReservationsCommand{Sku: "A", OrderIds: []string{"o1", "o2", "o3", "o4"}}}})
	h.checkStock("A")
	wantCounter(t, h, "A", "r1", "customer", "cu", 1)
	wantStock(t, h, "A", 4, 3, 1, 0)
	if d := due(1000); !slices.Equal(d, []DueReservation{{"A", "o4"}}) {
		t.Fatalf("due after the sweep: %v", d)
	}
}

// The counters follow the reservations: a release gives the qty back
// (once), a commit of a released reservation takes it again, shipping
// keeps it, a counter at zero is deleted; stock is conserved throughout.
func TestLimitCountersFollowTheLifecycle(t *testing.T) {
	h := newHarness(t)
	setStock(t, h, 1, "A", "W1", 6)
	setRules(t, h, 1, "A", skuRule("r1", 1, limits.PerCustomer, 10, false))
	item := func(order, customer string, qty, expires int64) *gridpb.ReserveItem {
		return &gridpb.ReserveItem{OrderId: order, Qty: qty, ExpiresUnixNano: expires, Buyer: byCustomer(customer)}
	}
	reserveItems(t, h, 2, "A", item("o1", "cu", 2, 100), item("o2", "cu", 1, 100), item("o3", "cu", 1, 1000))
	wantCounter(t, h, "A", "r1", "customer", "cu", 4)
	wantStock(t, h, "A", 6, 2, 4, 0)

	// Release gives back, once.
	if r := settleOrder(t, h, 3, "A", "o1", lifecycle.ActionRelease); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("release: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	if r := settleOrder(t, h, 4, "A", "o1", lifecycle.ActionRelease); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("release again: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	wantStock(t, h, "A", 6, 4, 2, 0)

	// The sweep's expiry is a release: not before the expiry, then once.
	expire := func(at int64, order string) {
		h.apply(at, &gridpb.Command{Kind: &gridpb.Command_ExpireReservations{ExpireReservations: &gridpb.ExpireReservationsCommand{Sku: "A", OrderIds: []string{order}}}})
		h.checkStock("A")
	}
	expire(99, "o2")
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	expire(100, "o2")
	wantCounter(t, h, "A", "r1", "customer", "cu", 1)
	expire(101, "o2")
	wantCounter(t, h, "A", "r1", "customer", "cu", 1)
	wantStock(t, h, "A", 6, 5, 1, 0)

	// A payment that reaches a released reservation takes it (and its
	// count) again while the stock is there.
	if r := settleOrder(t, h, 110, "A", "o2", lifecycle.ActionCommit); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("commit of a released reservation: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	wantStock(t, h, "A", 6, 4, 1, 1)
	if rec, _ := readReservation(t, h, "A", "o2"); rec.State != gridpb.ReservationState_RESERVATION_STATE_COMMITTED {
		t.Fatalf("o2 is %v", rec.State)
	}

	// Shipping keeps the count; a release after shipping is refused and
	// keeps it too.
	if r := settleOrder(t, h, 120, "A", "o2", lifecycle.ActionShip); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("ship: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	if r := settleOrder(t, h, 121, "A", "o2", lifecycle.ActionRelease); r.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION {
		t.Fatalf("release after shipping: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	wantStock(t, h, "A", 5, 4, 1, 0)

	// A commit keeps the count; a release of the committed reservation
	// gives it back.
	settleOrder(t, h, 130, "A", "o3", lifecycle.ActionCommit)
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
	settleOrder(t, h, 131, "A", "o3", lifecycle.ActionRelease)
	wantCounter(t, h, "A", "r1", "customer", "cu", 1)
	wantStock(t, h, "A", 5, 5, 0, 0)

	// A released order reserving again counts again.
	if r := reserveItems(t, h, 140, "A", item("o1", "cu", 2, 1000))[0]; r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("reserve again: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 3)

	// A buyer's counter back at zero is deleted; a commit of a released
	// reservation whose stock is gone is refused and counts nothing.
	reserveItems(t, h, 150, "A", item("o9", "cu2", 3, 1000))
	wantCounter(t, h, "A", "r1", "customer", "cu2", 3)
	settleOrder(t, h, 151, "A", "o9", lifecycle.ActionRelease)
	k := limitCounterKey(h.prefix, "A", "r1\x000\x00customer\x00cu2")
	if _, ok, err := (cluster.LocalReader{R: h.db}).Get(k); err != nil || ok {
		t.Fatalf("a counter at zero is kept: %v %v", ok, err)
	}
	reserveItems(t, h, 152, "A", item("other", "cu9", 3, 1000))
	wantStock(t, h, "A", 5, 0, 5, 0)
	if r := settleOrder(t, h, 153, "A", "o9", lifecycle.ActionCommit); r.Outcome != gridpb.Outcome_OUTCOME_EXPIRED {
		t.Fatalf("commit with the stock gone: %v", r)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu2", 0)
	wantCounter(t, h, "A", "r1", "customer", "cu", 3)
}

// put_limit stores a rule at the next version (expected_version checked),
// refuses a bad document naming the field and stores nothing; delete_limit
// deletes a rule at its version; ReadLimits reads the set at the catalog's
// generation; each change is a ledger event.
func TestPutAndDeleteLimit(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	put := func(at int64, doc string, expected uint64) *Result {
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_PutLimit{PutLimit: &gridpb.PutLimitCommand{Document: []byte(doc), ExpectedVersion: expected}}})
	}
	del := func(at int64, id string, expected uint64) *Result {
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_DeleteLimit{DeleteLimit: &gridpb.DeleteLimitCommand{Id: id, ExpectedVersion: expected}}})
	}
	read := func() *limits.Set {
		t.Helper()
		s, err := ReadLimits(r, h.prefix)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const doc = `{"id":"r1","skus":["A","B"],"per":"customer","max_qty":2,"action":"refuse"}`
	if s := read(); !s.Empty() || s.Generation != 0 {
		t.Fatalf("before any: %+v", s)
	}
	res := put(1, doc, 0)
	var stored limits.Rule
	if res.Outcome != gridpb.Outcome_OUTCOME_OK || json.Unmarshal(res.Document, &stored) != nil || stored.Version != 1 || stored.ID != "r1" {
		t.Fatalf("put: %v", res)
	}
	if s := read(); s.Generation != h.index || len(s.Rules()) != 1 || s.Rules()[0].Version != 1 || s.Rules()[0].MaxQty != 2 {
		t.Fatalf("after put: generation %d (index %d), %v", s.Generation, h.index, s.Rules())
	}
	if res := put(2, strings.Replace(doc, `"max_qty":2`, `"max_qty":3`, 1), 0); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("put again: %v", res)
	}
	if res := put(3, doc, 1); res.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION || res.Detail != "limit r1 is at version 2, not 1" {
		t.Fatalf("stale expected version: %v", res)
	}
	if res := put(4, `{"id":"r2","skus":["A"],"per":"device","max_qty":1}`, 3); res.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION {
		t.Fatalf("expected version of a new rule: %v", res)
	}
	if res := put(5, doc, 2); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("put at version 2: %v", res)
	}
	genBefore := read().Generation
	for _, bad := range []struct{ doc, field string }{
		{`{"id":"r1","skus":["A"],"per":"customer","max_qty":0}`, "max_qty"},
		{`{"id":"r9","skus":[],"per":"customer","max_qty":1}`, "skus"},
		{`{"id":"r9","skus":["A"],"per":"customer","max_qty":1,"colour":"red"}`, "colour"},
	} {
		res := put(6, bad.doc, 0)
		if res.Outcome != gridpb.Outcome_OUTCOME_UNSPECIFIED || !strings.HasPrefix(res.Detail, bad.field+": ") {
			t.Fatalf("bad document %s: %v", bad.doc, res)
		}
	}
	s := read()
	if s.Generation != genBefore || len(s.Rules()) != 1 || s.Rules()[0].Version != 3 || s.Rules()[0].MaxQty != 2 {
		t.Fatalf("after bad documents: generation %d (was %d), %+v", s.Generation, genBefore, s.Rules())
	}
	if rule, ok := s.Rule("r1"); !ok || rule.Action != limits.ActionRefuse || !slices.Equal(rule.SKUs, []string{"A", "B"}) {
		t.Fatalf("r1: %+v", rule)
	}

	if res := del(7, "nope", 0); res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("delete a missing rule: %v", res)
	}
	if res := del(8, "r1", 2); res.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION || res.Detail != "limit r1 is at version 3, not 2" {
		t.Fatalf("delete at a stale version: %v", res)
	}
	if s := read(); len(s.Rules()) != 1 || s.Generation != genBefore {
		t.Fatalf("after refused deletes: %+v", s)
	}
	if res := del(9, "r1", 3); res.Outcome != gridpb.Outcome_OUTCOME_OK || !limits.IsTombstone(res.Document) ||
		!bytes.Contains(res.Document, []byte(`"retired_skus":["A","B"]`)) {
		t.Fatalf("delete: %v %s", res, res.Document)
	}
	if s := read(); !s.Empty() || s.Generation != h.index {
		t.Fatalf("after delete: generation %d (index %d), %v", s.Generation, h.index, s.Rules())
	}
	// Deleting it again answers its tombstone (a retry finishes the SKUs).
	if res := del(10, "r1", 0); res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || !limits.IsTombstone(res.Document) {
		t.Fatalf("delete again: %v", res)
	}
	// A rule put again after its deletion goes on from the tombstone's
	// version (its revision rises: the SKUs' tombstones give way to it).
	if res := put(11, doc, 0); res.Outcome != gridpb.Outcome_OUTCOME_OK || !bytes.Contains(res.Document, []byte(`"version":5`)) {
		t.Fatalf("put after delete: %s", res.Document)
	}

	var got []string
	for _, e := range ledgerEvents(t, h) {
		if e.Kind != ledger.KindRouting {
			t.Fatalf("event %+v", e)
		}
		got = append(got, e.Type+"/"+e.Details["limit"]+"/"+e.Details["version"])
		if e.Type == "limit_put" {
			if _, err := limits.Decode([]byte(e.Details["document"])); err != nil {
				t.Fatalf("limit_put document: %v", err)
			}
		}
	}
	want := []string{"limit_put/r1/1", "limit_put/r1/2", "limit_put/r1/3", "limit_deleted/r1/3", "limit_put/r1/5"}
	if !slices.Equal(got, want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
}

// put_risk_model stores a model file that loads and refuses one that does
// not, keeping the one before; an empty document removes it.
func TestPutRiskModel(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	put := func(at int64, doc []byte) *Result {
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_PutRiskModel{PutRiskModel: &gridpb.PutRiskModelCommand{Document: doc}}})
	}
	stored := func() ([]byte, bool) {
		t.Helper()
		doc, ok, err := ReadRiskModel(r, h.prefix)
		if err != nil {
			t.Fatal(err)
		}
		return doc, ok
	}
	gen := func() uint64 {
		t.Helper()
		g, err := ReadCatalogGeneration(r, h.prefix)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if _, ok := stored(); ok {
		t.Fatal("a model before any was put")
	}
	if res := put(1, nil); res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND || gen() != 0 {
		t.Fatalf("remove none: %v", res)
	}
	file := risk.DefaultModelFile()
	res := put(2, file)
	if res.Outcome != gridpb.Outcome_OUTCOME_OK || string(res.Document) != risk.Default().Version() {
		t.Fatalf("put: %v", res)
	}
	if doc, ok := stored(); !ok || !bytes.Equal(doc, file) {
		t.Fatalf("stored %d bytes (%v), want the default file", len(doc), ok)
	}
	putGen := gen()
	if putGen != h.index {
		t.Fatalf("generation %d, want %d", putGen, h.index)
	}

	// A node index out of range: the file still decodes, but does not load.
	var m map[string]any
	if err := json.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	nodes := m["trees"].([]any)[0].(map[string]any)["nodes"].([]any)
	nodes[0].(map[string]any)["left"] = 100000
	outOfRange, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name   string
		doc    []byte
		detail string
	}{
		{"truncated", file[:len(file)/2], "model: malformed JSON"},
		{"node out of range", outOfRange, "model: trees[0].nodes[0].left"},
		{"not JSON", []byte("model"), "model: "},
	} {
		res := put(3, bad.doc)
		if res.Outcome != gridpb.Outcome_OUTCOME_UNSPECIFIED || !strings.HasPrefix(res.Detail, bad.detail) {
			t.Fatalf("%s: %v", bad.name, res)
		}
		if doc, ok := stored(); !ok || !bytes.Equal(doc, file) || gen() != putGen {
			t.Fatalf("%s changed the stored model (%v) or the generation (%d)", bad.name, ok, gen())
		}
	}

	if res := put(4, []byte{}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("remove: %v", res)
	}
	if _, ok := stored(); ok || gen() != h.index {
		t.Fatalf("after removal: found %v, generation %d", ok, gen())
	}
	if res := put(5, nil); res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("remove again: %v", res)
	}
	var got []string
	for _, e := range ledgerEvents(t, h) {
		got = append(got, e.Type+"/"+e.Details["model"])
	}
	want := []string{"risk_model_put/" + risk.Default().Version(), "risk_model_removed/"}
	if !slices.Equal(got, want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
}

// set_sku_limit keeps the newest version of each rule of a SKU: a late
// copy of an older change is STALE and changes nothing; a delete removes
// the rule (once); a bad rule is refused.
func TestSetSkuLimitKeepsTheNewest(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	set := func(rule *gridpb.SkuLimitRule, del bool) *Result {
		return h.apply(1, &gridpb.Command{Kind: &gridpb.Command_SetSkuLimit{SetSkuLimit: &gridpb.SetSkuLimitCommand{Sku: "A", Rule: rule, Delete: del}}})
	}
	rules := func() []string {
		t.Helper()
		got, err := ReadSkuLimits(r, h.prefix, "A")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range got {
			if x.Deleted {
				out = append(out, fmt.Sprintf("%s@%d:deleted", x.Rule, x.Version))
				continue
			}
			out = append(out, fmt.Sprintf("%s@%d:%d", x.Rule, x.Version, x.MaxQty))
		}
		return out
	}
	for _, c := range []struct {
		rule    *gridpb.SkuLimitRule
		del     bool
		outcome gridpb.Outcome
		want    []string
	}{
		{skuRule("b", 2, limits.PerCustomer, 5, false), false, gridpb.Outcome_OUTCOME_OK, []string{"b@2:5"}},
		{skuRule("a", 1, limits.PerDevice, 1, true), false, gridpb.Outcome_OUTCOME_OK, []string{"a@1:1", "b@2:5"}},
		{skuRule("b", 1, limits.PerCustomer, 9, false), false, gridpb.Outcome_OUTCOME_STALE, []string{"a@1:1", "b@2:5"}},
		{skuRule("b", 2, limits.PerCustomer, 6, false), false, gridpb.Outcome_OUTCOME_REPLAYED, []string{"a@1:1", "b@2:5"}},
		{skuRule("b", 3, limits.PerCustomer, 6, false), false, gridpb.Outcome_OUTCOME_OK, []string{"a@1:1", "b@3:6"}},
		{skuRule("b", 1, limits.PerCustomer, 6, false), true, gridpb.Outcome_OUTCOME_STALE, []string{"a@1:1", "b@3:6"}},
		// A delete leaves a tombstone: a late copy of an older put is STALE.
		{skuRule("b", 4, limits.PerCustomer, 6, false), true, gridpb.Outcome_OUTCOME_OK, []string{"a@1:1", "b@4:deleted"}},
		{skuRule("b", 4, limits.PerCustomer, 6, false), true, gridpb.Outcome_OUTCOME_REPLAYED, []string{"a@1:1", "b@4:deleted"}},
		{skuRule("b", 3, limits.PerCustomer, 6, false), false, gridpb.Outcome_OUTCOME_STALE, []string{"a@1:1", "b@4:deleted"}},
		{skuRule("b", 4, limits.PerCustomer, 6, false), false, gridpb.Outcome_OUTCOME_STALE, []string{"a@1:1", "b@4:deleted"}},
		// A re-created rule has a later revision.
		{skuRule("b", 7, limits.PerCustomer, 2, false), false, gridpb.Outcome_OUTCOME_OK, []string{"a@1:1", "b@7:2"}},
		{skuRule("c", 1, "household", 1, false), false, gridpb.Outcome_OUTCOME_UNSPECIFIED, []string{"a@1:1", "b@7:2"}},
		{skuRule("c", 1, limits.PerCustomer, 0, false), false, gridpb.Outcome_OUTCOME_UNSPECIFIED, []string{"a@1:1", "b@7:2"}},
		{skuRule("a", 2, limits.PerDevice, 1, true), true, gridpb.Outcome_OUTCOME_OK, []string{"a@2:deleted", "b@7:2"}},
		// A delete of a rule the SKU never had leaves its tombstone too.
		{skuRule("d", 9, limits.PerDevice, 1, true), true, gridpb.Outcome_OUTCOME_OK, []string{"a@2:deleted", "b@7:2", "d@9:deleted"}},
		{skuRule("d", 8, limits.PerDevice, 1, true), false, gridpb.Outcome_OUTCOME_STALE, []string{"a@2:deleted", "b@7:2", "d@9:deleted"}},
	} {
		if res := set(c.rule, c.del); res.Outcome != c.outcome {
			t.Fatalf("%v delete=%v: %v, want %v", c.rule, c.del, res, c.outcome)
		}
		if got := rules(); !slices.Equal(got, c.want) {
			t.Fatalf("after %v delete=%v: %v, want %v", c.rule, c.del, got, c.want)
		}
	}
	// A tombstone judges nothing.
	setStock(t, h, 2, "A", "W1", 5)
	if res := reserveItems(t, h, 3, "A", &gridpb.ReserveItem{OrderId: "o1", Qty: 1, ExpiresUnixNano: 100, Buyer: byCustomer("cu")})[0]; res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("reserve under b: %v", res)
	}
	wantCounter(t, h, "A", "b", "customer", "cu", 1)
}

// A rule applies within its window (from inclusive, to exclusive) and on
// its channels only.
func TestSkuLimitWindowAndChannels(t *testing.T) {
	h := newHarness(t)
	setStock(t, h, 1, "A", "W1", 10)
	rule := skuRule("sale", 1, limits.PerCustomer, 1, false)
	rule.FromUnixNano, rule.ToUnixNano, rule.Channels = 100, 200, []string{"douyin"}
	setRules(t, h, 1, "A", rule)
	n := 0
	try := func(at int64, channel string) gridpb.Outcome {
		n++
		return reserveItems(t, h, at, "A", &gridpb.ReserveItem{OrderId: fmt.Sprint("o", n), Qty: 1, ExpiresUnixNano: 1000,
			Buyer: &gridpb.LimitBuyer{Customer: "cu", Channel: channel}})[0].Outcome
	}
	for _, c := range []struct {
		at      int64
		channel string
		want    gridpb.Outcome
	}{
		{99, "douyin", gridpb.Outcome_OUTCOME_OK},              // before the window: not counted
		{100, "douyin", gridpb.Outcome_OUTCOME_OK},             // the first in it
		{150, "douyin", gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED}, // the second
		{150, "tmall", gridpb.Outcome_OUTCOME_OK},              // another channel
		{200, "douyin", gridpb.Outcome_OUTCOME_OK},             // after the window
	} {
		if got := try(c.at, c.channel); got != c.want {
			t.Fatalf("at %d on %s: %v, want %v", c.at, c.channel, got, c.want)
		}
	}
	if n, err := ReadLimitCounter(cluster.LocalReader{R: h.db}, h.prefix, "A", "sale", 100, "customer", "cu"); err != nil || n != 1 {
		t.Fatalf("the window's counter: %d %v", n, err)
	}
	// The same rule moved to its next window counts afresh: the buyer
	// may buy again there, and the first window's units stay counted in it.
	next := skuRule("sale", 2, limits.PerCustomer, 1, false)
	next.FromUnixNano, next.ToUnixNano, next.Channels = 300, 400, []string{"douyin"}
	setRules(t, h, 250, "A", next)
	if got := try(300, "douyin"); got != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("the next window: %v", got)
	}
	if got := try(301, "douyin"); got != gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED {
		t.Fatalf("the next window's second: %v", got)
	}
	if n, _ := ReadLimitCounter(cluster.LocalReader{R: h.db}, h.prefix, "A", "sale", 300, "customer", "cu"); n != 1 {
		t.Fatalf("the next window's counter: %d", n)
	}
}

// An extend moves a pending reservation's expiry later (never sooner) and
// reserves nothing; without a pending reservation it is NOT_FOUND.
func TestExtendReservation(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	setStock(t, h, 1, "A", "W1", 5)
	reserveItems(t, h, 2, "A", &gridpb.ReserveItem{OrderId: "o1", Qty: 2, ExpiresUnixNano: 100})
	extend := func(at int64, order string, until int64) *gridpb.ReserveItemResult {
		return reserveItems(t, h, at, "A", &gridpb.ReserveItem{OrderId: order, Extend: true, HoldExpiresUnixNano: until})[0]
	}
	if res := extend(3, "o1", 900); res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || res.Warehouse != "W1" {
		t.Fatalf("extend: %v", res)
	}
	if res := extend(4, "o1", 500); res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("extend sooner: %v", res)
	}
	if rec, _ := readReservation(t, h, "A", "o1"); rec.ExpiresUnixNano != 900 || rec.Qty != 2 {
		t.Fatalf("after extends: %v", rec)
	}
	if d, _ := DueReservations(r, h.prefix, 899, 10); len(d) != 0 {
		t.Fatalf("due before the new expiry: %v", d)
	}
	if d, _ := DueReservations(r, h.prefix, 900, 10); !slices.Equal(d, []DueReservation{{"A", "o1"}}) {
		t.Fatalf("due at the new expiry: %v", d)
	}
	wantStock(t, h, "A", 5, 3, 2, 0)
	if res := extend(5, "nobody", 900); res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("extend of no reservation: %v", res)
	}
	settleOrder(t, h, 6, "A", "o1", lifecycle.ActionRelease)
	if res := extend(7, "o1", 2000); res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("extend of a released reservation: %v", res)
	}
	wantStock(t, h, "A", 5, 5, 0, 0)
}

// A retry of a reservation a limit held is answered with the limit that
// held it: a retried intake holds the order as the first attempt would.
func TestRetryOfAHeldReservationIsHeldAgain(t *testing.T) {
	h := newHarness(t)
	setStock(t, h, 1, "A", "W1", 5)
	setRules(t, h, 1, "A", skuRule("r1", 1, limits.PerCustomer, 1, true))
	item := func(order string) *gridpb.ReserveItem {
		return &gridpb.ReserveItem{OrderId: order, Qty: 1, ExpiresUnixNano: 100, HoldExpiresUnixNano: 500, Buyer: byCustomer("cu")}
	}
	reserveItems(t, h, 2, "A", item("o1"))
	first := reserveItems(t, h, 3, "A", item("o2"))[0]
	retry := reserveItems(t, h, 4, "A", item("o2"))[0]
	if first.LimitHeld != "r1" || retry.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || retry.LimitHeld != "r1" ||
		retry.LimitCode != CodeLimitExceeded || retry.Detail != first.Detail {
		t.Fatalf("first %v, retry %v", first, retry)
	}
	if plain := reserveItems(t, h, 5, "A", item("o1"))[0]; plain.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || plain.LimitHeld != "" {
		t.Fatalf("retry of a reservation no limit held: %v", plain)
	}
	wantCounter(t, h, "A", "r1", "customer", "cu", 2)
}
