package statemachine

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
)

type harness struct {
	t      *testing.T
	db     *pebble.DB
	m      *Machine
	index  uint64
	prefix []byte
}

func newHarness(t *testing.T) *harness {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	prefix := []byte("p/\x00\x00\x00\x00/")
	return &harness{t: t, db: db, m: New(0, prefix).(*Machine), prefix: prefix}
}

func (h *harness) apply(at int64, cmd *gridpb.Command) *Result {
	h.t.Helper()
	return h.applyAs(at, "test", cmd)
}

// applyAs applies cmd proposed with principal as the command's principal.
func (h *harness) applyAs(at int64, principal string, cmd *gridpb.Command) *Result {
	h.t.Helper()
	cmd.AtUnixNano = at
	cmd.Principal = principal
	data, _ := proto.Marshal(cmd)
	b := h.db.NewIndexedBatch()
	h.index++
	res := &Result{}
	if err := proto.Unmarshal(h.m.Apply(b, h.index, data), res); err != nil {
		h.t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// checkStock verifies conservation and that pending and committed equal the
// sums of the reservations in those states, for every warehouse of sku.
func (h *harness) checkStock(sku string) {
	h.t.Helper()
	st, _, err := ReadStock(cluster.LocalReader{R: h.db}, h.prefix, sku)
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := ReadReservations(cluster.LocalReader{R: h.db}, h.prefix, sku)
	if err != nil {
		h.t.Fatal(err)
	}
	pending, committed := map[string]int64{}, map[string]int64{}
	for _, r := range res {
		switch r.State {
		case gridpb.ReservationState_RESERVATION_STATE_PENDING:
			pending[r.Warehouse] += r.Qty
		case gridpb.ReservationState_RESERVATION_STATE_COMMITTED:
			committed[r.Warehouse] += r.Qty
		}
	}
	for _, w := range st.Warehouses {
		if w.OnHand != w.Available+w.Pending+w.Committed || w.Available < 0 {
			h.t.Fatalf("%s@%s not conserved: %+v", sku, w.Warehouse, w)
		}
		if w.Pending != pending[w.Warehouse] || w.Committed != committed[w.Warehouse] {
			h.t.Fatalf("%s@%s: stock says pending %d committed %d, reservations %d %d",
				sku, w.Warehouse, w.Pending, w.Committed, pending[w.Warehouse], committed[w.Warehouse])
		}
	}
}

// Random reserve, settle, restock and expiry commands, from a logged seed,
// never break conservation, never oversell, and never reserve one (sku,
// order) twice.
func TestRandomCommandsConserveStock(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewSource(seed))
	h := newHarness(t)
	skus := []string{"A", "B", "C"}
	whs := []string{"W1", "W2", "W3"}
	actions := []string{lifecycle.ActionCommit, lifecycle.ActionRelease, lifecycle.ActionShip, lifecycle.ActionRestock}
	now := int64(1_000_000)
	reserved := 0
	for step := 0; step < 3000; step++ {
		now += int64(rng.Intn(1000))
		sku := skus[rng.Intn(len(skus))]
		order := fmt.Sprintf("o%d", rng.Intn(200))
		switch rng.Intn(10) {
		case 0:
			h.apply(now, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: sku, Warehouse: whs[rng.Intn(3)], OnHand: int64(rng.Intn(50))}}})
		case 1, 2, 3, 4:
			var items []*gridpb.ReserveItem
			for i := rng.Intn(8); i >= 0; i-- {
				items = append(items, &gridpb.ReserveItem{OrderId: fmt.Sprintf("o%d", rng.Intn(200)), Qty: int64(1 + rng.Intn(5)), ExpiresUnixNano: now + int64(rng.Intn(5000))})
			}
			before, _ := ReadReservations(cluster.LocalReader{R: h.db}, h.prefix, sku)
			res := h.apply(now, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: sku, Items: items}}})
			if len(res.Reserve.Items) != len(items) {
				t.Fatalf("step %d: %d results for %d items", step, len(res.Reserve.Items), len(items))
			}
			after, _ := ReadReservations(cluster.LocalReader{R: h.db}, h.prefix, sku)
			if len(after) > len(before)+len(items) {
				t.Fatalf("step %d: reservations grew by more than the batch", step)
			}
			for _, r := range res.Reserve.Items {
				if r.Outcome == gridpb.Outcome_OUTCOME_OK {
					reserved++
				}
			}
		case 5, 6, 7:
			h.apply(now, &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: sku, OrderId: order, Action: actions[rng.Intn(len(actions))]}}})
		case 8:
			h.apply(now, &gridpb.Command{Kind: &gridpb.Command_ExpireReservations{ExpireReservations: &gridpb.ExpireReservationsCommand{Sku: sku, OrderIds: []string{order}}}})
		case 9:
			due, err := DueReservations(cluster.LocalReader{R: h.db}, h.prefix, now, 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range due {
				h.apply(now, &gridpb.Command{Kind: &gridpb.Command_ExpireReservations{ExpireReservations: &gridpb.ExpireReservationsCommand{Sku: d.SKU, OrderIds: []string{d.OrderID}}}})
				if r, _, _ := ReadReservation(cluster.LocalReader{R: h.db}, h.prefix, d.SKU, d.OrderID); r.State == gridpb.ReservationState_RESERVATION_STATE_PENDING {
					t.Fatalf("step %d: due reservation %s/%s still pending", step, d.SKU, d.OrderID)
				}
			}
		}
		h.checkStock(sku)
	}
	if reserved == 0 {
		t.Fatal("the random walk never reserved anything")
	}
}

