package routing

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Limits of one decision.
const (
	// PlansMax bounds the split plans one decision enumerates.
	PlansMax = 4096
	// RecordCandidatesMax bounds the plans a record keeps.
	RecordCandidatesMax = 16
	// RecordExclusionsMax bounds the exclusions a record keeps (the rest
	// are counted in one last entry).
	RecordExclusionsMax = 100
	// splitLinesMax: orders with more lines are routed to one warehouse or not at all.
	splitLinesMax = 64
)

// Line is one SKU of an order and its total quantity.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// Order is what a decision routes.
type Order struct {
	ID           string
	At           time.Time
	Region       string
	Tier         string
	Promise      time.Time // zero: none
	Capabilities []string
	Lines        []Line // one per SKU
}

// Inventory is what a decision reads besides the catalog.
type Inventory interface {
	// Free returns sku's free stock (on hand less pending and committed)
	// per warehouse, names sorted ascending.
	Free(sku string) (names []string, free []int64, err error)
	// Load returns the parcels already routed to warehouse for a ship day (yyyymmdd).
	Load(warehouse string, day int32) int64
}

// Decision is the route of one order.
type Decision struct {
	// Warehouses has the warehouse of each line of the order; nil when refused.
	Warehouses []string
	Shipments  []*gridpb.ShipmentRecord
	Record     *gridpb.RoutingRecord
	Refusal    *Refusal
}

// Refusal says why no plan exists.
type Refusal struct {
	// Stock is true when a line's SKU is not free in that quantity at any
	// warehouse at all: the order is out of stock, not unroutable.
	Stock  bool
	SKU    string
	Detail string
}

// Exclusion constraints.
const (
	ExcludedDown         = "down"
	ExcludedCapability   = "capability"
	ExcludedRegion       = "region"
	ExcludedCapacity     = "capacity"
	ExcludedStock        = "stock"
	ExcludedDegraded     = "degraded"
	ExcludedUnregistered = "unregistered"
	excludedMore         = "more"
)

// option is one warehouse during a decision.
type option struct {
	s        *site
	free     []int64 // per line
	excluded string
	detail   string
	ship     time.Time
	day      int32
	eta      time.Time
	rate     rateMinor
	load     int64
	serves   uint64 // lines it can serve alone, when len(lines) <= splitLinesMax
	all      bool   // serves every line alone
	inPlan   bool
}

// plan is one candidate: shipments from some options, a shipment per line.
type plan struct {
	opts   []*option
	lineTo []uint32 // per line: index into opts
	raw    [CriteriaCount]float64
	norm   [CriteriaCount]float64
	score  float64
	eta    time.Time
	cost   int64
}

