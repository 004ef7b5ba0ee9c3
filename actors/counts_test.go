package actors

import (
	"maps"
	"testing"

	"github.com/ordergrid/ordergrid/lifecycle"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The node's order counts sum its partitions'.
func TestOrderCountsMergePartitions(t *testing.T) {
	h := newHouse(t, testSeed(t), 2)
	a, b := h.idsOf(0, "a", 1)[0], h.idsOf(1, "b", 2)
	h.paidOrder(a, "tmall", "WH-1")
	h.paidOrder(b[0], "tmall", "WH-1")
	h.paidOrder(b[1], "web", "WH-2")
	twin := func(part int) *twinPartition { return h.parts.refs[part].partition.(*twinPartition) }
	got := mergeOrderCounts([]*statemachine.Machine{twin(0).m, twin(1).m})
	want := map[string]map[string]int64{
		statemachine.CountByStatus:    {lifecycle.StatusPaid: 3},
		statemachine.CountByChannel:   {"tmall": 2, "web": 1},
		statemachine.CountByWarehouse: {"WH-1": 2, "WH-2": 1},
		statemachine.CountByRegion:    {"": 3},
	}
	for _, d := range statemachine.CountDimensions {
		if !maps.Equal(got[d], want[d]) {
			t.Errorf("by %s: %v, want %v", d, got[d], want[d])
		}
	}
	if one := mergeOrderCounts([]*statemachine.Machine{twin(1).m}); one[statemachine.CountByChannel]["tmall"] != 1 {
		t.Errorf("partition 1 alone: %v", one)
	}
}
