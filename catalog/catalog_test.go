package catalog

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/actors/memgrid"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/limits"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/statemachine"
)

// cachingGrid is an in-memory grid with a node's routing cache.
type cachingGrid struct {
	*memgrid.Grid
	cached atomic.Pointer[routing.Catalog]
	limits atomic.Pointer[limits.Set]
}

func (g *cachingGrid) Limits() *limits.Set { return g.limits.Load() }

func (g *cachingGrid) LoadRiskModel(statemachine.Reader) error { return nil }

func (g *cachingGrid) KeepLimits(l *limits.Set) {
	if old := g.limits.Load(); old == nil || old.Generation < l.Generation {
		g.limits.Store(l)
	}
}

func (g *cachingGrid) Catalog() *routing.Catalog {
	if c := g.cached.Load(); c != nil {
		return c
	}
	c, _ := routing.NewCatalog(0, nil, nil, nil)
	return c
}

func (g *cachingGrid) KeepCatalog(c *routing.Catalog) {
	if old := g.cached.Load(); old == nil || old.Generation < c.Generation {
		g.cached.Store(c)
	}
}

func (g *cachingGrid) Loads(string, int32) int64 { return 0 }

func newAdmin(t *testing.T) (*Admin, *cachingGrid) {
	t.Helper()
	mg, err := memgrid.New(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mg.Close() })
	g := &cachingGrid{Grid: mg}
	return NewAdmin(g, nil), g
}

func warehouse(id string) *routing.Warehouse {
	return &routing.Warehouse{ID: id, Region: "east", State: "up", Timezone: "Asia/Shanghai",
		Rates: []routing.Rate{{Region: "*", Cost: "8.00", TransitDays: 2}}}
}

// A change is acknowledged once the node's cache holds it; a stale
// version is refused with the state machine's outcome; seeding adds only
// what the catalog lacks; stock may go only to registered warehouses once
// there are any.
func TestAdminChangesAndKeepsTheCache(t *testing.T) {
	a, g := newAdmin(t)
	ctx := context.Background()
	if ok, err := a.KnowsWarehouse("WH-ANY"); err != nil || !ok {
		t.Fatalf("no warehouse registered: any may hold stock, got %v %v", ok, err)
	}
	stored, err := a.PutWarehouse(ctx, "ops", warehouse("WH1"), 0)
	if err != nil || stored.Version != 1 {
		t.Fatalf("put: %+v %v", stored, err)
	}
	if _, ok := g.Catalog().Warehouse("WH1"); !ok {
		t.Fatal("the cache does not hold the change it acknowledged")
	}
	_, err = a.PutWarehouse(ctx, "ops", warehouse("WH1"), 7)
	if failure.OutcomeOf(err) != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION {
		t.Fatalf("stale version: %v", err)
	}
	added, err := a.SeedWarehouses(ctx, []*routing.Warehouse{warehouse("WH1"), warehouse("WH2")})
	if err != nil || added != 1 {
		t.Fatalf("seed: %d %v", added, err)
	}
	for id, want := range map[string]bool{"WH1": true, "WH2": true, "WH-ANY": false} {
		if ok, err := a.KnowsWarehouse(id); err != nil || ok != want {
			t.Errorf("knows %s: %v %v", id, ok, err)
		}
	}
	bad := warehouse("WH3")
	bad.State = "sideways"
	_, err = a.PutWarehouse(ctx, "ops", bad, 0)
	var es routing.Errors
	var fe *routing.FieldError
	if err == nil || !errors.Is(err, ErrRoutingInput) && !errors.As(err, &es) && !errors.As(err, &fe) {
		t.Fatalf("a bad document: %v", err)
	}
}

// The admin reads what the grid committed: an order's free stock, from the
// SKU's partition.
func TestAdminReadsFreeStock(t *testing.T) {
	a, g := newAdmin(t)
	ctx := context.Background()
	if _, err := a.PutWarehouse(ctx, "ops", warehouse("WH1"), 0); err != nil {
		t.Fatal(err)
	}
	res, err := g.PartitionOf(actors.SkuKey("S1")).Propose(ctx, "ops", &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "S1", Warehouse: "WH1", OnHand: 9}}})
	if err != nil || res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("set stock: %+v %v", res, err)
	}
	free, err := a.CurrentFree("S1")
	if err != nil || free["WH1"] != 9 || len(free) != 1 {
		t.Fatalf("free: %v %v", free, err)
	}
}