// Decide routes o by strategy s. The catalog's registered warehouses are the
// candidates; while none is registered, every warehouse holding stock of
// the order's SKUs is one (up, no limits, no cost).
func Decide(c *Catalog, s *Strategy, arm string, o *Order, inv Inventory) (*Decision, error) {
	if len(o.Lines) == 0 {
		return nil, fmt.Errorf("routing: order %s has no lines", o.ID)
	}
	opts, unregistered, err := gather(c, o, inv)
	if err != nil {
		return nil, err
	}
	rec := &gridpb.RoutingRecord{Strategy: s.Name, Version: s.Version, Arm: arm, DecidedUnixNano: o.At.UnixNano(), Attempts: 1}
	for _, l := range o.Lines {
		rec.LineSkus = append(rec.LineSkus, l.SKU)
		rec.LineQtys = append(rec.LineQtys, l.Qty)
	}
	for _, op := range opts {
		judge(op, o, inv)
	}
	plans, truncated := enumerate(opts, o, s, false)
	if len(plans) == 0 {
		if plans, truncated = enumerate(opts, o, s, true); len(plans) > 0 {
			rec.DegradedFallback = true
		}
	}
	rec.PlansConsidered, rec.PlansTruncated = uint32(len(plans)), truncated
	d := &Decision{Record: rec}
	if len(plans) == 0 {
		d.Refusal = refusal(opts, o, s)
		rec.Excluded = exclusions(opts, o, unregistered, nil, rec.DegradedFallback)
		return d, nil
	}
	score(plans, o, s)
	win := 0
	if r, ok := s.rules[o.Tier]; ok {
		win = applyRule(plans, r)
		capText := "no cost cap"
		if r.costCap >= 0 {
			capText = "cost cap " + FormatMoney(r.costCap)
		}
		rec.Rule = fmt.Sprintf("%s for tier %s (%s)", r.rule, o.Tier, capText)
	} else if len(plans) > 1 {
		rec.Flip = flip(plans, s)
	}
	w := plans[win]
	order := make([]*plan, 0, len(plans))
	order = append(order, w)
	for i, p := range plans {
		if i != win {
			order = append(order, p)
		}
	}
	for i := 0; i < int(CriteriaCount); i++ {
		lo, hi := rangeOf(plans, Criterion(i))
		rec.RangeMin = append(rec.RangeMin, lo)
		rec.RangeMax = append(rec.RangeMax, hi)
	}
	kept := order[:min(len(order), RecordCandidatesMax)]
	cands := make([]gridpb.RoutingCandidate, len(kept))
	rec.Candidates = make([]*gridpb.RoutingCandidate, len(kept))
	for i, p := range kept {
		rc := &cands[i]
		rc.LineShipment, rc.Raw, rc.Score, rc.EtaUnixNano = p.lineTo, p.raw[:], p.score, p.eta.UnixNano()
		rc.Warehouses = make([]string, len(p.opts))
		rc.ShipDays = make([]int32, len(p.opts))
		for k, op := range p.opts {
			rc.Warehouses[k], rc.ShipDays[k] = op.s.ID, op.day
		}
		rec.Candidates[i] = rc
	}
	rec.Excluded = exclusions(opts, o, unregistered, plans, rec.DegradedFallback)
	d.Warehouses = make([]string, len(o.Lines))
	for i, to := range w.lineTo {
		d.Warehouses[i] = w.opts[to].s.ID
	}
	for _, op := range w.opts {
		d.Shipments = append(d.Shipments, &gridpb.ShipmentRecord{Warehouse: op.s.ID, ShipDay: op.day})
	}
	return d, nil
}

// gather makes one option per candidate warehouse with its free stock per
// line, and lists the unregistered warehouses that hold stock.
func gather(c *Catalog, o *Order, inv Inventory) ([]*option, []string, error) {
	var opts []*option
	byID := map[string]*option{}
	if len(c.warehouses) > 0 {
		opts = make([]*option, len(c.warehouses))
		backing := make([]option, len(c.warehouses))
		free := make([]int64, len(c.warehouses)*len(o.Lines))
		for i, s := range c.warehouses {
			backing[i] = option{s: s, free: free[i*len(o.Lines) : (i+1)*len(o.Lines) : (i+1)*len(o.Lines)]}
			opts[i] = &backing[i]
		}
	}
	var unregistered []string
	for li, l := range o.Lines {
		names, free, err := inv.Free(l.SKU)
		if err != nil {
			return nil, nil, fmt.Errorf("routing: stock of %s: %w", l.SKU, err)
		}
		if len(c.warehouses) == 0 {
			for i, n := range names {
				op := byID[n]
				if op == nil {
					op = &option{s: implicitSite(n), free: make([]int64, len(o.Lines))}
					byID[n] = op
					opts = append(opts, op)
				}
				op.free[li] = free[i]
			}
			continue
		}
		// Both sorted: one merge.
		j := 0
		for i, n := range names {
			for j < len(opts) && opts[j].s.ID < n {
				j++
			}
			if j < len(opts) && opts[j].s.ID == n {
				opts[j].free[li] = free[i]
			} else if free[i] > 0 && !slices.Contains(unregistered, n) {
				unregistered = append(unregistered, n)
			}
		}
	}
	if len(c.warehouses) == 0 {
		sort.Slice(opts, func(i, j int) bool { return opts[i].s.ID < opts[j].s.ID })
	}
	slices.Sort(unregistered)
	return opts, unregistered, nil
}

