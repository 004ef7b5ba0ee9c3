// Package catalog is the routing catalog's admin on a node: it changes the
// warehouses, strategies and live selection through the catalog's
// partition, reads it there, and reads what routing replays (orders as
// they were routed, free stock) for simulations.
//
// A node routes orders with the catalog cached by package actors; a change
// made through this package is read back on the partition's leader and
// kept in that cache before it is acknowledged, so this node's next order
// routes by it (other nodes follow within actors' poll interval).
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/limits"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Grid is what the admin needs of the grid (actors.Node in a node): the
// partitions, and the node's routing cache.
type Grid interface {
	PartitionOf(key string) actors.Partition
	Partitions() []actors.Partition
	// Catalog is the routing catalog as the node last read it.
	Catalog() *routing.Catalog
	// KeepCatalog makes c the node's catalog unless the node's is as new.
	KeepCatalog(c *routing.Catalog)
	// Limits are the purchase limits as the node last read them; KeepLimits
	// makes l the node's unless the node's are as new.
	Limits() *limits.Set
	KeepLimits(l *limits.Set)
	// LoadRiskModel makes the risk model stored in the catalog's
	// partition (read by r) the node's screener's.
	LoadRiskModel(r statemachine.Reader) error
	// Loads are the parcels routed to a warehouse for a ship day.
	Loads(wh string, day int32) int64
}

// ErrRoutingInput is a catalog document or selection that is wrong; it
// wraps routing.Errors or a routing.FieldError.
var ErrRoutingInput = errors.New("routing input refused")

// Admin changes and reads a grid's routing catalog.
type Admin struct {
	grid   Grid
	logger *slog.Logger
}

// NewAdmin returns the catalog admin of grid; logger (nil: slog's default)
// hears of a change whose read-back failed.
func NewAdmin(grid Grid, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.Default()
	}
	return &Admin{grid: grid, logger: logger}
}

// Catalog is the routing catalog as this node last read it.
func (a *Admin) Catalog() *routing.Catalog { return a.grid.Catalog() }

// Loads returns the parcels routed to a warehouse for a ship day, as this
// node sees them.
func (a *Admin) Loads(wh string, day int32) int64 { return a.grid.Loads(wh, day) }

// Fresh is the routing catalog as its partition's leader has it (read
// there and kept as this node's cache): for a change that reads the
// catalog first, on a node whose replica may be behind (just restarted,
// or the change before it was made through another node).
func (a *Admin) Fresh() (*routing.Catalog, error) {
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a.grid.Catalog(), nil
}

// reload reads the catalog on its partition's leader into the node's cache.
func (a *Admin) reload() error {
	p := a.grid.PartitionOf(statemachine.CatalogKey)
	c, err := statemachine.ReadCatalog(p.Reader(), p.Prefix())
	if err != nil {
		return err
	}
	l, err := statemachine.ReadLimits(p.Reader(), p.Prefix())
	if err != nil {
		return err
	}
	a.grid.KeepLimits(l)
	a.grid.KeepCatalog(c)
	return a.grid.LoadRiskModel(p.Reader())
}

// change proposes one catalog change and reloads the cache from the
// leader before it returns, so this node's next order sees it.
func (a *Admin) change(ctx context.Context, principal string, cmd *gridpb.Command) ([]byte, error) {
	res, err := a.grid.PartitionOf(statemachine.CatalogKey).Propose(ctx, principal, cmd)
	if err != nil {
		return nil, err
	}
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK, gridpb.Outcome_OUTCOME_REPLAYED: // REPLAYED: a delete of a deleted limit
	case gridpb.Outcome_OUTCOME_UNSPECIFIED:
		return nil, fmt.Errorf("%w: %s", ErrRoutingInput, res.Detail)
	default:
		return nil, failure.FromOutcome(res.Outcome, res.Detail)
	}
	if err := a.reload(); err != nil {
		a.logger.Warn("reloading the routing catalog", slog.Any("error", err))
	}
	return res.Document, nil
}

// PutWarehouse creates or replaces a warehouse (expected 0: any version).
func (a *Admin) PutWarehouse(ctx context.Context, principal string, w *routing.Warehouse, expected uint64) (*routing.Warehouse, error) {
	doc, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	out, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_PutWarehouse{PutWarehouse: &gridpb.PutWarehouseCommand{Document: doc, ExpectedVersion: expected}}})
	if err != nil {
		return nil, err
	}
	var stored routing.Warehouse
	return &stored, json.Unmarshal(out, &stored)
}

// PutStrategy stores a strategy as its next version.
func (a *Admin) PutStrategy(ctx context.Context, principal string, s *routing.Strategy) (*routing.Strategy, error) {
	doc, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	out, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_PutStrategy{PutStrategy: &gridpb.PutStrategyCommand{Document: doc}}})
	if err != nil {
		return nil, err
	}
	var stored routing.Strategy
	if err := json.Unmarshal(out, &stored); err != nil {
		return nil, err
	}
	return &stored, stored.Validate()
}

