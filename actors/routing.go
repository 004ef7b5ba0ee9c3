package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/failure"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Routing on a node: the catalog (warehouses, strategies, selection) is
// read from the local replica of its partition and cached; a change made
// through this node takes effect for its next order (the cache is reloaded
// from the partition's leader before the change is acknowledged), a change
// made elsewhere within catalogPollInterval. Loads (parcels per ship day
// and warehouse) are summed over the local replicas of every partition
// every loadRefreshInterval, plus what this node routed since.

const (
	catalogPollInterval = 100 * time.Millisecond
	loadRefreshInterval = 250 * time.Millisecond
	// loadDaysMax bounds the ship days a node keeps loads of.
	loadDaysMax = 16
	// routeAttemptsMax bounds the routing rounds of one order: a
	// reservation that finds the routed warehouse short routes again with
	// fresher stock.
	routeAttemptsMax = 3
)

// routingState is a node's routing cache.
type routingState struct {
	catalog atomic.Pointer[routing.Catalog]

	mu    sync.Mutex
	loads map[int32]map[string]int64 // ship day -> warehouse -> parcels, from the partitions
	added map[int32]map[string]int64 // parcels this node recorded since the last refresh
}

// ErrRoutingInput is a catalog document or selection that is wrong; it
// wraps routing.Errors or a routing.FieldError.
var ErrRoutingInput = errors.New("routing input refused")

func (n *Node) catalogPartition() *cluster.Partition {
	return n.host.PartitionOf(statemachine.CatalogKey)
}

// Catalog returns the routing catalog as this node last read it.
func (n *Node) Catalog() *routing.Catalog {
	if c := n.routes.catalog.Load(); c != nil {
		return c
	}
	c, _ := routing.NewCatalog(0, nil, nil, nil)
	return c
}

// FreshCatalog is the routing catalog as its partition's leader has it
// (read there and kept as this node's cache): for a change that reads the
// catalog first, on a node whose replica may be behind (just restarted, or
// the change before it was made through another node).
func (n *Node) FreshCatalog() (*routing.Catalog, error) {
	if err := n.loadCatalog(true); err != nil {
		return nil, err
	}
	return n.Catalog(), nil
}

// loadCatalog reads the catalog, on the leader when fromLeader, else from
// the local replica, and keeps it unless the cache is newer.
func (n *Node) loadCatalog(fromLeader bool) error {
	p := n.catalogPartition()
	var r statemachine.Reader = cluster.LocalReader{R: n.host.DB()}
	if fromLeader {
		r = n.reader(p)
	}
	c, err := statemachine.ReadCatalog(r, p.Prefix)
	if err != nil {
		return err
	}
	for {
		old := n.routes.catalog.Load()
		if old != nil && old.Generation >= c.Generation {
			return nil
		}
		if n.routes.catalog.CompareAndSwap(old, c) {
			return nil
		}
	}
}

// routingLoop keeps the catalog and the loads fresh until the node stops.
func (n *Node) routingLoop() {
	defer n.swept.Done()
	log := n.opts.Logger.With(slog.String("component", "routing"))
	if err := n.loadCatalog(false); err != nil {
		log.Warn("reading the routing catalog", slog.Any("error", err))
	}
	poll := time.NewTicker(catalogPollInterval)
	defer poll.Stop()
	lastLoads := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case <-poll.C:
		}
		p := n.catalogPartition()
		gen, err := statemachine.ReadCatalogGeneration(cluster.LocalReader{R: n.host.DB()}, p.Prefix)
		if err == nil && gen > n.Catalog().Generation {
			err = n.loadCatalog(false)
		}
		if err != nil {
			log.Warn("reading the routing catalog", slog.Any("error", err))
		}
		if time.Since(lastLoads) >= loadRefreshInterval {
			n.refreshLoads()
			lastLoads = time.Now()
		}
	}
}

// readLoads sums one ship day's parcels over the local replicas.
func (n *Node) readLoads(day int32) map[string]int64 {
	out := map[string]int64{}
	for _, p := range n.host.Partitions() {
		if err := statemachine.ReadLoads(cluster.LocalReader{R: n.host.DB()}, p.Prefix, day, out); err != nil {
			n.opts.Logger.Warn("reading loads", slog.Any("error", err))
		}
	}
	return out
}

func (n *Node) refreshLoads() {
	rs := &n.routes
	rs.mu.Lock()
	days := make([]int32, 0, len(rs.loads))
	for d := range rs.loads {
		days = append(days, d)
	}
	rs.mu.Unlock()
	slices.Sort(days)
	if len(days) > loadDaysMax {
		days = days[len(days)-loadDaysMax:]
	}
	fresh := make(map[int32]map[string]int64, len(days))
	for _, d := range days {
		fresh[d] = n.readLoads(d)
	}
	rs.mu.Lock()
	rs.loads = fresh
	rs.added = map[int32]map[string]int64{}
	rs.mu.Unlock()
}