// judge applies the hard constraints that do not depend on the plan.
func judge(op *option, o *Order, inv Inventory) {
	s := op.s
	if s.State == StateDown {
		op.excluded, op.detail = ExcludedDown, "down"
		if s.StateReason != "" {
			op.detail += ": " + s.StateReason
		}
		return
	}
	for _, need := range o.Capabilities {
		if _, ok := slices.BinarySearch(s.Capabilities, need); !ok {
			op.excluded, op.detail = ExcludedCapability, "lacks "+need
			return
		}
	}
	r, ok := s.rate(o.Region)
	if !ok {
		op.excluded, op.detail = ExcludedRegion, fmt.Sprintf("no rate to region %q", o.Region)
		return
	}
	op.rate = r
	op.ship, op.day = s.shipTime(o.At)
	op.eta = op.ship.Add(time.Duration(r.transitDays) * 24 * time.Hour)
	op.load = inv.Load(s.ID, op.day)
	if s.CapacityPerDay > 0 && op.load >= s.CapacityPerDay {
		op.excluded, op.detail = ExcludedCapacity, fmt.Sprintf("%d of %d parcels routed for %d", op.load, s.CapacityPerDay, op.day)
		return
	}
	op.all = true
	for li, l := range o.Lines {
		if op.free[li] >= l.Qty {
			if li < splitLinesMax {
				op.serves |= 1 << li
			}
		} else {
			op.all = false
		}
	}
}

// enumerate returns the plans over the options that pass the constraints:
// one per warehouse that serves every line if any does, else split plans of
// up to s.MaxShipments warehouses. withDegraded admits degraded warehouses.
func enumerate(opts []*option, o *Order, s *Strategy, withDegraded bool) ([]*plan, bool) {
	var pool []*option
	for _, op := range opts {
		if op.excluded != "" || (op.s.State == StateDegraded && !withDegraded) {
			continue
		}
		pool = append(pool, op)
	}
	var plans []*plan
	singles := 0
	for _, op := range pool {
		if op.all {
			singles++
		}
	}
	if singles > 0 {
		// One allocation for every one-warehouse plan; they share lineTo
		// (every line to shipment 0) and never change it.
		backing := make([]plan, singles)
		optsBacking := make([]*option, singles)
		lineTo := make([]uint32, len(o.Lines))
		plans = make([]*plan, 0, singles)
		for _, op := range pool {
			if op.all {
				i := len(plans)
				optsBacking[i] = op
				p := &backing[i]
				p.opts, p.lineTo = optsBacking[i:i+1:i+1], lineTo
				plans = append(plans, p)
			}
		}
	}
	if len(plans) > 0 || s.MaxShipments < 2 || len(o.Lines) > splitLinesMax || len(o.Lines) < 2 {
		return plans, false
	}
	var partial []*option
	for _, op := range pool {
		if op.serves != 0 {
			partial = append(partial, op)
		}
	}
	full := uint64(1)<<len(o.Lines) - 1
	truncated := false
	combo := make([]int, 0, s.MaxShipments)
	var walk func(start int, covered uint64) bool
	walk = func(start int, covered uint64) bool {
		if len(combo) >= 2 && covered == full {
			if p := assign(partial, combo, o); p != nil {
				if len(plans) >= PlansMax {
					truncated = true
					return false
				}
				plans = append(plans, p)
			}
		}
		if len(combo) == s.MaxShipments {
			return true
		}
		for i := start; i < len(partial); i++ {
			combo = append(combo, i)
			ok := walk(i+1, covered|partial[i].serves)
			combo = combo[:len(combo)-1]
			if !ok {
				return false
			}
		}
		return true
	}
	walk(0, 0)
	return plans, truncated
}

// assign gives each line the warehouse of the combination with the most
// free stock of it; nil when a warehouse of the combination gets no line
// (a smaller combination is that plan).
func assign(partial []*option, combo []int, o *Order) *plan {
	p := &plan{opts: make([]*option, len(combo)), lineTo: make([]uint32, len(o.Lines))}
	used := make([]bool, len(combo))
	for k, i := range combo {
		p.opts[k] = partial[i]
	}
	for li := range o.Lines {
		best := -1
		for k, op := range p.opts {
			if op.serves&(1<<li) != 0 && (best < 0 || op.free[li] > p.opts[best].free[li]) {
				best = k
			}
		}
		if best < 0 {
			return nil
		}
		p.lineTo[li] = uint32(best)
		used[best] = true
	}
	if slices.Contains(used, false) {
		return nil
	}
	return p
}