// ActivateStrategy makes a selection live; versions 0 resolve to the newest.
func (a *Admin) ActivateStrategy(ctx context.Context, principal string, sel *routing.Selection) (*routing.Selection, error) {
	doc, err := json.Marshal(sel)
	if err != nil {
		return nil, err
	}
	out, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_ActivateStrategy{ActivateStrategy: &gridpb.ActivateStrategyCommand{Selection: doc}}})
	if err != nil {
		return nil, err
	}
	var stored routing.Selection
	return &stored, json.Unmarshal(out, &stored)
}

// SeedWarehouses puts each warehouse the catalog does not have yet (the
// configuration's warehouses file): later changes are made by the API and
// a restart does not undo them.
func (a *Admin) SeedWarehouses(ctx context.Context, ws []*routing.Warehouse) (int, error) {
	if err := a.reload(); err != nil {
		return 0, err
	}
	added := 0
	for _, w := range ws {
		if _, ok := a.grid.Catalog().Warehouse(w.ID); ok {
			continue
		}
		if _, err := a.PutWarehouse(ctx, "system:config", w, 0); err != nil {
			return added, fmt.Errorf("warehouse %s: %w", w.ID, err)
		}
		added++
	}
	return added, nil
}

// KnowsWarehouse reports whether stock may be kept at warehouse id: while no
// warehouse is registered any may; after that only registered ones (the
// catalog is read again on the leader before saying no).
func (a *Admin) KnowsWarehouse(id string) (bool, error) {
	c := a.grid.Catalog()
	if _, ok := c.Warehouse(id); ok || len(c.Warehouses()) == 0 {
		return true, nil
	}
	if err := a.reload(); err != nil {
		return false, err
	}
	_, ok := a.grid.Catalog().Warehouse(id)
	return ok, nil
}

// OrderRouting reads an order's routing decision on its partition's leader.
func (a *Admin) OrderRouting(id string) (*gridpb.RoutingRecord, bool, error) {
	p := a.grid.PartitionOf(actors.OrderKey(id))
	return statemachine.ReadRouting(p.Reader(), p.Prefix(), id)
}

// LoggedOrdersMax bounds the orders one replay reads from the log.
const LoggedOrdersMax = routing.SimulationOrdersMax

// LoggedOrders returns the orders created in [from, to), oldest first, as
// routing inputs (what each was routed for), read on the partitions' leaders.
func (a *Admin) LoggedOrders(ctx context.Context, from, to time.Time) ([]*routing.Order, error) {
	var out []*routing.Order
	for _, p := range a.grid.Partitions() {
		err := statemachine.ScanOrders(p.Reader(), p.Prefix(), func(o *gridpb.OrderRecord) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if o.CreatedUnixNano < from.UnixNano() || o.CreatedUnixNano >= to.UnixNano() {
				return nil
			}
			if len(out) >= LoggedOrdersMax {
				return fmt.Errorf("more than %d orders between %s and %s: narrow the window", LoggedOrdersMax, from.Format(time.RFC3339), to.Format(time.RFC3339))
			}
			out = append(out, orderOfRecord(o))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b *routing.Order) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// orderOfRecord is the routing input an order was routed for.
func orderOfRecord(o *gridpb.OrderRecord) *routing.Order {
	r := &routing.Order{ID: o.Id, At: time.Unix(0, o.CreatedUnixNano), Region: o.Region, Tier: o.Tier, Capabilities: o.Capabilities}
	if o.PromiseUnixNano != 0 {
		r.Promise = time.Unix(0, o.PromiseUnixNano)
	}
	at := map[string]int{}
	for _, l := range o.Lines {
		if i, ok := at[l.Sku]; ok {
			r.Lines[i].Qty += l.Qty
			continue
		}
		at[l.Sku] = len(r.Lines)
		r.Lines = append(r.Lines, routing.Line{SKU: l.Sku, Qty: l.Qty})
	}
	return r
}

// CurrentFree returns a SKU's free stock per warehouse, read on its partition's leader.
func (a *Admin) CurrentFree(sku string) (map[string]int64, error) {
	p := a.grid.PartitionOf(actors.SkuKey(sku))
	names, free, err := statemachine.ReadFree(p.Reader(), p.Prefix(), sku)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(names))
	for i, wh := range names {
		out[wh] = free[i]
	}
	return out, nil
}

// Limits are the purchase limits as this node last read them.
func (a *Admin) Limits() *limits.Set { return a.grid.Limits() }

// PutLimit stores a purchase-limit rule as its next version (expected,
// when not 0, must be its version now), then puts it in the partition of
// every SKU it names (where reservations are judged by it) and takes it
// out of the SKUs earlier versions named and this one does not (the
// rule's retired SKUs, which the state machine keeps with it). Each SKU
// keeps the rule's revision (the Raft index of the change): a late or
// repeated copy of an older change is refused there, so the SKUs follow
// the catalog whatever the order the fan-outs land in. A refused rule is
// an error wrapping ErrRoutingInput. A SKU partition that fails leaves the
// change in the catalog and the SKUs before it done: PutLimit answers the
// error, and the rule's next change (putting it again) finishes it.
func (a *Admin) PutLimit(ctx context.Context, principal string, r *limits.Rule, expected uint64) (*limits.Rule, error) {
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_PutLimit{PutLimit: &gridpb.PutLimitCommand{Document: doc, ExpectedVersion: expected}}})
	if err != nil {
		return nil, err
	}
	stored, err := limits.Decode(out)
	if err != nil {
		return nil, err
	}
	rule := SkuLimitRule(stored)
	for _, sku := range stored.SKUs {
		if err := a.setSkuLimit(ctx, principal, &gridpb.SetSkuLimitCommand{Sku: sku, Rule: rule}); err != nil {
			return nil, err
		}
	}
	for _, sku := range stored.Retired {
		if err := a.setSkuLimit(ctx, principal, &gridpb.SetSkuLimitCommand{Sku: sku, Rule: rule, Delete: true}); err != nil {
			return nil, err
		}
	}
	return stored, nil
}