// load returns the parcels routed to a warehouse for a ship day.
func (n *Node) load(wh string, day int32) int64 {
	rs := &n.routes
	rs.mu.Lock()
	v, ok := rs.loads[day]
	rs.mu.Unlock()
	if !ok {
		v = n.readLoads(day)
		rs.mu.Lock()
		if rs.loads == nil {
			rs.loads = map[int32]map[string]int64{}
		}
		rs.loads[day] = v
		rs.mu.Unlock()
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return v[wh] + rs.added[day][wh]
}

// counted adds an order's parcels to this node's loads until the next refresh.
func (n *Node) counted(shipments []*pb.ShipmentRecord) {
	rs := &n.routes
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.added == nil {
		rs.added = map[int32]map[string]int64{}
	}
	for _, s := range shipments {
		if rs.added[s.ShipDay] == nil {
			rs.added[s.ShipDay] = map[string]int64{}
		}
		rs.added[s.ShipDay][s.Warehouse]++
	}
}

// orderInventory is what one order's routing reads: free stock from the
// local replicas, overridden per SKU by fresher views (the SKU grains'
// answers) and by the order's own reservations.
type orderInventory struct {
	n        *Node
	override map[string]map[string]int64 // sku -> warehouse -> free
}

func (inv *orderInventory) Free(sku string) ([]string, []int64, error) {
	if by, ok := inv.override[sku]; ok {
		names, free := routing.SortedFree(by)
		return names, free, nil
	}
	p := inv.n.skuPartition(sku)
	return statemachine.ReadFree(cluster.LocalReader{R: inv.n.host.DB()}, p.Prefix, sku)
}

func (inv *orderInventory) Load(wh string, day int32) int64 { return inv.n.load(wh, day) }

// set replaces sku's free stock with a fresher view.
func (inv *orderInventory) set(sku string, free map[string]int64) {
	if inv.override == nil {
		inv.override = map[string]map[string]int64{}
	}
	inv.override[sku] = free
}

// view returns sku's current view as a map, to adjust.
func (inv *orderInventory) view(sku string) (map[string]int64, error) {
	names, free, err := inv.Free(sku)
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(names))
	for i, n := range names {
		m[n] = free[i]
	}
	return m, nil
}

