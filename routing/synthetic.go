package routing

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"
)

// SyntheticSpec describes a seeded synthetic world: warehouses, stock and
// an order stream. The same spec always makes the same world.
type SyntheticSpec struct {
	Seed       uint64 `json:"seed"`
	Orders     int    `json:"orders"`
	Warehouses int    `json:"warehouses,omitempty"` // default 10
	SKUs       int    `json:"skus,omitempty"`       // default 200
	// OrdersPerDay spreads the orders over time. Default 100,000.
	OrdersPerDay int `json:"orders_per_day,omitempty"`
	// Start is the first order's time, RFC 3339. Default 2026-11-11T00:00:00+08:00.
	Start string `json:"start,omitempty"`
}

// Synthetic limits.
const (
	syntheticWarehousesMax = WarehousesMax
	syntheticSKUsMax       = 100_000
)

// SyntheticRegions are the regions of synthetic warehouses and orders.
var SyntheticRegions = []string{"north", "northeast", "east", "central", "south", "southwest", "northwest"}

var regionCentre = map[string][2]float64{
	"north": {39.9, 116.4}, "northeast": {41.8, 123.4}, "east": {31.2, 121.5}, "central": {30.6, 114.3},
	"south": {23.1, 113.3}, "southwest": {30.7, 104.1}, "northwest": {34.3, 108.9},
}

// Validate fills defaults and checks bounds.
func (s *SyntheticSpec) Validate() error {
	var es Errors
	if s.Warehouses == 0 {
		s.Warehouses = 10
	}
	if s.SKUs == 0 {
		s.SKUs = 200
	}
	if s.OrdersPerDay == 0 {
		s.OrdersPerDay = 100_000
	}
	if s.Start == "" {
		s.Start = "2026-11-11T00:00:00+08:00"
	}
	if s.Orders < 1 || s.Orders > SimulationOrdersMax {
		es.add("orders", "%d outside 1..%d", s.Orders, SimulationOrdersMax)
	}
	if s.Warehouses < 1 || s.Warehouses > syntheticWarehousesMax {
		es.add("warehouses", "%d outside 1..%d", s.Warehouses, syntheticWarehousesMax)
	}
	if s.SKUs < 1 || s.SKUs > syntheticSKUsMax {
		es.add("skus", "%d outside 1..%d", s.SKUs, syntheticSKUsMax)
	}
	if s.OrdersPerDay < 1 || s.OrdersPerDay > 100_000_000 {
		es.add("orders_per_day", "%d outside 1..100000000", s.OrdersPerDay)
	}
	if _, err := time.Parse(time.RFC3339, s.Start); err != nil {
		es.add("start", "%q is not an RFC 3339 time", s.Start)
	}
	return es.err()
}

func (s *SyntheticSpec) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(s.Seed, stream))
}

// SyntheticWarehouses makes s.Warehouses warehouses across the regions:
// rates to every region (cheaper and faster nearby), capacities that
// together ship a little more than a day's orders, cut-offs, carbon, and
// capabilities (cold chain, bulky, bonded) on some.
func SyntheticWarehouses(s SyntheticSpec) []*Warehouse {
	r := s.rng(1)
	perDay := int64(math.Ceil(1.3 * float64(s.OrdersPerDay) * 1.4 / float64(s.Warehouses)))
	out := make([]*Warehouse, s.Warehouses)
	for i := range out {
		home := SyntheticRegions[i%len(SyntheticRegions)]
		c := regionCentre[home]
		w := &Warehouse{ID: fmt.Sprintf("wh-%03d", i+1), Name: fmt.Sprintf("%s DC %d", home, i+1),
			Lat: round(c[0] + r.Float64()*2 - 1), Lon: round(c[1] + r.Float64()*2 - 1), Region: home,
			CapacityPerDay: perDay/2 + r.Int64N(perDay+1), State: StateUp,
			CarbonGramsPerParcel: 300 + r.Int64N(600), Cutoff: fmt.Sprintf("%02d:00", 15+r.IntN(6)), Timezone: "Asia/Shanghai"}
		for _, region := range SyntheticRegions {
			d := distance(c, regionCentre[region])
			cost := 500 + int64(d*0.4) + r.Int64N(200)
			days := 1 + int(d/900)
			if region == home {
				cost, days = 400+r.Int64N(150), 1
			}
			w.Rates = append(w.Rates, Rate{Region: region, Cost: FormatMoney(cost), TransitDays: days})
		}
		if r.IntN(10) < 3 {
			w.Capabilities = append(w.Capabilities, "cold_chain")
		}
		if r.IntN(10) < 2 {
			w.Capabilities = append(w.Capabilities, "bulky")
		}
		if r.IntN(10) < 1 {
			w.Capabilities = append(w.Capabilities, "bonded")
		}
		if err := w.Validate(); err != nil {
			panic(fmt.Sprintf("routing: synthetic warehouse: %v", err))
		}
		out[i] = w
	}
	return out
}

