package statemachine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

func createOrders(orders ...*gridpb.OrderRecord) *gridpb.Command {
	c := &gridpb.CreateOrdersCommand{}
	for _, o := range orders {
		c.Orders = append(c.Orders, &gridpb.CreateOrderCommand{Order: o})
	}
	return &gridpb.Command{Kind: &gridpb.Command_CreateOrders{CreateOrders: c}}
}

// A create_orders entry judges each order as a create_order of its own:
// new ones recorded, a retry answered with the order, a different request
// under a recorded id refused, a second request for an id of the same
// entry answered from the first.
func TestCreateOrdersJudgesEachOrder(t *testing.T) {
	h := newHarness(t)
	o := func(id, hash string) *gridpb.OrderRecord {
		return &gridpb.OrderRecord{Id: id, RequestHash: []byte(hash), PayByUnixNano: 1000,
			Lines: []*gridpb.OrderLineRecord{{Sku: "s", Qty: 1, UnitPrice: "1", Warehouse: "w"}}}
	}
	first := h.apply(10, createOrders(o("a", "ha"), o("b", "hb")))
	if len(first.Results) != 2 || first.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK || first.Results[1].Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("first entry: %v", first)
	}
	second := h.apply(11, createOrders(o("a", "ha"), o("b", "other"), o("c", "hc"), o("c", "hc2"), &gridpb.OrderRecord{}))
	want := []gridpb.Outcome{gridpb.Outcome_OUTCOME_REPLAYED, gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, gridpb.Outcome_OUTCOME_OK,
		gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, gridpb.Outcome_OUTCOME_UNSPECIFIED}
	if len(second.Results) != len(want) {
		t.Fatalf("second entry: %d results", len(second.Results))
	}
	for i, w := range want {
		if got := second.Results[i].Outcome; got != w {
			t.Errorf("order %d: %s, want %s (%s)", i, got, w, second.Results[i].Detail)
		}
	}
	if second.Results[0].Order.Version != 1 || second.Results[0].Order.CreatedUnixNano != 10 {
		t.Errorf("the retry was not answered with the recorded order: %v", second.Results[0].Order)
	}
}

// The in-memory index is rebuilt from the state: a machine that restarts
// (or restores a snapshot) over recorded orders, reservations and keys
// still answers them as recorded, and a new one as new.
func TestIndexRebuiltOnLoad(t *testing.T) {
	h := newHarness(t)
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "s", Warehouse: "w", OnHand: 10}}})
	h.apply(2, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "s",
		Items: []*gridpb.ReserveItem{{OrderId: "a", Qty: 2, ExpiresUnixNano: 100}}}}})
	h.apply(3, createOrders(&gridpb.OrderRecord{Id: "a", RequestHash: []byte("h"), PayByUnixNano: 100}))
	h.apply(4, &gridpb.Command{Kind: &gridpb.Command_PutSubjectKeys{PutSubjectKeys: &gridpb.PutSubjectKeysCommand{
		Keys: []*gridpb.SubjectKeyRecord{{Subject: "cu", MasterKeyId: "k1", WrappedKey: []byte("w1")}}}}})

	// A new machine over the same state, as after a restart.
	h.m = New(0, h.prefix).(*Machine)
	if err := h.m.Load(h.db); err != nil {
		t.Fatal(err)
	}
	if r := h.apply(5, createOrders(&gridpb.OrderRecord{Id: "a", RequestHash: []byte("h")})); r.Results[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Errorf("recorded order after load: %s", r.Results[0].Outcome)
	}
	r := h.apply(6, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "s",
		Items: []*gridpb.ReserveItem{{OrderId: "a", Qty: 2, ExpiresUnixNano: 100}, {OrderId: "b", Qty: 3, ExpiresUnixNano: 100}}}}})
	if r.Reserve.Items[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED || r.Reserve.Items[1].Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Errorf("reservations after load: %v", r.Reserve.Items)
	}
	h.checkStock("s")
	k := h.apply(7, &gridpb.Command{Kind: &gridpb.Command_PutSubjectKeys{PutSubjectKeys: &gridpb.PutSubjectKeysCommand{
		Keys: []*gridpb.SubjectKeyRecord{{Subject: "cu", MasterKeyId: "k1", WrappedKey: []byte("w2")}, {Subject: "new", MasterKeyId: "k1", WrappedKey: []byte("w3")}}}}})
	if string(k.SubjectKeys[0].WrappedKey) != "w1" || string(k.SubjectKeys[1].WrappedKey) != "w3" {
		t.Errorf("keys after load: the first key must win: %v", k.SubjectKeys)
	}
	// Erasure takes the key out of the index too: a later key is new.
	erased := ""
	hooks := &Hooks{}
	hooks.OnErased(func(s string) { erased = s })
	h.m.hooks = hooks
	if r := h.apply(8, &gridpb.Command{Kind: &gridpb.Command_EraseSubject{EraseSubject: &gridpb.EraseSubjectCommand{Subject: "cu"}}}); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("erase: %s %s", r.Outcome, r.Detail)
	}
	if erased != "cu" {
		t.Errorf("the erasure hook was told %q", erased)
	}
	k = h.apply(9, &gridpb.Command{Kind: &gridpb.Command_PutSubjectKeys{PutSubjectKeys: &gridpb.PutSubjectKeysCommand{
		Keys: []*gridpb.SubjectKeyRecord{{Subject: "cu", MasterKeyId: "k1", WrappedKey: []byte("w4")}}}}})
	if string(k.SubjectKeys[0].WrappedKey) != "w4" {
		t.Errorf("a key after erasure: %v", k.SubjectKeys)
	}
}