// score computes every plan's raw criteria, normalises them over the plans
// and weighs them.
func score(plans []*plan, o *Order, s *Strategy) {
	priority := s.TierPriority[o.Tier]
	for _, p := range plans {
		var carbon float64
		util, balance := 0.0, 0.0
		for _, op := range p.opts {
			p.cost += op.rate.cost
			carbon += float64(op.s.CarbonGramsPerParcel)
			if op.eta.After(p.eta) {
				p.eta = op.eta
			}
			if c := op.s.CapacityPerDay; c > 0 {
				if u := float64(op.load+1) / float64(c); u > util {
					util = u
				}
			}
		}
		for li, to := range p.lineTo {
			if b := float64(o.Lines[li].Qty) / float64(p.opts[to].free[li]); b > balance {
				balance = b
			}
		}
		hours := p.eta.Sub(o.At).Hours()
		p.raw[Transit] = hours
		if !o.Promise.IsZero() {
			p.raw[Transit] = math.Max(0, p.eta.Sub(o.Promise).Hours())
		}
		p.raw[Cost] = float64(p.cost)
		p.raw[Splits] = float64(len(p.opts) - 1)
		p.raw[Balance] = balance
		p.raw[Utilisation] = util
		p.raw[Carbon] = carbon
		p.raw[Tier] = priority * hours
	}
	for c := Criterion(0); c < CriteriaCount; c++ {
		lo, hi := rangeOf(plans, c)
		if hi > lo {
			for _, p := range plans {
				p.norm[c] = (p.raw[c] - lo) / (hi - lo)
			}
		}
	}
	for _, p := range plans {
		p.score = 0
		for c := Criterion(0); c < CriteriaCount; c++ {
			p.score += s.weights[c] * p.norm[c]
		}
	}
	slices.SortStableFunc(plans, func(a, b *plan) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
}

// better orders plans: lower score, then fewer shipments, then warehouse ids.
func better(a, b *plan) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	if len(a.opts) != len(b.opts) {
		return len(a.opts) < len(b.opts)
	}
	for i := range a.opts {
		if a.opts[i].s.ID != b.opts[i].s.ID {
			return a.opts[i].s.ID < b.opts[i].s.ID
		}
	}
	return false
}

