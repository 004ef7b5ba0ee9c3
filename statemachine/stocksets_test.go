package statemachine

import (
	"fmt"
	"testing"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// A stock set committed twice (a retried proposal whose first copy also
// committed, after a later set) is applied once: the later set stands.
func TestStockSetCopyCommittedLateChangesNothing(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	set := func(onHand int64, id string) *Result {
		return h.apply(10, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "C", Warehouse: "W1", OnHand: onHand, RequestId: []byte(id)}}})
	}
	onHand := func() int64 {
		st, _, err := ReadStock(r, h.prefix, "C")
		if err != nil || len(st.Warehouses) != 1 {
			t.Fatalf("stock: %v %v", st, err)
		}
		return st.Warehouses[0].OnHand
	}
	if res := set(14, "a"); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("set: %+v", res)
	}
	if res := set(17, "b"); res.Outcome != gridpb.Outcome_OUTCOME_OK || onHand() != 17 {
		t.Fatalf("later set: %+v, on hand %d", res, onHand())
	}
	if res := set(14, "a"); res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || onHand() != 17 {
		t.Fatalf("the first set again: %+v, on hand %d, want 17", res, onHand())
	}
	// The ids kept are bounded: the oldest go.
	for i := 0; i < stockSetsKept+5; i++ {
		set(int64(20+i), fmt.Sprint("n", i))
	}
	var sets gridpb.StockSetsRecord
	if _, err := getProto(r, stockSetsKey(h.prefix, "C"), &sets); err != nil || len(sets.RequestIds) != stockSetsKept {
		t.Fatalf("kept %d ids (%v), want %d", len(sets.RequestIds), err, stockSetsKept)
	}
	// A set with no id (an older node's command) is applied as before.
	if res := h.apply(11, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "C", Warehouse: "W1", OnHand: 5}}}); res.Outcome != gridpb.Outcome_OUTCOME_OK || onHand() != 5 {
		t.Fatalf("set without an id: %+v", res)
	}
}