// distance is the great-circle distance between two lat/lon points, km.
func distance(a, b [2]float64) float64 {
	const rad = math.Pi / 180
	dlat, dlon := (b[0]-a[0])*rad, (b[1]-a[1])*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a[0]*rad)*math.Cos(b[0]*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}

// SyntheticSKU names synthetic SKU i.
func SyntheticSKU(i int) string { return fmt.Sprintf("SKU-%05d", i+1) }

// SyntheticStock stocks every SKU at most warehouses, about twice what the
// orders take in all.
func SyntheticStock(s SyntheticSpec, warehouses []*Warehouse) *Snapshot {
	r := s.rng(2)
	snap := &Snapshot{Stock: make(map[string]map[string]int64, s.SKUs)}
	// Orders take ~2.6 units each, Zipf-distributed over SKUs: stock follows.
	total := float64(s.Orders) * 2.6 * 2
	weights := zipfWeights(s.SKUs)
	for i := 0; i < s.SKUs; i++ {
		by := map[string]int64{}
		units := total * weights[i]
		for _, w := range warehouses {
			if r.IntN(10) < 3 {
				continue
			}
			by[w.ID] = int64(units / float64(len(warehouses)) * (0.5 + r.Float64()*1.5) / 0.7)
		}
		snap.Stock[SyntheticSKU(i)] = by
	}
	return snap
}

// zipfWeights are the shares of SKU popularity (s = 1.1), summing to 1.
func zipfWeights(n int) []float64 {
	w := make([]float64, n)
	sum := 0.0
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), 1.1)
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// SyntheticOrders returns the spec's order stream: regions uniform, 5% VIP,
// 40% with a promise 24-96 h out, 8% needing cold chain and 3% bulky, 1 to
// 5 lines of Zipf-popular SKUs, quantity 1 to 3.
func SyntheticOrders(s SyntheticSpec) OrderSource {
	r := s.rng(3)
	start, _ := time.Parse(time.RFC3339, s.Start)
	step := 24 * time.Hour / time.Duration(s.OrdersPerDay)
	cum := zipfWeights(s.SKUs)
	for i := 1; i < len(cum); i++ {
		cum[i] += cum[i-1]
	}
	n := 0
	return func() (*Order, error) {
		if n >= s.Orders {
			return nil, io.EOF
		}
		o := &Order{ID: fmt.Sprintf("sim-%07d", n+1), At: start.Add(time.Duration(n) * step),
			Region: SyntheticRegions[r.IntN(len(SyntheticRegions))]}
		n++
		if r.IntN(100) < 5 {
			o.Tier = "vip"
		}
		if r.IntN(100) < 40 {
			o.Promise = o.At.Add(time.Duration(24+r.IntN(73)) * time.Hour)
		}
		switch k := r.IntN(100); {
		case k < 8:
			o.Capabilities = []string{"cold_chain"}
		case k < 11:
			o.Capabilities = []string{"bulky"}
		}
		lines := 1
		for lines < 5 && r.IntN(100) < 45 {
			lines++
		}
		seen := map[string]bool{}
		for len(o.Lines) < lines {
			x := r.Float64()
			lo, hi := 0, len(cum)-1
			for lo < hi {
				mid := (lo + hi) / 2
				if cum[mid] < x {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			sku := SyntheticSKU(lo)
			if seen[sku] {
				if len(seen) >= s.SKUs {
					break
				}
				continue
			}
			seen[sku] = true
			o.Lines = append(o.Lines, Line{SKU: sku, Qty: 1 + r.Int64N(3)})
		}
		return o, nil
	}
}
