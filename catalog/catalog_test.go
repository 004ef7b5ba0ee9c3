package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// skuRules lists a SKU's limit copies as "rule@revision" (":deleted" for
// a tombstone), as the SKU's partition has them.
func skuRules(t *testing.T, g *cachingGrid, sku string) []string {
	t.Helper()
	p := g.PartitionOf(actors.SkuKey(sku))
	rules, err := statemachine.ReadSkuLimits(p.Reader(), p.Prefix(), sku)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		s := fmt.Sprintf("%s@%d", r.Rule, r.Version)
		if r.Deleted {
			s += ":deleted"
		}
		out = append(out, s)
	}
	return out
}

// PutLimit copies a rule into every SKU it names and takes it out of the
// SKUs it no longer names; DeleteLimit takes it out of all (again, on a
// second delete); a re-created rule's copies have a later revision than
// the tombstones; the node's cache follows.
func TestAdminFansLimitsOutToTheSKUs(t *testing.T) {
	a, g := newAdmin(t)
	ctx := context.Background()
	rule := func(skus ...string) *limits.Rule {
		return &limits.Rule{ID: "drop", SKUs: skus, Per: limits.PerCustomer, MaxQty: 2, Action: limits.ActionRefuse}
	}
	v1, err := a.PutLimit(ctx, "ops", rule("A", "X"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r1 := fmt.Sprintf("drop@%d", v1.Revision)
	if got := skuRules(t, g, "A"); !slices.Equal(got, []string{r1}) {
		t.Fatalf("A after v1: %v", got)
	}
	if got, ok := a.Limits().Rule("drop"); !ok || got.Version != 1 {
		t.Fatalf("cache after v1: %+v", got)
	}
	v2, err := a.PutLimit(ctx, "ops", rule("A"), 1)
	if err != nil {
		t.Fatal(err)
	}
	r2 := fmt.Sprintf("drop@%d", v2.Revision)
	if !slices.Equal(v2.Retired, []string{"X"}) || v2.Revision <= v1.Revision {
		t.Fatalf("v2: %+v", v2)
	}
	if got := skuRules(t, g, "A"); !slices.Equal(got, []string{r2}) {
		t.Fatalf("A after v2: %v", got)
	}
	if got := skuRules(t, g, "X"); !slices.Equal(got, []string{r2 + ":deleted"}) {
		t.Fatalf("X after v2: %v", got)
	}
	if err := a.DeleteLimit(ctx, "ops", "drop", 2); err != nil {
		t.Fatal(err)
	}
	aDeleted := skuRules(t, g, "A")
	if len(aDeleted) != 1 || !strings.HasSuffix(aDeleted[0], ":deleted") || aDeleted[0] == r2+":deleted" {
		t.Fatalf("A after delete: %v", aDeleted)
	}
	if _, ok := a.Limits().Rule("drop"); ok {
		t.Fatal("the deleted rule is still cached")
	}
	if err := a.DeleteLimit(ctx, "ops", "drop", 0); err != nil {
		t.Fatalf("a second delete: %v", err)
	}
	if err := a.DeleteLimit(ctx, "ops", "never", 0); failure.OutcomeOf(err) != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("delete of a rule never put: %v", err)
	}
	v5, err := a.PutLimit(ctx, "ops", rule("A"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := skuRules(t, g, "A"); v5.Version != 4 || !slices.Equal(got, []string{fmt.Sprintf("drop@%d", v5.Revision)}) {
		t.Fatalf("A after re-creating (version %d): %v", v5.Version, got)
	}
	if got := skuRules(t, g, "X"); !slices.Equal(got, []string{fmt.Sprintf("drop@%d:deleted", v5.Revision)}) {
		t.Fatalf("X after re-creating: %v (its retirement is sent again)", got)
	}
}
