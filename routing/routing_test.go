package routing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// stockInv is a fixed inventory for tests.
type stockInv struct {
	free map[string]map[string]int64
	load map[string]int64
}

func (s stockInv) Free(sku string) ([]string, []int64, error) {
	names, free := SortedFree(s.free[sku])
	return names, free, nil
}

func (s stockInv) Load(wh string, _ int32) int64 { return s.load[wh] }

func wh(id, region string, cost string, days int, mods ...func(*Warehouse)) *Warehouse {
	w := &Warehouse{ID: id, Region: region, Rates: []Rate{{Region: "*", Cost: cost, TransitDays: days}}, Timezone: "Asia/Shanghai"}
	for _, m := range mods {
		m(w)
	}
	return w
}

func strategy(t testing.TB, doc string) *Strategy {
	t.Helper()
	s, err := ParseStrategy([]byte(doc), "")
	if err != nil {
		t.Fatalf("strategy: %v", err)
	}
	s.Version = 1
	return s
}

func catalog(t testing.TB, ws ...*Warehouse) *Catalog {
	t.Helper()
	c, err := NewCatalog(1, ws, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var at = time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)

func TestDecidePrefersOneShipmentAndExplains(t *testing.T) {
	c := catalog(t,
		wh("a", "east", "5.00", 1),
		wh("b", "east", "9.00", 1),
		wh("c", "east", "3.00", 1, func(w *Warehouse) { w.State = StateDown; w.StateReason = "cold chain failure" }),
		wh("d", "east", "2.00", 1, func(w *Warehouse) { w.Capabilities = nil }),
	)
	s := strategy(t, `{"name":"cheap","weights":{"cost":1}}`)
	inv := stockInv{free: map[string]map[string]int64{
		"x": {"a": 5, "b": 5, "c": 5, "d": 5},
		"y": {"a": 5, "b": 5, "c": 5, "d": 0},
	}}
	o := &Order{ID: "o1", At: at, Lines: []Line{{"x", 1}, {"y", 2}}}
	d, err := Decide(c, s, ArmActive, o, inv)
	if err != nil || d.Refusal != nil {
		t.Fatalf("decide: %v %+v", err, d.Refusal)
	}
	if !slices.Equal(d.Warehouses, []string{"a", "a"}) {
		t.Fatalf("route %v, want a,a (d lacks y, c is down, b costs more)", d.Warehouses)
	}
	e, err := Explain("o1", d.Record, s)
	if err != nil {
		t.Fatal(err)
	}
	if e.Winner.Warehouses[0] != "a" || e.RunnerUp.Warehouses[0] != "b" {
		t.Fatalf("winner %v runner-up %v", e.Winner.Warehouses, e.RunnerUp.Warehouses)
	}
	reasons := map[string]string{}
	for _, x := range e.Excluded {
		reasons[x.Warehouse] = x.Constraint + ": " + x.Detail
	}
	if !strings.HasPrefix(reasons["c"], "down: down: cold chain failure") || !strings.HasPrefix(reasons["d"], "stock: y: 0 free, 2 needed") {
		t.Fatalf("exclusions %v", reasons)
	}
	cost := e.Winner.Criteria[Cost]
	if cost.Raw != 500 || cost.Weight != 1 || cost.Contribution != 0 || e.RunnerUp.Criteria[Cost].Contribution != 1 {
		t.Fatalf("cost criterion %+v / %+v", cost, e.RunnerUp.Criteria[Cost])
	}
	if e.Flip == nil || e.Flip.Criterion != "" && e.Flip.WeightTo == e.Flip.WeightFrom {
		t.Fatalf("flip %+v", e.Flip)
	}
}

func TestDecideRefusals(t *testing.T) {
	c := catalog(t, wh("a", "east", "5.00", 1, func(w *Warehouse) { w.State = StateDown }), wh("b", "east", "5.00", 1))
	s := strategy(t, `{"name":"s","weights":{"cost":1}}`)
	inv := stockInv{free: map[string]map[string]int64{"x": {"a": 5, "b": 1}}}
	d, _ := Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 3}}}, inv)
	if d.Refusal == nil || d.Refusal.Stock || !strings.Contains(d.Refusal.Detail, "a (down)") {
		t.Fatalf("want unroutable naming a (down), got %+v", d.Refusal)
	}
	d, _ = Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 9}}}, inv)
	if d.Refusal == nil || !d.Refusal.Stock || d.Refusal.SKU != "x" {
		t.Fatalf("want out of stock of x, got %+v", d.Refusal)
	}
	d, _ = Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}, Capabilities: []string{"cold_chain"}}, inv)
	if d.Refusal == nil || d.Refusal.Stock || !strings.Contains(d.Refusal.Detail, "lacks cold_chain") {
		t.Fatalf("want unroutable for the capability, got %+v", d.Refusal)
	}
}

