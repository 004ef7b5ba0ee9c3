package actors

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/limits"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Routing on a node: the catalog (warehouses, strategies, selection) is
// read from the local replica of its partition and cached; a change made
// through this node takes effect for its next order (package catalog
// reloads the cache from the partition's leader, KeepCatalog, before the
// change is acknowledged), a change made elsewhere within
// catalogPollInterval. Loads (parcels per ship day
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
	// limits are the purchase limits, read with the catalog (one generation).
	limits atomic.Pointer[limits.Set]

	mu    sync.Mutex
	loads map[int32]map[string]int64 // ship day -> warehouse -> parcels, from the partitions
	// configuredModel is the screener's risk model at start; modelSum the
	// SHA-256 of the stored model file the screener has (of nothing: none stored).
	configuredModel *risk.Model
	modelSum        [32]byte
	added           map[int32]map[string]int64 // parcels this node recorded since the last refresh
}

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

// KeepCatalog makes c this node's routing catalog unless the node's is as
// new (package catalog, after a change or a read on the leader).
func (n *Node) KeepCatalog(c *routing.Catalog) {
	for {
		old := n.routes.catalog.Load()
		if old != nil && old.Generation >= c.Generation {
			return
		}
		if n.routes.catalog.CompareAndSwap(old, c) {
			return
		}
	}
}

// loadCatalog reads the catalog and the purchase limits from the local
// replica and keeps them unless the cache is newer.
func (n *Node) loadCatalog() error {
	r := cluster.LocalReader{R: n.host.DB()}
	c, err := statemachine.ReadCatalog(r, n.catalogPartition().Prefix)
	if err != nil {
		return err
	}
	l, err := statemachine.ReadLimits(r, n.catalogPartition().Prefix)
	if err != nil {
		return err
	}
	n.KeepLimits(l)
	n.KeepCatalog(c)
	return n.LoadRiskModel(r)
}

// LoadRiskModel makes the grid's risk model (put through the catalog's
// partition) the screener's, or, when none is put, the configured one. A
// stored model that does not load (it was valid when put) leaves the one
// serving in place.
func (n *Node) LoadRiskModel(r statemachine.Reader) error {
	sc := n.opts.Screen
	if sc == nil {
		return nil
	}
	doc, found, err := statemachine.ReadRiskModel(r, n.catalogPartition().Prefix)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	n.routes.mu.Lock()
	defer n.routes.mu.Unlock()
	if n.routes.modelSum == sum {
		return nil
	}
	if !found {
		sc.SetModel(n.routes.configuredModel)
		n.routes.modelSum = sum
		return nil
	}
	m, err := risk.Parse(doc)
	if err != nil {
		return fmt.Errorf("the grid's risk model: %w", err)
	}
	sc.SetModel(m)
	n.routes.modelSum = sum
	n.opts.Logger.Info("risk model", slog.String("version", m.Version()))
	return nil
}

// Limits returns the purchase limits as this node last read them.
func (n *Node) Limits() *limits.Set { return n.routes.limits.Load() }

// KeepLimits makes l this node's purchase limits unless the node's are as
// new (package catalog, after a change or a read on the leader).
func (n *Node) KeepLimits(l *limits.Set) {
	for {
		old := n.routes.limits.Load()
		if old != nil && old.Generation >= l.Generation {
			return
		}
		if n.routes.limits.CompareAndSwap(old, l) {
			return
		}
	}
}

// routingLoop keeps the catalog and the loads fresh until the node stops.
func (n *Node) routingLoop() {
	defer n.swept.Done()
	log := n.opts.Logger.With(slog.String("component", "routing"))
	if err := n.loadCatalog(); err != nil {
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
		if err == nil && (gen > n.Catalog().Generation || n.Limits() == nil || gen > n.Limits().Generation) {
			err = n.loadCatalog()
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
func (n *Node) counted(shipments []*gridpb.ShipmentRecord) {
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
			st, err := inv.n.skuClient(skus[i].sku).GetStock(&gridpb.SkuQuery{Sku: skus[i].sku}, inv.n.callOptions()...)
			if failure.OutcomeOf(err) == gridpb.Outcome_OUTCOME_NOT_FOUND {
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

// Loads returns the parcels routed per warehouse for a ship day, as this node sees them.
func (n *Node) Loads(wh string, day int32) int64 { return n.load(wh, day) }

// pressure is how much of the free stock of the hottest of skus the
// order takes (the risk feature sku_pressure, for an order routed alone).
func (inv *orderInventory) pressure(skus []skuQty) float64 {
	var p float64
	for _, s := range skus {
		_, free, err := inv.Free(s.sku)
		if err != nil {
			continue
		}
		var total int64
		for _, f := range free {
			total += f
		}
		p = max(p, float64(s.qty)/float64(max(total, 1)))
	}
	return p
}
