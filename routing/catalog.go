package routing

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Catalog is every warehouse and strategy version, and the selection, as of
// one generation of the replicated catalog. It is immutable: a change makes
// a new Catalog, so a decision reads one without locks.
type Catalog struct {
	// Generation is the Raft index of the change the catalog is as of.
	Generation uint64

	warehouses []*site // sorted by id
	byID       map[string]*site
	strategies map[string][]*Strategy // per name, version v at [v-1]
	selection  *Selection             // nil: the default strategy routes
	builtIn    *Strategy              // default@1, compiled once
}

// site is a warehouse compiled for decisions.
type site struct {
	*Warehouse
	loc       *time.Location
	cutoffMin int // -1: ships at once
	rates     map[string]rateMinor
	anyRate   *rateMinor
	implicit  bool // not registered: known only from stock records
}

type rateMinor struct {
	cost        int64
	transitDays int
}

func compile(w *Warehouse) (*site, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("warehouse %s: %w", w.ID, err)
	}
	s := &site{Warehouse: w, cutoffMin: -1, rates: make(map[string]rateMinor, len(w.Rates))}
	s.loc, _ = time.LoadLocation(w.Timezone)
	if w.Cutoff != "" {
		s.cutoffMin, _ = parseCutoff(w.Cutoff)
	}
	for _, r := range w.Rates {
		c, _ := ParseMoney(r.Cost)
		rm := rateMinor{cost: c, transitDays: r.TransitDays}
		if r.Region == "*" {
			s.anyRate = &rm
			continue
		}
		s.rates[r.Region] = rm
	}
	return s, nil
}

// implicitSite is a warehouse that holds stock but was never registered,
// used while no warehouse is registered at all: up, no limits, free, at once.
func implicitSite(id string) *site {
	return &site{Warehouse: &Warehouse{ID: id, State: StateUp, Timezone: "UTC"}, loc: time.UTC, cutoffMin: -1,
		anyRate: &rateMinor{}, implicit: true}
}

// NewCatalog compiles a catalog. Strategies are given with their versions
// set; a selection naming a version that is not there is refused.
func NewCatalog(generation uint64, warehouses []*Warehouse, strategies []*Strategy, sel *Selection) (*Catalog, error) {
	if len(warehouses) > WarehousesMax {
		return nil, fmt.Errorf("routing: %d warehouses, at most %d", len(warehouses), WarehousesMax)
	}
	c := &Catalog{Generation: generation, byID: make(map[string]*site, len(warehouses)), strategies: map[string][]*Strategy{},
		builtIn: DefaultStrategy()}
	c.builtIn.Version = 1
	for _, w := range warehouses {
		s, err := compile(w)
		if err != nil {
			return nil, err
		}
		if _, dup := c.byID[w.ID]; dup {
			return nil, fmt.Errorf("routing: warehouse %s twice", w.ID)
		}
		c.byID[w.ID] = s
		c.warehouses = append(c.warehouses, s)
	}
	sort.Slice(c.warehouses, func(i, j int) bool { return c.warehouses[i].ID < c.warehouses[j].ID })
	byName := map[string][]*Strategy{}
	for _, s := range strategies {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("strategy %s@%d: %w", s.Name, s.Version, err)
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	for name, vs := range byName {
		sort.Slice(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
		for i, s := range vs {
			if s.Version != uint64(i+1) {
				return nil, fmt.Errorf("routing: strategy %s: version %d where %d belongs", name, s.Version, i+1)
			}
		}
		c.strategies[name] = vs
	}
	if sel != nil {
		if _, ok := c.Strategy(sel.Strategy, sel.Version); !ok || sel.Version == 0 {
			return nil, fmt.Errorf("routing: selection names %s@%d, which does not exist", sel.Strategy, sel.Version)
		}
		if a := sel.Candidate; a != nil {
			if _, ok := c.Strategy(a.Strategy, a.Version); !ok || a.Version == 0 {
				return nil, fmt.Errorf("routing: selection's candidate names %s@%d, which does not exist", a.Strategy, a.Version)
			}
		}
		c.selection = sel
	}
	return c, nil
}

// Warehouses returns the registered warehouses, by id.
func (c *Catalog) Warehouses() []*Warehouse {
	out := make([]*Warehouse, len(c.warehouses))
	for i, s := range c.warehouses {
		out[i] = s.Warehouse
	}
	return out
}

// Warehouse returns one registered warehouse.
func (c *Catalog) Warehouse(id string) (*Warehouse, bool) {
	s, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	return s.Warehouse, true
}

// Strategy returns a strategy version; version 0 is the newest.
func (c *Catalog) Strategy(name string, version uint64) (*Strategy, bool) {
	vs := c.strategies[name]
	if len(vs) == 0 {
		if name == StrategyNameDefault && version <= 1 {
			return c.builtIn, true
		}
		return nil, false
	}
	if version == 0 {
		return vs[len(vs)-1], true
	}
	if version > uint64(len(vs)) {
		return nil, false
	}
	return vs[version-1], true
}

// StrategyVersions returns every version of one strategy, oldest first.
func (c *Catalog) StrategyVersions(name string) []*Strategy { return slices.Clone(c.strategies[name]) }

// StrategyNames returns the names of the stored strategies, sorted.
func (c *Catalog) StrategyNames() []string {
	out := make([]string, 0, len(c.strategies))
	for n := range c.strategies {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Selection returns the active selection; nil while the default strategy routes.
func (c *Catalog) Selection() *Selection { return c.selection }

// Arms of an A/B split.
const (
	ArmActive    = "active"
	ArmCandidate = "candidate"
)

// StrategyFor returns the strategy that routes the order with this id, and its arm.
func (c *Catalog) StrategyFor(orderID string) (*Strategy, string) {
	if c.selection == nil {
		s, _ := c.Strategy(StrategyNameDefault, 1)
		return s, ArmActive
	}
	if c.selection.Arm(orderID) {
		s, _ := c.Strategy(c.selection.Candidate.Strategy, c.selection.Candidate.Version)
		return s, ArmCandidate
	}
	s, _ := c.Strategy(c.selection.Strategy, c.selection.Version)
	return s, ArmActive
}

// ShipTime returns when a parcel routed at `at` leaves warehouse w (its next
// cut-off, or at once) and that day as yyyymmdd in w's zone.
func (s *site) shipTime(at time.Time) (time.Time, int32) {
	local := at.In(s.loc)
	ship := local
	if s.cutoffMin >= 0 {
		y, m, d := local.Date()
		cut := time.Date(y, m, d, s.cutoffMin/60, s.cutoffMin%60, 0, 0, s.loc)
		if !local.Before(cut) {
			cut = time.Date(y, m, d+1, s.cutoffMin/60, s.cutoffMin%60, 0, 0, s.loc)
		}
		ship = cut
	}
	y, m, d := ship.Date()
	return ship, int32(y*10000 + int(m)*100 + d)
}

// rate returns the rate to region, or false when w does not ship there.
func (s *site) rate(region string) (rateMinor, bool) {
	if r, ok := s.rates[region]; ok && region != "" {
		return r, true
	}
	if s.anyRate != nil {
		return *s.anyRate, true
	}
	return rateMinor{}, false
}

// DayOf returns the day (yyyymmdd) of t in warehouse id's zone, UTC for a
// warehouse the catalog does not know.
func (c *Catalog) DayOf(id string, t time.Time) int32 {
	loc := time.UTC
	if s, ok := c.byID[id]; ok {
		loc = s.loc
	}
	y, m, d := t.In(loc).Date()
	return int32(y*10000 + int(m)*100 + d)
}
