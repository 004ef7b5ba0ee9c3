package routing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Limits of one simulation.
const (
	SimulationStrategiesMax = 8
	SimulationOrdersMax     = 5_000_000
	// DifferencesShownMax bounds the differently routed orders a report lists.
	DifferencesShownMax = 100
	simLineBytesMax     = 64 << 10
	simLinesMax         = 1_000
)

// OrderDoc is one order of a simulation, one JSON object per line.
type OrderDoc struct {
	ID           string   `json:"id"`
	At           string   `json:"at"` // RFC 3339
	Region       string   `json:"region,omitempty"`
	Tier         string   `json:"tier,omitempty"`
	PromisedBy   string   `json:"promised_by,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	Lines        []Line   `json:"lines"`
}

// LineError names the line of an order file that is wrong, and its field.
type LineError struct {
	Line   int
	Field  string
	Detail string
	// Malformed: the line is not JSON of an order document's shape (a
	// syntax error, a wrong type, an unknown field), not a bad value.
	Malformed bool
}

func (e *LineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Detail)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Detail)
}

// ParseOrderDoc reads one line of an order file; lineNo names it in errors.
func ParseOrderDoc(data []byte, lineNo int) (*Order, error) {
	if len(data) > simLineBytesMax {
		return nil, &LineError{Line: lineNo, Detail: fmt.Sprintf("%d bytes, at most %d", len(data), simLineBytesMax)}
	}
	var d OrderDoc
	if err := decodeStrict(data, &d); err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) {
			return nil, &LineError{Line: lineNo, Detail: "not an order document", Malformed: true}
		}
		if fe.Field == "body" { // the line itself: LineError names it
			return nil, &LineError{Line: lineNo, Detail: fe.Detail, Malformed: true}
		}
		return nil, &LineError{Line: lineNo, Field: fe.Field, Detail: fe.Detail, Malformed: true}
	}
	bad := func(field, format string, args ...any) error {
		return &LineError{Line: lineNo, Field: field, Detail: fmt.Sprintf(format, args...)}
	}
	o := &Order{ID: d.ID, Region: d.Region, Tier: d.Tier, Capabilities: d.Capabilities}
	if d.ID == "" {
		return nil, bad("id", "required")
	}
	at, err := time.Parse(time.RFC3339, d.At)
	if err != nil {
		return nil, bad("at", "%q is not an RFC 3339 time", d.At)
	}
	o.At = at
	if d.PromisedBy != "" {
		if o.Promise, err = time.Parse(time.RFC3339, d.PromisedBy); err != nil {
			return nil, bad("promised_by", "%q is not an RFC 3339 time", d.PromisedBy)
		}
	}
	if len(d.Lines) == 0 || len(d.Lines) > simLinesMax {
		return nil, bad("lines", "%d lines, want 1..%d", len(d.Lines), simLinesMax)
	}
	at2 := map[string]int{}
	for i, l := range d.Lines {
		if l.SKU == "" {
			return nil, bad(fmt.Sprintf("lines[%d].sku", i), "required")
		}
		if l.Qty < 1 || l.Qty > 1_000_000_000 {
			return nil, bad(fmt.Sprintf("lines[%d].qty", i), "%d outside 1..1000000000", l.Qty)
		}
		if j, ok := at2[l.SKU]; ok {
			o.Lines[j].Qty += l.Qty
			continue
		}
		at2[l.SKU] = len(o.Lines)
		o.Lines = append(o.Lines, l)
	}
	slices.Sort(o.Capabilities)
	return o, nil
}

// Doc writes an order as an order file line holds it.
func (o *Order) Doc() OrderDoc {
	d := OrderDoc{ID: o.ID, At: o.At.UTC().Format(time.RFC3339), Region: o.Region, Tier: o.Tier, Capabilities: o.Capabilities, Lines: o.Lines}
	if !o.Promise.IsZero() {
		d.PromisedBy = o.Promise.UTC().Format(time.RFC3339)
	}
	return d
}

// OrderSource yields the orders of a simulation; io.EOF ends them.
type OrderSource func() (*Order, error)

// Snapshot is the stock and capacity a simulation starts from.
type Snapshot struct {
	// Free stock per SKU and warehouse.
	Stock map[string]map[string]int64 `json:"stock"`
	// Load: parcels already routed per warehouse and ship day (yyyymmdd).
	Load map[string]map[int32]int64 `json:"load,omitempty"`
	// FetchStock, when set, supplies a SKU's free stock the first time an
	// order names one Stock lacks (the live grid's current stock); every
	// strategy starts from the same answer.
	FetchStock func(sku string) (map[string]int64, error) `json:"-"`
	// FetchLoad likewise supplies a warehouse's load for a ship day.
	FetchLoad func(warehouse string, day int32) int64 `json:"-"`
}

// simInventory is one strategy's copy of the snapshot, changed by each
// order it routes.
type simInventory struct {
	snap  *Snapshot
	stock map[string]*skuFree
	load  map[string]map[int32]int64
}

type skuFree struct {
	names []string
	free  []int64
}

func (s *Snapshot) inventory() *simInventory {
	inv := &simInventory{snap: s, stock: make(map[string]*skuFree, len(s.Stock)), load: map[string]map[int32]int64{}}
	for sku, by := range s.Stock {
		inv.stock[sku] = freeOf(by)
	}
	return inv
}

func freeOf(by map[string]int64) *skuFree {
	names, free := SortedFree(by)
	return &skuFree{names: names, free: free}
}

// SortedFree turns free stock per warehouse into what Inventory.Free
// answers: warehouse names sorted, and their free stock aligned.
func SortedFree(by map[string]int64) (names []string, free []int64) {
	names = make([]string, 0, len(by))
	for wh := range by {
		names = append(names, wh)
	}
	slices.Sort(names)
	free = make([]int64, len(names))
	for i, wh := range names {
		free[i] = by[wh]
	}
	return names, free
}

func (s *simInventory) Free(sku string) ([]string, []int64, error) {
	f := s.stock[sku]
	if f == nil {
		if s.snap.FetchStock == nil {
			return nil, nil, nil
		}
		if s.snap.Stock == nil {
			s.snap.Stock = map[string]map[string]int64{}
		}
		by, ok := s.snap.Stock[sku]
		if !ok {
			var err error
			if by, err = s.snap.FetchStock(sku); err != nil {
				return nil, nil, err
			}
			s.snap.Stock[sku] = by
		}
		f = freeOf(by)
		s.stock[sku] = f
	}
	return f.names, f.free, nil
}

func (s *simInventory) Load(wh string, day int32) int64 {
	days := s.load[wh]
	if days == nil {
		days = map[int32]int64{}
		s.load[wh] = days
	}
	n, ok := days[day]
	if !ok {
		n = s.snap.Load[wh][day]
		if s.snap.FetchLoad != nil {
			n += s.snap.FetchLoad(wh, day)
		}
		days[day] = n
	}
	return n
}

// take applies a decision: its stock leaves the free stock, its parcels count.
func (s *simInventory) take(o *Order, d *Decision) {
	for i, l := range o.Lines {
		f := s.stock[l.SKU]
		if j, ok := slices.BinarySearch(f.names, d.Warehouses[i]); ok {
			f.free[j] -= l.Qty
		}
	}
	for _, sh := range d.Shipments {
		n := s.Load(sh.Warehouse, sh.ShipDay) // makes the warehouse's map
		s.load[sh.Warehouse][sh.ShipDay] = n + 1
	}
}

// Report compares strategies over one order set.
type Report struct {
	Orders     int               `json:"orders"`
	Strategies []*StrategyReport `json:"strategies"`
	// Differences counts the orders some strategy routed otherwise than the
	// first one; DifferentOrders lists the first of them.
	Differences     int           `json:"differences"`
	DifferentOrders []*Difference `json:"different_orders"`
	TookSeconds     float64       `json:"took_seconds"`
}

// StrategyReport is one strategy's totals.
type StrategyReport struct {
	Strategy       string  `json:"strategy"`
	Routed         int     `json:"routed"`
	OutOfStock     int     `json:"out_of_stock"`
	Unroutable     int     `json:"unroutable"`
	ShippingCost   string  `json:"shipping_cost"`
	PromiseOrders  int     `json:"promise_orders"`
	PromiseHits    int     `json:"promise_hits"`
	PromiseHitRate float64 `json:"promise_hit_rate"`
	Shipments      int     `json:"shipments"`
	SplitOrders    int     `json:"split_orders"`
	CarbonKg       float64 `json:"carbon_kg"`
	// WarehouseLoad is parcels per warehouse.
	WarehouseLoad     map[string]int64 `json:"warehouse_load"`
	DegradedFallbacks int              `json:"degraded_fallbacks"`
	// DecisionMicros is the mean time of one decision.
	DecisionMicros float64 `json:"decision_micros"`

	costMinor int64
	carbonG   int64
	decideNs  int64
}

// Difference is one order routed differently: per strategy, the warehouse
// of each line ("" when refused).
type Difference struct {
	Order  string              `json:"order"`
	Routes map[string][]string `json:"routes"`
}

// Simulate routes every order of next by each strategy, each against its
// own copy of snap (so a strategy's earlier orders use its stock and
// capacity), and compares them. progress, if not nil, is called every
// 10,000 orders. It stops at ctx's end or after SimulationOrdersMax orders.
func Simulate(ctx context.Context, c *Catalog, strategies []*Strategy, next OrderSource, snap *Snapshot, progress func(orders int)) (*Report, error) {
	if len(strategies) == 0 || len(strategies) > SimulationStrategiesMax {
		return nil, fmt.Errorf("routing: %d strategies, want 1..%d", len(strategies), SimulationStrategiesMax)
	}
	start := time.Now()
	rep := &Report{DifferentOrders: []*Difference{}}
	invs := make([]*simInventory, len(strategies))
	for i, s := range strategies {
		invs[i] = snap.inventory()
		rep.Strategies = append(rep.Strategies, &StrategyReport{Strategy: s.Ref(), WarehouseLoad: map[string]int64{}})
	}
	decisions := make([]*Decision, len(strategies))
	for {
		if rep.Orders%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		o, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if rep.Orders >= SimulationOrdersMax {
			return nil, fmt.Errorf("routing: more than %d orders in one simulation", SimulationOrdersMax)
		}
		rep.Orders++
		for i, s := range strategies {
			t0 := time.Now()
			d, err := Decide(c, s, ArmActive, o, invs[i])
			if err != nil {
				return nil, err
			}
			sr := rep.Strategies[i]
			sr.decideNs += time.Since(t0).Nanoseconds()
			decisions[i] = d
			sr.count(o, d)
			if d.Refusal == nil {
				invs[i].take(o, d)
			}
		}
		if differ(decisions) {
			rep.Differences++
			if len(rep.DifferentOrders) < DifferencesShownMax {
				diff := &Difference{Order: o.ID, Routes: map[string][]string{}}
				for i, d := range decisions {
					diff.Routes[rep.Strategies[i].Strategy] = d.Warehouses
				}
				rep.DifferentOrders = append(rep.DifferentOrders, diff)
			}
		}
		if progress != nil && rep.Orders%10_000 == 0 {
			progress(rep.Orders)
		}
	}
	for _, sr := range rep.Strategies {
		sr.ShippingCost = FormatMoney(sr.costMinor)
		sr.CarbonKg = round(float64(sr.carbonG) / 1000)
		if sr.PromiseOrders > 0 {
			sr.PromiseHitRate = round(float64(sr.PromiseHits) / float64(sr.PromiseOrders))
		}
		if rep.Orders > 0 {
			sr.DecisionMicros = round(float64(sr.decideNs) / float64(rep.Orders) / 1000)
		}
	}
	rep.TookSeconds = round(time.Since(start).Seconds())
	return rep, nil
}

func (sr *StrategyReport) count(o *Order, d *Decision) {
	if d.Refusal != nil {
		if d.Refusal.Stock {
			sr.OutOfStock++
		} else {
			sr.Unroutable++
		}
		return
	}
	sr.Routed++
	w := d.Record.Candidates[0]
	for _, wh := range w.Warehouses {
		sr.WarehouseLoad[wh]++
	}
	sr.Shipments += len(w.Warehouses)
	if len(w.Warehouses) > 1 {
		sr.SplitOrders++
	}
	sr.costMinor += int64(w.Raw[Cost])
	sr.carbonG += int64(w.Raw[Carbon])
	if !o.Promise.IsZero() {
		sr.PromiseOrders++
		if w.EtaUnixNano <= o.Promise.UnixNano() {
			sr.PromiseHits++
		}
	}
	if d.Record.DegradedFallback {
		sr.DegradedFallbacks++
	}
}

func differ(ds []*Decision) bool {
	for _, d := range ds[1:] {
		if !slices.Equal(d.Warehouses, ds[0].Warehouses) {
			return true
		}
	}
	return false
}

// WriteTable writes the report as a table for people: strategies side by
// side, then load per warehouse, then the first differently routed orders.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(*StrategyReport) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, s := range r.Strategies {
			fmt.Fprintf(tw, "%s\t", cell(s))
		}
		fmt.Fprintln(tw)
	}
	row("", func(s *StrategyReport) string { return s.Strategy })
	row("routed", func(s *StrategyReport) string { return fmt.Sprint(s.Routed) })
	row("out of stock", func(s *StrategyReport) string { return fmt.Sprint(s.OutOfStock) })
	row("unroutable", func(s *StrategyReport) string { return fmt.Sprint(s.Unroutable) })
	row("shipping cost", func(s *StrategyReport) string { return s.ShippingCost })
	row("promise hit rate", func(s *StrategyReport) string {
		return fmt.Sprintf("%.1f%% of %d", 100*s.PromiseHitRate, s.PromiseOrders)
	})
	row("shipments", func(s *StrategyReport) string { return fmt.Sprint(s.Shipments) })
	row("split orders", func(s *StrategyReport) string { return fmt.Sprint(s.SplitOrders) })
	row("carbon (kg CO2e)", func(s *StrategyReport) string { return fmt.Sprintf("%.1f", s.CarbonKg) })
	row("degraded fallbacks", func(s *StrategyReport) string { return fmt.Sprint(s.DegradedFallbacks) })
	row("µs per decision", func(s *StrategyReport) string { return fmt.Sprintf("%.1f", s.DecisionMicros) })
	var whs []string
	seen := map[string]bool{}
	for _, s := range r.Strategies {
		for wh := range s.WarehouseLoad {
			if !seen[wh] {
				seen[wh] = true
				whs = append(whs, wh)
			}
		}
	}
	sort.Strings(whs)
	for _, wh := range whs {
		row("parcels "+wh, func(s *StrategyReport) string { return fmt.Sprint(s.WarehouseLoad[wh]) })
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d orders in %.2fs; %d routed differently from %s", r.Orders, r.TookSeconds, r.Differences, r.Strategies[0].Strategy)
	if len(r.DifferentOrders) > 0 {
		fmt.Fprintf(w, " (first %d):\n", len(r.DifferentOrders))
	} else {
		fmt.Fprintln(w)
	}
	for i, d := range r.DifferentOrders {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more in the JSON report\n", len(r.DifferentOrders)-10)
			break
		}
		var parts []string
		for _, s := range r.Strategies {
			route := strings.Join(d.Routes[s.Strategy], ",")
			if route == "" {
				route = "refused"
			}
			parts = append(parts, s.Strategy+"="+route)
		}
		fmt.Fprintf(w, "  %s  %s\n", d.Order, strings.Join(parts, "  "))
	}
	return nil
}
