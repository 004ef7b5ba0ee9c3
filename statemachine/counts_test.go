package statemachine

import (
	"fmt"
	"maps"
	"testing"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
)

// countOrder is an order of channel and region with lines at warehouses.
func countOrder(id, channel, region string, warehouses ...string) *gridpb.OrderRecord {
	o := &gridpb.OrderRecord{Id: id, Channel: channel, Region: region, RequestHash: []byte("h" + id), PayByUnixNano: 1 << 62}
	for _, w := range warehouses {
		o.Lines = append(o.Lines, &gridpb.OrderLineRecord{Sku: "s", Qty: 1, UnitPrice: "1", Warehouse: w})
	}
	return o
}

func wantCounts(t *testing.T, m *Machine, want map[string]map[string]int64) {
	t.Helper()
	got := m.OrderCounts()
	for _, d := range CountDimensions {
		if !maps.Equal(got[d], want[d]) {
			t.Errorf("counts by %s = %v, want %v", d, got[d], want[d])
		}
	}
}

// New orders count under their status, channel, region and each distinct
// warehouse (none: ""); a status change moves one order between statuses
// (a refused or replayed one moves none); archiving takes the order off
// every count and restoring puts it back; Load rebuilds the same counts.
func TestOrderCounts(t *testing.T) {
	h := newHarness(t)
	ok := func(r *Result) {
		t.Helper()
		if r.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("outcome %v: %s", r.Outcome, r.Detail)
		}
	}
	r := h.apply(10, createOrders(countOrder("o1", "tmall", "east", "W1", "W2", "W1"), countOrder("o2", "tmall", "", "W1"),
		countOrder("o3", "jd", "west")))
	for _, res := range r.Results {
		ok(res)
	}
	// A retry of o1 counts nothing.
	if r := h.apply(11, createOrders(countOrder("o1", "tmall", "east", "W1", "W2", "W1"))); r.Results[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("retry: %v", r.Results[0])
	}
	wantCounts(t, h.m, map[string]map[string]int64{
		CountByStatus:    {lifecycle.StatusPendingPayment: 3},
		CountByChannel:   {"tmall": 2, "jd": 1},
		CountByWarehouse: {"W1": 2, "W2": 1, "": 1},
		CountByRegion:    {"east": 1, "": 1, "west": 1},
	})

	ok(transitionTo(h, 20, "o1", lifecycle.StatusPaid))
	ok(transitionTo(h, 20, "o2", lifecycle.StatusCancelled))
	if r := transitionTo(h, 21, "o1", lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("replayed pay: %v", r)
	}
	if r := transitionTo(h, 21, "o2", lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION {
		t.Fatalf("illegal pay: %v", r)
	}
	wantCounts(t, h.m, map[string]map[string]int64{
		CountByStatus:    {lifecycle.StatusPendingPayment: 1, lifecycle.StatusPaid: 1, lifecycle.StatusCancelled: 1},
		CountByChannel:   {"tmall": 2, "jd": 1},
		CountByWarehouse: {"W1": 2, "W2": 1, "": 1},
		CountByRegion:    {"east": 1, "": 1, "west": 1},
	})

	// o2 is closed with no stock action owed: it archives.
	archive := &gridpb.Command{Kind: &gridpb.Command_ArchiveOrders{ArchiveOrders: &gridpb.ArchiveOrdersCommand{Archive: "a1", OrderIds: []string{"o2"}, BeforeUnixNano: 25}}}
	archived := readOrder(t, h, "o2")
	if archived.StockAction != "" {
		ok(h.apply(22, &gridpb.Command{Kind: &gridpb.Command_StockSynced{StockSynced: &gridpb.StockSyncedCommand{OrderId: "o2", Action: archived.StockAction}}}))
		archived = readOrder(t, h, "o2")
	}
	events, err := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "o2")
	if err != nil {
		t.Fatal(err)
	}
	if r := h.apply(30, archive); len(r.OrderIds) != 1 {
		t.Fatalf("archive: %v", r)
	}
	afterArchive := map[string]map[string]int64{
		CountByStatus:    {lifecycle.StatusPendingPayment: 1, lifecycle.StatusPaid: 1},
		CountByChannel:   {"tmall": 1, "jd": 1},
		CountByWarehouse: {"W1": 1, "W2": 1, "": 1},
		CountByRegion:    {"east": 1, "west": 1},
	}
	wantCounts(t, h.m, afterArchive)

	restore := &gridpb.Command{Kind: &gridpb.Command_RestoreOrders{RestoreOrders: &gridpb.RestoreOrdersCommand{Archive: "a1",
		Orders: []*gridpb.ArchivedOrder{{Order: archived, Events: events}}}}}
	if r := h.apply(40, restore); len(r.OrderIds) != 1 {
		t.Fatalf("restore: %v", r)
	}
	if r := h.apply(41, restore); len(r.OrderIds) != 0 {
		t.Fatalf("restored twice: %v", r)
	}
	restored := map[string]map[string]int64{
		CountByStatus:    {lifecycle.StatusPendingPayment: 1, lifecycle.StatusPaid: 1, lifecycle.StatusCancelled: 1},
		CountByChannel:   {"tmall": 2, "jd": 1},
		CountByWarehouse: {"W1": 2, "W2": 1, "": 1},
		CountByRegion:    {"east": 1, "": 1, "west": 1},
	}
	wantCounts(t, h.m, restored)

	h.m = New(0, h.prefix).(*Machine)
	if err := h.m.Load(h.db); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, h.m, restored)
	// The rebuilt index goes on counting.
	ok(transitionTo(h, 50, "o3", lifecycle.StatusPaid))
	restored[CountByStatus][lifecycle.StatusPendingPayment] = 0
	delete(restored[CountByStatus], lifecycle.StatusPendingPayment)
	restored[CountByStatus][lifecycle.StatusPaid] = 2
	wantCounts(t, h.m, restored)
}