// authoritative replaces the view of every SKU with its grain's (read on
// the SKU partition's leader), for a decision about to refuse the order
// on what may be a replica behind.
func (inv *orderInventory) authoritative(skus []skuQty) error {
	views := make([]map[string]int64, len(skus))
	errs := make([]error, len(skus))
	fanOut(len(skus), linesFanOutMax, func(i int) {
		errs[i] = retrySku(func() error {
			st, err := inv.n.SkuClient(skus[i].sku).GetStock(&pb.SkuQuery{Sku: skus[i].sku}, inv.n.CallOptions()...)
			if failure.OutcomeOf(err) == pb.Outcome_OUTCOME_NOT_FOUND {
				views[i] = map[string]int64{}
				return nil
			}
			if err != nil {
				return err
			}
			views[i] = make(map[string]int64, len(st.Warehouses))
			for _, w := range st.Warehouses {
				views[i][w.Warehouse] = w.Available
			}
			return nil
		})
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, s := range skus {
		if _, pinned := inv.override[s.sku]; !pinned {
			inv.set(s.sku, views[i])
		}
	}
	return nil
}

// routingOrder is the routing input of an order request.
func routingOrder(id string, req *pb.CreateOrderRequest, skus []skuQty, at time.Time) *routing.Order {
	o := &routing.Order{ID: id, At: at, Region: req.DeliveryRegion, Tier: req.CustomerTier,
		Capabilities: slices.Sorted(slices.Values(req.RequiredCapabilities))}
	if req.PromisedBy != "" {
		o.Promise, _ = time.Parse(time.RFC3339, req.PromisedBy) // validated by the gateway
	}
	for _, s := range skus {
		o.Lines = append(o.Lines, routing.Line{SKU: s.sku, Qty: s.qty})
	}
	return o
}

// ---- the catalog API ----

// changeCatalog proposes one catalog change and reloads the cache from the
// leader before it returns, so this node's next order sees it.
func (n *Node) changeCatalog(ctx context.Context, principal string, cmd *pb.Command) ([]byte, error) {
	res, err := n.propose(ctx, n.catalogPartition(), principal, cmd)
	if err != nil {
		return nil, err
	}
	switch res.Outcome {
	case pb.Outcome_OUTCOME_OK:
	case pb.Outcome_OUTCOME_UNSPECIFIED:
		return nil, fmt.Errorf("%w: %s", ErrRoutingInput, res.Detail)
	default:
		return nil, outcomeErr(res.Outcome, res.Detail)
	}
	if err := n.loadCatalog(true); err != nil {
		n.opts.Logger.Warn("reloading the routing catalog", slog.Any("error", err))
	}
	return res.Document, nil
}

// PutWarehouse creates or replaces a warehouse (expected 0: any version).
func (n *Node) PutWarehouse(ctx context.Context, principal string, w *routing.Warehouse, expected uint64) (*routing.Warehouse, error) {
	doc, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	out, err := n.changeCatalog(ctx, principal, &pb.Command{Kind: &pb.Command_PutWarehouse{PutWarehouse: &pb.PutWarehouseCommand{Document: doc, ExpectedVersion: expected}}})
	if err != nil {
		return nil, err
	}
	var stored routing.Warehouse
	return &stored, json.Unmarshal(out, &stored)
}

// PutStrategy stores a strategy as its next version.
func (n *Node) PutStrategy(ctx context.Context, principal string, s *routing.Strategy) (*routing.Strategy, error) {
	doc, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	out, err := n.changeCatalog(ctx, principal, &pb.Command{Kind: &pb.Command_PutStrategy{PutStrategy: &pb.PutStrategyCommand{Document: doc}}})
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
func (n *Node) ActivateStrategy(ctx context.Context, principal string, sel *routing.Selection) (*routing.Selection, error) {
	doc, err := json.Marshal(sel)
	if err != nil {
		return nil, err
	}
	out, err := n.changeCatalog(ctx, principal, &pb.Command{Kind: &pb.Command_ActivateStrategy{ActivateStrategy: &pb.ActivateStrategyCommand{Selection: doc}}})
	if err != nil {
		return nil, err
	}
	var stored routing.Selection
	return &stored, json.Unmarshal(out, &stored)
}

// SeedWarehouses puts each warehouse the catalog does not have yet (the
// configuration's warehouses file): later changes are made by the API and
// a restart does not undo them.
func (n *Node) SeedWarehouses(ctx context.Context, ws []*routing.Warehouse) (int, error) {
	if err := n.loadCatalog(true); err != nil {
		return 0, err
	}
	added := 0
	for _, w := range ws {
		if _, ok := n.Catalog().Warehouse(w.ID); ok {
			continue
		}
		if _, err := n.PutWarehouse(ctx, "system:config", w, 0); err != nil {
			return added, fmt.Errorf("warehouse %s: %w", w.ID, err)
		}
		added++
	}
	return added, nil
}

// OrderRouting reads an order's routing decision.
func (n *Node) OrderRouting(id string) (*pb.RoutingRecord, bool, error) {
	p := n.orderPartition(id)
	return statemachine.ReadRouting(n.reader(p), p.Prefix, id)
}

// Loads returns the parcels routed per warehouse for a ship day, as this node sees them.
func (n *Node) Loads(wh string, day int32) int64 { return n.load(wh, day) }

// LoggedOrdersMax bounds the orders one replay reads from the log.
const LoggedOrdersMax = routing.SimulationOrdersMax

// LoggedOrders returns the orders created in [from, to), oldest first, as
// routing inputs (what each was routed for), read on the partitions' leaders.
func (n *Node) LoggedOrders(ctx context.Context, from, to time.Time) ([]*routing.Order, error) {
	var out []*routing.Order
	for _, p := range n.host.Partitions() {
		err := statemachine.ScanOrders(n.reader(p), p.Prefix, func(o *pb.OrderRecord) error {
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

func orderOfRecord(o *pb.OrderRecord) *routing.Order {
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
func (n *Node) CurrentFree(sku string) (map[string]int64, error) {
	p := n.skuPartition(sku)
	names, free, err := statemachine.ReadFree(n.reader(p), p.Prefix, sku)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(names))
	for i, wh := range names {
		out[wh] = free[i]
	}
	return out, nil
}

// KnowsWarehouse reports whether stock may be kept at warehouse id: while no
// warehouse is registered any may; after that only registered ones (the
// catalog is read again on the leader before saying no).
func (n *Node) KnowsWarehouse(id string) (bool, error) {
	c := n.Catalog()
	if _, ok := c.Warehouse(id); ok || len(c.Warehouses()) == 0 {
		return true, nil
	}
	if err := n.loadCatalog(true); err != nil {
		return false, err
	}
	_, ok := n.Catalog().Warehouse(id)
	return ok, nil
}
