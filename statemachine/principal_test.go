package statemachine

import (
	"fmt"
	"testing"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// ledgerPrincipals reads every event of the harness's outbox and answers
// the principal of each, by "kind/type/order" (each at most once here).
func ledgerPrincipals(t *testing.T, h *harness) map[string]string {
	t.Helper()
	entries, _, err := outbox.Read(cluster.LocalReader{R: h.db}, h.prefix, outbox.Cursor{}, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, en := range entries {
		e, err := ledger.DecodeLeaf(en.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		k := e.Kind + "/" + e.Type + "/" + e.Order
		if _, dup := out[k]; dup {
			t.Fatalf("event %s twice", k)
		}
		out[k] = e.Principal
	}
	return out
}

// Every event names the principal that caused it, batched or not: a
// reserve_batch, create_orders, transitions and settle_batch entry that
// folds several callers' items records each item's event under the
// item's principal, even when the command was proposed under another
// caller's (as a proposer that took the first caller's for the batch
// did); an item without one (an entry written before items carried
// principals) falls back to the command's; a sweep's events are the
// sweeper's.
func TestBatchedEventsNameEachItemsPrincipal(t *testing.T) {
	h := newHarness(t)
	const sweeper = "system:sweeper"
	h.applyAs(1, "wms", &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "s", Warehouse: "w", OnHand: 100}}})

	reserve := &gridpb.ReserveBatchCommand{Sku: "s", Items: []*gridpb.ReserveItem{
		{OrderId: "a", Qty: 1, ExpiresUnixNano: 1000, Principal: "alice"},
		{OrderId: "b", Qty: 1, ExpiresUnixNano: 1000, Principal: "bob"},
		{OrderId: "c", Qty: 1, ExpiresUnixNano: 1000, Principal: "alice"},
		{OrderId: "d", Qty: 1, ExpiresUnixNano: 50, Principal: "dave"},
		{OrderId: "e", Qty: 1, ExpiresUnixNano: 1000}, // no principal of its own
	}}
	r := h.applyAs(2, "alice", &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: reserve}})
	for i, it := range r.GetReserve().GetItems() {
		if it.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("reservation %d: %s", i, it.Outcome)
		}
	}

	order := func(id, principal string) *gridpb.CreateOrderCommand {
		return &gridpb.CreateOrderCommand{Principal: principal, Order: &gridpb.OrderRecord{Id: id, RequestHash: []byte(id), PayByUnixNano: 1000,
			Lines: []*gridpb.OrderLineRecord{{Sku: "s", Qty: 1, UnitPrice: "1", Warehouse: "w"}}}}
	}
	r = h.applyAs(3, "alice", &gridpb.Command{Kind: &gridpb.Command_CreateOrders{CreateOrders: &gridpb.CreateOrdersCommand{Orders: []*gridpb.CreateOrderCommand{
		order("a", "alice"), order("b", "bob"), order("c", "alice"), order("e", "")}}}})
	for i, res := range r.Results {
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("order %d: %s %s", i, res.Outcome, res.Detail)
		}
	}

	r = h.applyAs(4, "bob", &gridpb.Command{Kind: &gridpb.Command_Transitions{Transitions: &gridpb.TransitionsCommand{Transitions: []*gridpb.TransitionCommand{
		{OrderId: "a", Type: lifecycle.StatusPaid, Principal: "bob"},
		{OrderId: "b", Type: lifecycle.StatusCancelled, Principal: "alice"},
		{OrderId: "c", Type: lifecycle.StatusPaid, Principal: "carol"},
	}}}})
	for i, res := range r.Results {
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("transition %d: %s %s", i, res.Outcome, res.Detail)
		}
	}

	r = h.applyAs(5, "bob", &gridpb.Command{Kind: &gridpb.Command_SettleBatch{SettleBatch: &gridpb.SettleBatchCommand{Sku: "s", Items: []*gridpb.SettleItem{
		{OrderId: "a", Action: lifecycle.ActionCommit, Principal: "bob"},
		{OrderId: "b", Action: lifecycle.ActionRelease, Principal: "alice"},
		{OrderId: "c", Action: lifecycle.ActionCommit, Principal: "carol"},
	}}}})
	for i, res := range r.Results {
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("settle %d: %s %s", i, res.Outcome, res.Detail)
		}
	}

	// The sweeper: d's reservation is an orphan past its expiry, e's order
	// is unpaid past its pay-by time.
	h.applyAs(60, sweeper, &gridpb.Command{Kind: &gridpb.Command_ExpireReservations{ExpireReservations: &gridpb.ExpireReservationsCommand{Sku: "s", OrderIds: []string{"d"}}}})
	h.applyAs(1000, sweeper, &gridpb.Command{Kind: &gridpb.Command_ExpireOrders{ExpireOrders: &gridpb.ExpireOrdersCommand{OrderIds: []string{"e"}}}})

	want := map[string]string{
		"stock/stock_set/": "wms",
		"stock/reserved/a": "alice", "stock/reserved/b": "bob", "stock/reserved/c": "alice", "stock/reserved/d": "dave",
		"stock/reserved/e": "alice", // the command's: the item has none
		"order/created/a":  "alice", "order/created/b": "bob", "order/created/c": "alice", "order/created/e": "alice",
		"order/paid/a": "bob", "order/cancelled/b": "alice", "order/paid/c": "carol",
		"stock/committed/a": "bob", "stock/released/b": "alice", "stock/committed/c": "carol",
		"stock/released/d": sweeper, "order/expired/e": sweeper,
	}
	got := ledgerPrincipals(t, h)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("ledger event %s: principal %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ledger events %v, want %d", got, len(want))
	}

	// The order's own events (the order page) name the same principals.
	for id, want := range map[string][]string{"a": {"alice", "bob"}, "b": {"bob", "alice"}, "c": {"alice", "carol"}, "e": {"alice", sweeper}} {
		evs, err := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Principal)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("order %s events' principals %v, want %v", id, got, want)
		}
	}
	h.checkStock("s")
}