// Past countValuesMax values, a dimension counts further values under
// CountOther, and takes orders off the entry they were counted under.
func TestOrderCountsBounded(t *testing.T) {
	c := newCountIndex()
	for i := range countValuesMax + 2 {
		c.add(&gridpb.OrderRecord{Status: "paid", Channel: fmt.Sprint("ch-", i)}, 1)
	}
	if n := c.dims[dimChannel][CountOther]; n != 3 {
		// countValuesMax-1 channels and CountOther fill the map: 3 over.
		t.Fatalf("other = %d, want 3", n)
	}
	if len(c.dims[dimChannel]) != countValuesMax {
		t.Fatalf("%d values, want %d", len(c.dims[dimChannel]), countValuesMax)
	}
	c.add(&gridpb.OrderRecord{Status: "paid", Channel: fmt.Sprint("ch-", countValuesMax+1)}, -1)
	c.add(&gridpb.OrderRecord{Status: "paid", Channel: "ch-0"}, -1)
	if c.dims[dimChannel][CountOther] != 2 || c.dims[dimChannel]["ch-0"] != 0 || c.dims[dimStatus]["paid"] != countValuesMax {
		t.Fatalf("after removals: other %d, ch-0 %d, paid %d", c.dims[dimChannel][CountOther], c.dims[dimChannel]["ch-0"], c.dims[dimStatus]["paid"])
	}
}

// Counting a new order allocates nothing once its values are known.
func TestOrderCountsNoAllocations(t *testing.T) {
	c := newCountIndex()
	o := countOrder("o", "tmall", "east", "W1", "W2")
	c.add(o, 1)
	if n := testing.AllocsPerRun(100, func() { c.add(o, 1); c.move("pending_payment", "paid") }); n != 0 {
		t.Fatalf("%v allocations per order", n)
	}
}

// BenchmarkOrderCounts is the counters' cost on the create path: an order
// with two warehouses counted, then moved once.
func BenchmarkOrderCounts(b *testing.B) {
	c := newCountIndex()
	o := countOrder("o", "tmall", "east", "W1", "W2")
	b.ReportAllocs()
	for b.Loop() {
		c.add(o, 1)
		c.move("pending_payment", "paid")
	}
}