func TestDecideSplitsOnlyWhenNeeded(t *testing.T) {
	c := catalog(t, wh("a", "east", "5.00", 1), wh("b", "east", "5.00", 1), wh("c", "east", "5.00", 1))
	inv := stockInv{free: map[string]map[string]int64{"x": {"a": 5}, "y": {"b": 5}, "z": {"c": 5, "a": 1}}}
	o := &Order{ID: "o", At: at, Lines: []Line{{"x", 1}, {"y", 1}, {"z", 1}}}
	d, _ := Decide(c, strategy(t, `{"name":"s","weights":{"cost":1},"max_shipments":2}`), ArmActive, o, inv)
	if !slices.Equal(d.Warehouses, []string{"a", "b", "a"}) {
		t.Fatalf("two shipments: got %v %+v", d.Warehouses, d.Refusal)
	}
	d, _ = Decide(c, strategy(t, `{"name":"s","weights":{"cost":1},"max_shipments":1}`), ArmActive, o, inv)
	if d.Refusal == nil || d.Refusal.Stock || !strings.Contains(d.Refusal.Detail, "max_shipments") {
		t.Fatalf("max_shipments 1: %+v", d.Refusal)
	}
	o.Lines[2].Qty = 2 // only c has 2 of z: three shipments
	d, _ = Decide(c, strategy(t, `{"name":"s","weights":{"cost":1},"max_shipments":3}`), ArmActive, o, inv)
	if !slices.Equal(d.Warehouses, []string{"a", "b", "c"}) || len(d.Shipments) != 3 {
		t.Fatalf("three shipments: got %v", d.Warehouses)
	}
}

func TestDecideDegradedOnlyAsFallback(t *testing.T) {
	c := catalog(t, wh("a", "east", "1.00", 1, func(w *Warehouse) { w.State = StateDegraded }), wh("b", "east", "9.00", 1))
	s := strategy(t, `{"name":"s","weights":{"cost":1}}`)
	inv := stockInv{free: map[string]map[string]int64{"x": {"a": 5, "b": 5}}}
	d, _ := Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "b" || d.Record.DegradedFallback {
		t.Fatalf("up b over cheaper degraded a: %v", d.Warehouses)
	}
	inv.free["x"]["b"] = 0
	d, _ = Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "a" || !d.Record.DegradedFallback {
		t.Fatalf("degraded a as fallback: %v", d.Warehouses)
	}
}

func TestDecideCapacityAndCutoff(t *testing.T) {
	c := catalog(t,
		wh("a", "east", "1.00", 1, func(w *Warehouse) { w.CapacityPerDay = 10 }),
		wh("b", "east", "2.00", 2, func(w *Warehouse) { w.Cutoff = "17:00" }))
	s := strategy(t, `{"name":"s","weights":{"cost":1}}`)
	inv := stockInv{free: map[string]map[string]int64{"x": {"a": 5, "b": 5}}, load: map[string]int64{"a": 10}}
	d, _ := Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "b" {
		t.Fatalf("a is full: got %v", d.Warehouses)
	}
	// 10:00 UTC is 18:00 in Shanghai: past b's 17:00 cut-off, it ships the next day.
	if d.Shipments[0].ShipDay != 20261112 {
		t.Fatalf("ship day %d, want 20261112", d.Shipments[0].ShipDay)
	}
	eta := time.Unix(0, d.Record.Candidates[0].EtaUnixNano)
	if want := time.Date(2026, 11, 14, 17, 0, 0, 0, c.byID["b"].loc); !eta.Equal(want) {
		t.Fatalf("eta %v, want %v", eta, want)
	}
}