// The index agrees with the state after any sequence of commands: every
// indexed key in the state is in the index and nothing else is.
func TestIndexMatchesState(t *testing.T) {
	h := newHarness(t)
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "s", Warehouse: "w", OnHand: 1000}}})
	for i := range 50 {
		id := fmt.Sprintf("o%d", i%30)
		h.apply(int64(10+i), &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "s",
			Items: []*gridpb.ReserveItem{{OrderId: id, Qty: 1, ExpiresUnixNano: 100}}}}})
		h.apply(int64(10+i), createOrders(&gridpb.OrderRecord{Id: id, RequestHash: []byte("h"), PayByUnixNano: 100}))
		if i%7 == 0 {
			h.apply(int64(10+i), &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: "s", OrderId: id, Action: lifecycle.ActionRelease}}})
		}
	}
	fresh := New(0, h.prefix).(*Machine)
	if err := fresh.Load(h.db); err != nil {
		t.Fatal(err)
	}
	if len(fresh.present) != len(h.m.present) {
		t.Fatalf("index of %d keys, state has %d", len(h.m.present), len(fresh.present))
	}
	for k := range fresh.present {
		if _, ok := h.m.present[k]; !ok {
			t.Errorf("state key %q not in the index", k)
		}
	}
	h.checkStock("s")
}

// A batch of new orders writes, per order, its record and its "created"
// event (which carries the routing decision) and nothing else of its own:
// the pay-by deadline and the subject's orders are kept in memory, and the
// batch's parcels are added to each ship day's load once. The in-memory
// indexes are rebuilt from the records after a restart.
func TestNewOrderKeys(t *testing.T) {
	h := newHarness(t)
	var orders []*gridpb.CreateOrderCommand
	for i := range 5 {
		orders = append(orders, &gridpb.CreateOrderCommand{
			Order: &gridpb.OrderRecord{Id: fmt.Sprintf("o%d", i), RequestHash: []byte("h"), PayByUnixNano: int64(100 + i),
				Customer: &pb.Customer{Id: fmt.Sprintf("cu%d", i%2)}, Shipments: []*gridpb.ShipmentRecord{{Warehouse: "w", ShipDay: 7}}},
			Routing: &gridpb.RoutingRecord{Arm: "active", Strategy: "s@1"}})
	}
	data, _ := proto.Marshal(&gridpb.Command{AtUnixNano: 10, Principal: "test", Kind: &gridpb.Command_CreateOrders{CreateOrders: &gridpb.CreateOrdersCommand{Orders: orders}}})
	b := h.db.NewIndexedBatch()
	h.index++
	h.m.Apply(b, h.index, data)
	// What the entry wrote, by key space (the ledger's outbox aside).
	spaces := map[byte]int{}
	r := b.Reader()
	for kind, k, _, ok, err := r.Next(); ok; kind, k, _, ok, err = r.Next() {
		if err != nil {
			t.Fatal(err)
		}
		if kind == pebble.InternalKeyKindSet && bytes.HasPrefix(k, h.prefix) && len(k) > len(h.prefix) {
			spaces[k[len(h.prefix)]]++
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	delete(spaces, outboxSpace(t, h))
	if !maps.Equal(spaces, map[byte]int{'o': 5, 'e': 5, 'l': 1}) {
		t.Fatalf("keys written per space: %v", spaces)
	}
	loads := map[string]int64{}
	if err := ReadLoads(cluster.LocalReader{R: h.db}, h.prefix, 7, loads); err != nil || loads["w"] != 5 {
		t.Fatalf("loads %v %v", loads, err)
	}
	if rec, ok, err := ReadRouting(cluster.LocalReader{R: h.db}, h.prefix, "o3"); err != nil || !ok || rec.Arm != "active" {
		t.Fatalf("routing %v %v %v", rec, ok, err)
	}
	if due := h.m.DueOrders(102, 10); !slices.Equal(due, []string{"o0", "o1", "o2"}) {
		t.Fatalf("due %v", due)
	}
	h.apply(11, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: "o1", Type: lifecycle.StatusPaid}}})
	h.m = New(0, h.prefix).(*Machine) // a restart
	if err := h.m.Load(h.db); err != nil {
		t.Fatal(err)
	}
	if due := h.m.DueOrders(1000, 10); !slices.Equal(due, []string{"o0", "o2", "o3", "o4"}) {
		t.Fatalf("due after a restart %v", due)
	}
	if got := h.m.SubjectOrders("cu0", 10); !slices.Equal(got, []string{"o0", "o2", "o4"}) {
		t.Fatalf("subject's orders after a restart %v", got)
	}
	h.apply(200, &gridpb.Command{Kind: &gridpb.Command_ExpireOrders{ExpireOrders: &gridpb.ExpireOrdersCommand{OrderIds: []string{"o0", "o2"}}}})
	if due := h.m.DueOrders(1000, 10); !slices.Equal(due, []string{"o3", "o4"}) {
		t.Fatalf("due after expiring %v", due)
	}
}

// outboxSpace is the key space byte of the partition's ledger outbox.
func outboxSpace(t *testing.T, h *harness) byte {
	t.Helper()
	it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: h.prefix, UpperBound: prefixEnd(h.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if s := it.Key()[len(h.prefix)]; s != 'o' && s != 'e' && s != 'l' {
			return s
		}
	}
	return 0
}