// DeleteLimit deletes a purchase-limit rule (expected as PutLimit's): the
// catalog keeps its tombstone, and the rule is taken out of every SKU it
// named. Deleting a deleted rule again finishes a fan-out that failed.
// The counters under it stay until their reservations are released.
func (a *Admin) DeleteLimit(ctx context.Context, principal, id string, expected uint64) error {
	out, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_DeleteLimit{DeleteLimit: &gridpb.DeleteLimitCommand{Id: id, ExpectedVersion: expected}}})
	if err != nil {
		return err
	}
	var tomb limits.Rule
	if err := json.Unmarshal(out, &tomb); err != nil {
		return fmt.Errorf("limit %s: its tombstone: %w", id, err)
	}
	rule := &gridpb.SkuLimitRule{Rule: id, Version: tomb.Revision}
	for _, sku := range tomb.Retired {
		if err := a.setSkuLimit(ctx, principal, &gridpb.SetSkuLimitCommand{Sku: sku, Rule: rule, Delete: true}); err != nil {
			return err
		}
	}
	return nil
}

// setSkuLimit proposes one rule change to a SKU's partition; a STALE
// answer (the SKU has a later version) is done already.
func (a *Admin) setSkuLimit(ctx context.Context, principal string, c *gridpb.SetSkuLimitCommand) error {
	res, err := a.grid.PartitionOf(actors.SkuKey(c.Sku)).Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_SetSkuLimit{SetSkuLimit: c}})
	if err != nil {
		return fmt.Errorf("limit %s on %s: %w", c.Rule.Rule, c.Sku, err)
	}
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK, gridpb.Outcome_OUTCOME_REPLAYED, gridpb.Outcome_OUTCOME_STALE:
		return nil
	case gridpb.Outcome_OUTCOME_UNSPECIFIED:
		return fmt.Errorf("%w: limit %s on %s: %s", ErrRoutingInput, c.Rule.Rule, c.Sku, res.Detail)
	default:
		return failure.FromOutcome(res.Outcome, res.Detail)
	}
}

// SkuLimitRule is a rule as a SKU's partition keeps it.
func SkuLimitRule(r *limits.Rule) *gridpb.SkuLimitRule {
	from, to := r.Window()
	out := &gridpb.SkuLimitRule{Rule: r.ID, Version: r.Revision, Per: r.Per, MaxQty: r.MaxQty, Hold: r.Action != limits.ActionRefuse,
		Channels: slices.Clone(r.Channels)}
	if !from.IsZero() {
		out.FromUnixNano = from.UnixNano()
	}
	if !to.IsZero() {
		out.ToUnixNano = to.UnixNano()
	}
	return out
}

// PutRiskModel makes a model file (package risk) the grid's risk model:
// every node scores new orders with it from its next catalog read (this
// one before PutRiskModel returns). A file that does not load is an error
// wrapping ErrRoutingInput, and the model before keeps serving. It
// answers the model's version.
func (a *Admin) PutRiskModel(ctx context.Context, principal string, doc []byte) (string, error) {
	if len(doc) == 0 {
		return "", fmt.Errorf("%w: model: empty", ErrRoutingInput)
	}
	out, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_PutRiskModel{PutRiskModel: &gridpb.PutRiskModelCommand{Document: doc}}})
	return string(out), err
}

// DeleteRiskModel removes the grid's risk model: every node scores with
// its configured one (holds.risk_model) again.
func (a *Admin) DeleteRiskModel(ctx context.Context, principal string) error {
	_, err := a.change(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_PutRiskModel{PutRiskModel: &gridpb.PutRiskModelCommand{}}})
	return err
}