func TestTierRuleAndPromise(t *testing.T) {
	c := catalog(t, wh("fast", "east", "30.00", 1), wh("mid", "east", "12.00", 2), wh("slow", "east", "5.00", 4))
	s := strategy(t, `{"name":"s","weights":{"cost":1},"tier_rules":[{"tier":"vip","rule":"fastest_within_cost_cap","cost_cap":"20.00"}]}`)
	inv := stockInv{free: map[string]map[string]int64{"x": {"fast": 5, "mid": 5, "slow": 5}}}
	d, _ := Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "slow" {
		t.Fatalf("regular order: cheapest, got %v", d.Warehouses)
	}
	d, _ = Decide(c, s, ArmActive, &Order{ID: "o", At: at, Tier: "vip", Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "mid" || d.Record.Rule == "" {
		t.Fatalf("vip: fastest within 20.00 is mid, got %v (%s)", d.Warehouses, d.Record.Rule)
	}
	// A promise in 60 h: slow (96 h) misses it; with transit weighed, mid wins.
	s2 := strategy(t, `{"name":"s","weights":{"cost":1,"transit":10}}`)
	d, _ = Decide(c, s2, ArmActive, &Order{ID: "o", At: at, Promise: at.Add(60 * time.Hour), Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "mid" {
		t.Fatalf("promise: got %v", d.Warehouses)
	}
}

// TestFlipIsTheSmallestChange checks the flip by deciding again with the
// weight just past the reported point (the winner changes) and just short
// of it (it does not).
func TestFlipIsTheSmallestChange(t *testing.T) {
	spec := SyntheticSpec{Seed: 7, Orders: 300, Warehouses: 12, SKUs: 30}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	ws := SyntheticWarehouses(spec)
	c := catalog(t, ws...)
	snap := SyntheticStock(spec, ws)
	inv := snap.inventory()
	next := SyntheticOrders(spec)
	base := `{"name":"s","weights":{"cost":2,"transit":1,"carbon":0.5,"balance":1,"utilisation":1,"splits":3}}`
	checked := 0
	for {
		o, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		s := strategy(t, base)
		d, err := Decide(c, s, ArmActive, o, inv)
		if err != nil {
			t.Fatal(err)
		}
		f := d.Record.Flip
		if d.Refusal != nil || f == nil {
			continue
		}
		for _, delta := range []float64{-1e-6, 1e-6} {
			to := f.WeightTo + delta
			if f.WeightTo < f.WeightFrom {
				to = f.WeightTo - delta
			}
			s2 := strategy(t, base)
			s2.Weights[f.Criterion] = math.Max(0, to)
			if err := s2.Validate(); err != nil {
				t.Fatal(err)
			}
			d2, _ := Decide(c, s2, ArmActive, o, inv)
			flipped := !slices.Equal(d2.Record.Candidates[0].Warehouses, d.Record.Candidates[0].Warehouses)
			if past := delta > 0; flipped != past {
				t.Fatalf("order %s: %s weight %g -> %g (reported flip point %g): flipped=%v", o.ID, f.Criterion, f.WeightFrom, to, f.WeightTo, flipped)
			}
			if delta > 0 && !slices.Equal(d2.Record.Candidates[0].Warehouses, f.Winner) {
				t.Fatalf("order %s: past the flip %v wins, reported %v", o.ID, d2.Record.Candidates[0].Warehouses, f.Winner)
			}
		}
		checked++
	}
	if checked < 50 {
		t.Fatalf("only %d orders had a flip to check", checked)
	}
}

func TestImplicitWarehousesWhileNoneRegistered(t *testing.T) {
	c := catalog(t)
	inv := stockInv{free: map[string]map[string]int64{"x": {"w1": 3, "w2": 9}}}
	s, _ := c.StrategyFor("o")
	d, _ := Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "w2" || d.Record.Strategy != "default" {
		t.Fatalf("default strategy: most free stock: got %v by %s", d.Warehouses, d.Record.Strategy)
	}
	// Once one warehouse is registered, stock elsewhere is not routed.
	c = catalog(t, wh("w1", "east", "1.00", 1))
	d, _ = Decide(c, s, ArmActive, &Order{ID: "o", At: at, Lines: []Line{{"x", 1}}}, inv)
	if d.Warehouses[0] != "w1" || d.Record.Excluded[0].Constraint != ExcludedUnregistered {
		t.Fatalf("registered only: got %v %v", d.Warehouses, d.Record.Excluded)
	}
}

func TestSelectionSplitsByShare(t *testing.T) {
	sel := &Selection{Strategy: "a", Version: 1, Candidate: &CandidateArm{Strategy: "b", Version: 1, SharePercent: 25}}
	n := 0
	for i := 0; i < 20000; i++ {
		if sel.Arm(fmt.Sprintf("order-%d", i)) {
			n++
		}
	}
	if n < 4600 || n > 5400 {
		t.Fatalf("25%% share routed %d of 20000 to the candidate", n)
	}
	copied := *sel
	for i := 0; i < 100; i++ {
		if id := fmt.Sprintf("order-%d", i); sel.Arm(id) != copied.Arm(id) {
			t.Fatalf("arm of %s differs between two equal selections", id)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct{ doc, field string }{
		{`{"id":"a","rates":[{"region":"*","cost":"x","transit_days":1}]}`, "rates[0].cost"},
		{`{"id":"a","rates":[{"region":"*","cost":"1.00","transit_days":-1}]}`, "rates[0].transit_days"},
		{`{"id":"a","rates":[]}`, "rates"},
		{`{"id":"a","state":"sleeping","rates":[{"region":"*","cost":"1"}]}`, "state"},
		{`{"id":"a","timezone":"Mars/Olympus","rates":[{"region":"*","cost":"1"}]}`, "timezone"},
		{`{"id":"a","cutoff":"25:00","rates":[{"region":"*","cost":"1"}]}`, "cutoff"},
		{`{"id":"a","lat":91,"rates":[{"region":"*","cost":"1"}]}`, "lat"},
		{`{"id":"a","colour":"red","rates":[{"region":"*","cost":"1"}]}`, "colour"},
		{`{"id":"a","capacity_per_day":"lots","rates":[{"region":"*","cost":"1"}]}`, "capacity_per_day"},
		{`{"id":"a","rates":[{"region":"*","cost":"1"},{"region":"east","cost":2}]}`, "rates[1].cost"},
		{`{"id":"a","rates":[{"region":"*","cost":"1","colour":"red"}]}`, "rates[0].colour"},
		{`{"id":"a","rates":[{"region":"*","cost":"1","transit_days":1e40}]}`, "rates[0].transit_days"},
		{`{"id":"a","rates":[{"Region":"*","cost":"1"}]}`, "rates[0].Region"},
		{`{"id":"a","rates":[{"region":"*","cost":"1"}]} {}`, "body"},
		{`{"id":"a","rates":[`, "body"},
	}
	for _, c := range cases {
		_, err := ParseWarehouse([]byte(c.doc), "")
		var es Errors
		if !errors.As(err, &es) || es[0].Field != c.field {
			t.Errorf("%s: got %v, want field %s", c.doc, err, c.field)
		}
	}
	scases := []struct{ doc, field string }{
		{`{"weights":{"speed":1}}`, "weights.speed"},
		{`{"weights":{"cost":-1}}`, "weights.cost"},
		{`{"weights":{"cost":0}}`, "weights"},
		{`{"weights":{"cost":1},"max_shipments":9}`, "max_shipments"},
		{`{"weights":{"cost":1},"tier_rules":[{"tier":"vip","rule":"cheapest"}]}`, "tier_rules[0].rule"},
		{`{}`, "weights"},
		{`{"weights":{"cost":"high"}}`, "weights.cost"},
		{`{"weights":{"cost":1},"tier_rules":[{"tier":"vip","rule":"fastest_within_cost_cap","cap":"1"}]}`, "tier_rules[0].cap"},
	}
	for _, c := range scases {
		_, err := ParseStrategy([]byte(c.doc), "s")
		var es Errors
		if !errors.As(err, &es) || es[0].Field != c.field {
			t.Errorf("%s: got %v, want field %s", c.doc, err, c.field)
		}
	}
	// A document of the wrong shape is Malformed (the gateway answers
	// 400), a bad value is not (422); neither speaks Go.
	for _, c := range []struct {
		doc, field string
		malformed  bool
	}{
		{`{"id":"a","rates":[{"region":"*","cost":"1"},{"region":"east","cost":2}]}`, "rates[1].cost", true},
		{`{"id":"a","rates":[{"region":"*","cost":"1","colour":"red"}]}`, "rates[0].colour", true},
		{`{"id":"a","rates":[]}`, "rates", false},
	} {
		_, err := ParseWarehouse([]byte(c.doc), "")
		var es Errors
		if !errors.As(err, &es) || es[0].Field != c.field || es[0].Malformed != c.malformed {
			t.Errorf("%s: got %v, want field %s malformed %v", c.doc, err, c.field, c.malformed)
			continue
		}
		for _, leak := range []string{"json:", "Go", "int64", "float64", "struct", "unmarshal", "reflect"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: %q holds %q", c.doc, err, leak)
			}
		}
	}
	if _, err := ParseSelection([]byte(`{"strategy":"s","candidate":{"strategy":"t","share_percent":"ten"}}`)); err == nil ||
		err.(Errors)[0].Field != "candidate.share_percent" {
		t.Errorf("selection: %v", err)
	}
	_, err := ParseOrderDoc([]byte(`{"id":"o","at":"2026-11-11T00:00:00Z","lines":[{"sku":"x","qty":0}]}`), 7)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 7 || le.Field != "lines[0].qty" || le.Malformed {
		t.Fatalf("order line: %v", err)
	}
	_, err = ParseOrderDoc([]byte(`{"id":"o","at":"2026-11-11T00:00:00Z","lines":[{"sku":"x","qty":1},{"sku":"y","qty":"2"}]}`), 3)
	if !errors.As(err, &le) || le.Line != 3 || le.Field != "lines[1].qty" || !le.Malformed {
		t.Fatalf("order line of the wrong shape: %v", err)
	}
}

func TestSimulateIsDeterministicAndCompares(t *testing.T) {
	spec := SyntheticSpec{Seed: 42, Orders: 5000, Warehouses: 8, SKUs: 50}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	ws := SyntheticWarehouses(spec)
	c := catalog(t, ws...)
	cheap := strategy(t, `{"name":"cheap","weights":{"cost":1}}`)
	fast := strategy(t, `{"name":"fast","weights":{"transit":1}}`)
	run := func() *Report {
		rep, err := Simulate(context.Background(), c, []*Strategy{cheap, fast}, SyntheticOrders(spec), SyntheticStock(spec, ws), nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	a, b := run(), run()
	if a.Orders != 5000 || a.Differences == 0 || a.Differences != b.Differences || a.Strategies[0].ShippingCost != b.Strategies[0].ShippingCost {
		t.Fatalf("not deterministic or no difference: %+v vs %+v", a.Strategies[0], b.Strategies[0])
	}
	ca, fa := a.Strategies[0], a.Strategies[1]
	cc, _ := ParseMoney(ca.ShippingCost)
	fc, _ := ParseMoney(fa.ShippingCost)
	if cc >= fc || ca.PromiseHitRate > fa.PromiseHitRate {
		t.Fatalf("cheap should cost less (%s vs %s) and fast hit more promises (%v vs %v)", ca.ShippingCost, fa.ShippingCost, ca.PromiseHitRate, fa.PromiseHitRate)
	}
	var sb strings.Builder
	if err := a.WriteTable(&sb); err != nil || !strings.Contains(sb.String(), "promise hit rate") {
		t.Fatalf("table: %v\n%s", err, sb.String())
	}
}

func FuzzParseWarehouse(f *testing.F) {
	f.Add([]byte(`{"id":"a","rates":[{"region":"*","cost":"1.00","transit_days":1}],"cutoff":"16:00","timezone":"Asia/Shanghai"}`))
	f.Add([]byte(`{"id":"a","rates":[{"region":"east","cost":"1.5"}],"capabilities":["cold_chain"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWarehouse(data, "")
		if err != nil {
			return
		}
		if _, err := compile(w); err != nil {
			t.Fatalf("valid warehouse does not compile: %v", err)
		}
	})
}

func FuzzParseStrategy(f *testing.F) {
	f.Add([]byte(`{"name":"s","weights":{"cost":1,"transit":2},"tier_rules":[{"tier":"vip","rule":"fastest_within_cost_cap","cost_cap":"9.99"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStrategy(data, "")
		if err != nil {
			return
		}
		s.Version = 1
		c := catalog(t, wh("a", "east", "1.00", 1), wh("b", "west", "2.00", 2))
		inv := stockInv{free: map[string]map[string]int64{"x": {"a": 1, "b": 2}}}
		if _, err := Decide(c, s, ArmActive, &Order{ID: "o", At: at, Tier: "vip", Lines: []Line{{"x", 1}}}, inv); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseOrderDoc(f *testing.F) {
	f.Add([]byte(`{"id":"o","at":"2026-11-11T00:00:00Z","region":"east","lines":[{"sku":"x","qty":2}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOrderDoc(data, 1)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line != 1 {
				t.Fatalf("error does not name the line: %v", err)
			}
			return
		}
		if len(o.Lines) == 0 {
			t.Fatal("order without lines accepted")
		}
	})
}

// BenchmarkDecide is one decision with 50 warehouses and 5 lines.
func BenchmarkDecide(b *testing.B) {
	spec := SyntheticSpec{Seed: 1, Orders: 1, Warehouses: 50, SKUs: 5}
	if err := spec.Validate(); err != nil {
		b.Fatal(err)
	}
	ws := SyntheticWarehouses(spec)
	c := catalog(b, ws...)
	snap := &Snapshot{Stock: map[string]map[string]int64{}}
	o := &Order{ID: "o", At: at, Region: "east", Tier: "vip", Promise: at.Add(48 * time.Hour)}
	for i := 0; i < 5; i++ {
		sku := SyntheticSKU(i)
		snap.Stock[sku] = map[string]int64{}
		for _, w := range ws {
			snap.Stock[sku][w.ID] = 1000
		}
		o.Lines = append(o.Lines, Line{SKU: sku, Qty: 2})
	}
	inv := snap.inventory() // names sorted, as a partition's stock record keeps them
	s := strategy(b, `{"name":"s","weights":{"cost":2,"transit":3,"carbon":1,"balance":1,"utilisation":1,"tier":1},"tier_priority":{"vip":2}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(c, s, ArmActive, o, inv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSimulate1M replays 1,000,000 synthetic orders (50 warehouses,
// 1,000 SKUs) against one strategy; run with -benchtime 1x.
func BenchmarkSimulate1M(b *testing.B) {
	spec := SyntheticSpec{Seed: 1, Orders: 1_000_000, Warehouses: 50, SKUs: 1000}
	if err := spec.Validate(); err != nil {
		b.Fatal(err)
	}
	ws := SyntheticWarehouses(spec)
	c := catalog(b, ws...)
	s := strategy(b, `{"name":"s","weights":{"cost":2,"transit":3,"carbon":1,"balance":1,"utilisation":1}}`)
	for b.Loop() {
		rep, err := Simulate(context.Background(), c, []*Strategy{s}, SyntheticOrders(spec), SyntheticStock(spec, ws), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.Orders)/rep.TookSeconds, "orders/s")
	}
}