func rangeOf(plans []*plan, c Criterion) (lo, hi float64) {
	lo, hi = plans[0].raw[c], plans[0].raw[c]
	for _, p := range plans[1:] {
		if v := p.raw[c]; v < lo {
			lo = v
		} else if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// applyRule returns the index of the plan a tier rule picks from plans
// (sorted best first): the earliest delivery within the cost cap.
func applyRule(plans []*plan, r tierRule) int {
	pick := func(capped bool) int {
		best := -1
		for i, p := range plans {
			if capped && r.costCap >= 0 && p.cost > r.costCap {
				continue
			}
			if best < 0 || p.eta.Before(plans[best].eta) {
				best = i
			}
		}
		return best
	}
	if i := pick(true); i >= 0 {
		return i
	}
	return pick(false)
}

// flip finds the smallest change of one weight that makes another plan
// beat the winner (plans[0]). Scores are linear in each weight, so for
// criterion c and plan p the tie point is w_c - (score_p - score_0) /
// (norm_p[c] - norm_0[c]); the nearest valid tie point over all c and p is
// where the first other plan takes over.
func flip(plans []*plan, s *Strategy) *gridpb.RoutingFlip {
	w := plans[0]
	var out *gridpb.RoutingFlip
	bestDelta := math.Inf(1)
	for _, p := range plans[1:] {
		gap := p.score - w.score
		for c := Criterion(0); c < CriteriaCount; c++ {
			d := p.norm[c] - w.norm[c]
			if d == 0 {
				continue
			}
			delta := -gap / d
			to := s.weights[c] + delta
			if to < 0 || to > WeightMax || math.Abs(delta) >= bestDelta {
				continue
			}
			bestDelta = math.Abs(delta)
			out = &gridpb.RoutingFlip{Criterion: c.String(), WeightFrom: s.weights[c], WeightTo: to}
			out.Winner = out.Winner[:0]
			for _, op := range p.opts {
				out.Winner = append(out.Winner, op.s.ID)
			}
		}
	}
	return out
}

// refusal explains why no plan exists: a SKU nowhere free in the quantity
// (out of stock), or the constraints.
func refusal(opts []*option, o *Order, s *Strategy) *Refusal {
	for li, l := range o.Lines {
		anywhere, eligible := false, false
		var blocked []string
		for _, op := range opts {
			if op.free[li] < l.Qty {
				continue
			}
			anywhere = true
			if op.excluded == "" {
				eligible = true
			} else if len(blocked) < 5 {
				blocked = append(blocked, op.s.ID+" ("+op.detail+")")
			}
		}
		if !anywhere {
			return &Refusal{Stock: true, SKU: l.SKU, Detail: fmt.Sprintf("not enough stock of %s", l.SKU)}
		}
		if !eligible {
			return &Refusal{SKU: l.SKU, Detail: fmt.Sprintf("%s is free only at warehouses the order cannot use: %s", l.SKU, strings.Join(blocked, ", "))}
		}
	}
	if len(o.Lines) > splitLinesMax {
		return &Refusal{Detail: fmt.Sprintf("no one warehouse serves all %d lines, and orders of more than %d lines are not split", len(o.Lines), splitLinesMax)}
	}
	return &Refusal{Detail: fmt.Sprintf("no plan of at most %d shipments (max_shipments of %s) serves every line", s.MaxShipments, s.Ref())}
}

// exclusions lists the warehouses that are in no plan, and why.
func exclusions(opts []*option, o *Order, unregistered []string, plans []*plan, degradedFallback bool) []*gridpb.RoutingExclusion {
	for _, p := range plans {
		for _, op := range p.opts {
			op.inPlan = true
		}
	}
	var out []*gridpb.RoutingExclusion
	more := 0
	add := func(e *gridpb.RoutingExclusion) {
		if len(out) >= RecordExclusionsMax-1 {
			more++
			return
		}
		out = append(out, e)
	}
	for _, op := range opts {
		switch {
		case op.inPlan:
		case op.excluded != "":
			add(&gridpb.RoutingExclusion{Warehouse: op.s.ID, Constraint: op.excluded, Detail: op.detail})
		case op.s.State == StateDegraded && !degradedFallback:
			add(&gridpb.RoutingExclusion{Warehouse: op.s.ID, Constraint: ExcludedDegraded,
				Detail: "degraded: used only when no plan of warehouses that are up exists"})
		default:
			add(&gridpb.RoutingExclusion{Warehouse: op.s.ID, Constraint: ExcludedStock, Detail: shortOf(op, o)})
		}
	}
	for _, n := range unregistered {
		add(&gridpb.RoutingExclusion{Warehouse: n, Constraint: ExcludedUnregistered,
			Detail: "holds stock but is not registered (PUT /v1/warehouses/" + n + ")"})
	}
	if more > 0 {
		out = append(out, &gridpb.RoutingExclusion{Constraint: excludedMore, Detail: fmt.Sprintf("%d more warehouses not listed", more)})
	}
	return out
}

// shortOf names the first line a warehouse cannot serve.
func shortOf(op *option, o *Order) string {
	for li, l := range o.Lines {
		if op.free[li] < l.Qty {
			return fmt.Sprintf("%s: %d free, %d needed", l.SKU, op.free[li], l.Qty)
		}
	}
	return "in no plan that serves every line"
}

// String gives a one-line account of a decision, for logs.
func (d *Decision) String() string {
	if d.Refusal != nil {
		return "refused: " + d.Refusal.Detail
	}
	return fmt.Sprintf("%s@%d -> %v", d.Record.Strategy, d.Record.Version, d.Warehouses)
}