// A reservation is keyed by (sku, order): a replay in the same batch or a
// later one returns the first result.
func TestReserveIsIdempotent(t *testing.T) {
	h := newHarness(t)
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "A", Warehouse: "W1", OnHand: 3}}})
	item := &gridpb.ReserveItem{OrderId: "o1", Qty: 2, ExpiresUnixNano: 100}
	res := h.apply(2, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "A", Items: []*gridpb.ReserveItem{item, item}}}})
	if res.Reserve.Items[0].Outcome != gridpb.Outcome_OUTCOME_OK || res.Reserve.Items[1].Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("batch: %v", res.Reserve.Items)
	}
	res = h.apply(3, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "A", Items: []*gridpb.ReserveItem{item, {OrderId: "o2", Qty: 2}}}}})
	if res.Reserve.Items[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED || res.Reserve.Items[1].Outcome != gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK {
		t.Fatalf("second batch: %v", res.Reserve.Items)
	}
	st, _, _ := ReadStock(cluster.LocalReader{R: h.db}, h.prefix, "A")
	if st.Total.Pending != 2 || st.Total.Available != 1 {
		t.Fatalf("stock %v", st.Total)
	}
}

func TestTransitions(t *testing.T) {
	h := newHarness(t)
	o := &gridpb.OrderRecord{Id: "o1", RequestHash: []byte("h"), PayByUnixNano: 1000, Lines: []*gridpb.OrderLineRecord{{Sku: "A", Qty: 1}}}
	if r := h.apply(10, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: o}}}); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatal(r)
	}
	other := proto.Clone(o).(*gridpb.OrderRecord)
	other.RequestHash = []byte("different")
	if r := h.apply(11, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: other}}}); r.Outcome != gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT {
		t.Fatalf("conflict: %v", r.Outcome)
	}
	if r := h.apply(12, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: o}}}); r.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || r.Order.Version != 1 {
		t.Fatalf("replay: %v", r)
	}
	tr := func(at int64, typ string) *Result {
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: "o1", Type: typ}}})
	}
	if r := tr(20, lifecycle.StatusShipped); r.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION || r.Order.Status != lifecycle.StatusPendingPayment {
		t.Fatalf("ship unpaid: %v", r.Outcome)
	}
	if r := tr(1000, lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_EXPIRED {
		t.Fatalf("pay at the deadline: %v", r.Outcome)
	}
	if r := tr(999, lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_OK || r.Order.StockAction != lifecycle.ActionCommit {
		t.Fatalf("pay: %v", r)
	}
	if r := tr(999, lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("pay twice: %v", r.Outcome)
	}
	owed, _ := OwedStockActions(cluster.LocalReader{R: h.db}, h.prefix, 10)
	if len(owed) != 1 {
		t.Fatalf("owed %v", owed)
	}
	if r := h.apply(30, &gridpb.Command{Kind: &gridpb.Command_StockSynced{StockSynced: &gridpb.StockSyncedCommand{OrderId: "o1", Version: 2}}}); r.Order.StockAction != "" {
		t.Fatalf("synced: %v", r)
	}
	if owed, _ = OwedStockActions(cluster.LocalReader{R: h.db}, h.prefix, 10); len(owed) != 0 {
		t.Fatalf("still owed %v", owed)
	}
	if due := h.m.DueOrders(5000, 10); len(due) != 0 {
		t.Fatalf("a paid order is due for expiry: %v", due)
	}
	evs, _ := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "o1")
	if len(evs) != 2 || evs[0].Type != "created" || evs[1].Type != lifecycle.StatusPaid || evs[1].Principal != "test" {
		t.Fatalf("events %v", evs)
	}
}
