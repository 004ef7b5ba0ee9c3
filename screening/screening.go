// Package screening judges a new order at intake, before its stock is
// reserved: its delivery address (package address) and its risk score
// (package risk), against the thresholds of configuration. Its verdict is
// accept, hold (the order is created on_hold for a reviewer) or refuse
// (nothing is reserved or recorded), with the findings that made it and
// the score's per-feature contributions. Purchase limits are judged
// elsewhere: by the state machine, with the reservation (package limits).
//
// A Screener is safe for concurrent use; its risk model can be swapped
// while it serves (SetModel), the previous one serving until then.
package screening

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ordergrid/ordergrid/address"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/routing"
)

// Verdicts.
const (
	Accept = "accept"
	Hold   = "hold"
	Refuse = "refuse"
)

// Reasons a verdict names (the first that stopped the order).
const (
	ReasonAddress = "address"
	ReasonRisk    = "risk"
)

// CodeRiskScore is the finding of a risk score at or over a threshold.
const CodeRiskScore = "risk_score"

// Options configure a Screener.
type Options struct {
	// Address is the action on an address finding: hold, refuse, or
	// accept (checks off). Default hold.
	Address string
	// AddressRefuse are the finding codes that refuse the order whatever
	// Address says (e.g. po_box, bonded_zone: no reviewer can ship them).
	AddressRefuse []string
	// Risk is the risk model; nil: no score.
	Risk *risk.Model
	// RiskHold and RiskRefuse are the score thresholds (0..1, hold <=
	// refuse): a score at or over RiskRefuse refuses, at or over RiskHold
	// holds. Defaults DefaultRiskHold and DefaultRiskRefuse (1 turns refusal off).
	RiskHold, RiskRefuse float64
	// Location is the time zone of the hour-of-day feature. Default Asia/Shanghai.
	Location *time.Location
}

// FieldError is an option's bad value; Field is its configuration key
// (holds.address, holds.risk_hold, holds.risk_refuse).
type FieldError struct {
	Field, Detail string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

// Validate checks the options' values, naming the configuration key in a
// *FieldError. The thresholds are compared as New applies them: a zero
// threshold is its default.
func (o *Options) Validate() error {
	switch o.Address {
	case "", Hold, Refuse, Accept:
	default:
		return &FieldError{Field: "holds.address", Detail: fmt.Sprintf("%q is not hold, refuse or accept", o.Address)}
	}
	// Written so that NaN fails too.
	for i, code := range o.AddressRefuse {
		if !slices.Contains(addressCodes, code) {
			return &FieldError{Field: fmt.Sprintf("holds.address_refuse[%d]", i), Detail: fmt.Sprintf("%q is not one of %s", code, strings.Join(addressCodes, ", "))}
		}
	}
	if !(o.RiskHold >= 0 && o.RiskHold <= 1) {
		return &FieldError{Field: "holds.risk_hold", Detail: fmt.Sprintf("%v outside 0..1 (0: the default %v)", o.RiskHold, DefaultRiskHold)}
	}
	if !(o.RiskRefuse >= 0 && o.RiskRefuse <= 1) {
		return &FieldError{Field: "holds.risk_refuse", Detail: fmt.Sprintf("%v outside 0..1 (0: the default %v)", o.RiskRefuse, DefaultRiskRefuse)}
	}
	if hold, refuse := o.thresholds(); hold > refuse {
		return &FieldError{Field: "holds.risk_refuse", Detail: fmt.Sprintf("%v is below holds.risk_hold %v", refuse, hold)}
	}
	return nil
}

// thresholds are the risk thresholds with their defaults applied.
func (o *Options) thresholds() (hold, refuse float64) {
	hold, refuse = o.RiskHold, o.RiskRefuse
	if hold == 0 {
		hold = DefaultRiskHold
	}
	if refuse == 0 {
		refuse = DefaultRiskRefuse
	}
	return hold, refuse
}

// Screener judges new orders.
type Screener struct {
	address          string
	addressRefuse    []string
	holdAt, refuseAt float64
	loc              *time.Location
	model            atomic.Pointer[risk.Model]
	// served caches the regions of the last catalog judged by.
	served atomic.Pointer[servedRegions]
}

// addressCodes are the address checks' finding codes.
var addressCodes = []string{address.CodeMissing, address.CodeIncomplete, address.CodeAmbiguous, address.CodeRegionUnserved,
	address.CodePOBox, address.CodeBondedZone}

// Default thresholds.
const (
	DefaultRiskHold   = 0.9
	DefaultRiskRefuse = 1
)

// New returns a Screener.
func New(o Options) (*Screener, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Screener{address: o.Address, addressRefuse: slices.Clone(o.AddressRefuse), loc: o.Location}
	s.holdAt, s.refuseAt = o.thresholds()
	if s.address == "" {
		s.address = Hold
	}
	if s.loc == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			loc = time.FixedZone("CST", 8*3600)
		}
		s.loc = loc
	}
	if o.Risk != nil {
		s.model.Store(o.Risk)
	}
	return s, nil
}

// SetModel makes m the risk model of the orders judged from now on.
func (s *Screener) SetModel(m *risk.Model) { s.model.Store(m) }

// Model returns the risk model (nil: none).
func (s *Screener) Model() *risk.Model { return s.model.Load() }

// Thresholds returns the risk thresholds (hold, refuse).
func (s *Screener) Thresholds() (hold, refuse float64) { return s.holdAt, s.refuseAt }

// History is what the grid knows of the customer's past orders and of
// the address and device (summed over partitions).
type History struct {
	FirstUnixNano               int64
	Orders, Orders1h, Orders24h int64
	AmountSum                   float64
	// Other customers who used the address and device.
	AddressCustomers, DeviceCustomers int
}

// Input is one order to judge.
type Input struct {
	// Request is the order as it came in (personal fields plain: the
	// address is checked here, before it is sealed).
	Request *pb.CreateOrderRequest
	Now     time.Time
	// Warehouses are the warehouses the order was routed to (nil: unknown).
	Warehouses []string
	Catalog    *routing.Catalog
	History    History
	// SKUPressure is how much of its hottest SKU's free stock the order's
	// batch is taking (0..1+).
	SKUPressure float64
}

// Finding is one thing that stopped an order.
type Finding struct {
	Code, Field, Detail string
}

// Score is an order's risk score with each feature's contribution.
type Score struct {
	risk.Explanation
	Features risk.Features
	Model    string
	Verdict  string
	// contributions holds Explanation.Contributions: the score and its
	// contributions are one allocation.
	contributions [risk.ExplainedFeatureCount]risk.Contribution
}

// Verdict is the judgement of one order.
type Verdict struct {
	// Action is accept, hold or refuse; Reason names what decided it
	// (address or risk) when it is not accept.
	Action, Reason string
	Findings       []Finding
	// Risk is the score (nil without a model).
	Risk *Score
}

// Judge judges one order.
func (s *Screener) Judge(in *Input) Verdict {
	v := Verdict{Action: Accept}
	stop := func(action, reason string) {
		if rank(action) > rank(v.Action) {
			v.Action = action
			if v.Reason == "" || action == Refuse {
				v.Reason = reason
			}
		}
	}
	if s.address != Accept && strings.TrimSpace(in.Request.GetCustomer().GetAddress()) != "" {
		// No address, nothing to check: a store pickup, a POS sale.
		for _, f := range address.Check(in.Request.GetCustomer().GetAddress(), s.addressRules(in)) {
			v.Findings = append(v.Findings, Finding{Code: f.Code, Field: f.Field, Detail: f.Detail})
			if slices.Contains(s.addressRefuse, f.Code) {
				stop(Refuse, ReasonAddress)
			} else {
				stop(s.address, ReasonAddress)
			}
		}
	}
	if m := s.model.Load(); m != nil {
		sc := &Score{Features: features(in, s.loc), Model: m.Version()}
		sc.Explanation = m.ExplainTo(&sc.Features, sc.contributions[:0])
		sc.Verdict = Accept
		switch {
		case sc.Score >= s.refuseAt:
			sc.Verdict = Refuse
		case sc.Score >= s.holdAt:
			sc.Verdict = Hold
		}
		if sc.Verdict != Accept {
			v.Findings = append(v.Findings, Finding{Code: CodeRiskScore,
				Detail: fmt.Sprintf("risk score %.3f is at or over the %s threshold %g; most of it: %s", sc.Score, sc.Verdict, s.threshold(sc.Verdict), top(sc))})
			stop(sc.Verdict, ReasonRisk)
		}
		v.Risk = sc
	}
	return v
}

func (s *Screener) threshold(verdict string) float64 {
	if verdict == Refuse {
		return s.refuseAt
	}
	return s.holdAt
}

func rank(action string) int {
	switch action {
	case Hold:
		return 1
	case Refuse:
		return 2
	}
	return 0
}

// topMax is how many contributions a risk finding names.
const topMax = 3

// top names the score's largest contributions towards risk: the first
// topMax positive ones (Contributions are by size; one that lowered the
// score is passed over, not taken as the end).
func top(sc *Score) string {
	var parts []string
	for _, c := range sc.Contributions {
		if len(parts) == topMax {
			break
		}
		if c.Contribution <= 0 {
			continue
		}
		v := strconv.FormatFloat(c.Value, 'g', 4, 64)
		if c.Category != "" {
			v = c.Category
		}
		parts = append(parts, fmt.Sprintf("%s=%s (%+.2f)", c.Feature, v, c.Contribution))
	}
	if len(parts) == 0 {
		return "no single feature"
	}
	return strings.Join(parts, ", ")
}

// addressRules are the address checks of an order routed to in.Warehouses:
// a PO box is refused unless every warehouse has capability po_box (its
// carrier takes them), a bonded-zone address needs every warehouse bonded
// (the goods are then bonded), and the address's region must be served
// by some warehouse's rates.
func (s *Screener) addressRules(in *Input) address.Rules {
	r := address.Rules{RefusePOBox: true}
	if in.Catalog == nil {
		return r
	}
	poBox, bonded := len(in.Warehouses) > 0, len(in.Warehouses) > 0
	for _, id := range in.Warehouses {
		w, ok := in.Catalog.Warehouse(id)
		poBox = poBox && ok && has(w.Capabilities, "po_box")
		bonded = bonded && ok && has(w.Capabilities, "bonded")
	}
	r.RefusePOBox, r.BondedSKU = !poBox, bonded
	if served := s.servedBy(in.Catalog); served != nil && in.Request.GetDeliveryRegion() == "" {
		r.Served = served.served
	}
	return r
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// servedRegions are the regions a catalog's warehouses (not down) have rates to.
type servedRegions struct {
	catalog *routing.Catalog
	any     bool
	regions map[string]bool
	// served is Rules.Served of the catalog, made once (a closure made
	// per order would allocate on every Judge).
	served func(provinceCode string) bool
}

// servedBy returns the regions c serves; nil when c has no registered
// warehouse (nothing to judge by). A catalog is immutable: its regions
// are computed once and cached until another catalog comes (two
// goroutines meeting a new one may both compute it; either is right).
func (s *Screener) servedBy(c *routing.Catalog) *servedRegions {
	sr := s.served.Load()
	if sr == nil || sr.catalog != c {
		sr = newServedRegions(c)
		s.served.Store(sr)
	}
	if len(sr.regions) == 0 && !sr.any {
		return nil
	}
	return sr
}

func newServedRegions(c *routing.Catalog) *servedRegions {
	sr := &servedRegions{catalog: c, regions: map[string]bool{}}
	for _, w := range c.Warehouses() {
		if w.State == routing.StateDown {
			continue
		}
		for _, rt := range w.Rates {
			if rt.Region == "*" {
				sr.any = true
			}
			sr.regions[rt.Region] = true
		}
	}
	sr.served = func(code string) bool {
		region, ok := RegionOf(code)
		return !ok || sr.any || sr.regions[region]
	}
	return sr
}

// regions maps the GB/T 2260 province codes to China's seven geographic
// regions, the vocabulary of the synthetic catalog and of delivery_region.
var regions = map[string]string{
	"11": "north", "12": "north", "13": "north", "14": "north", "15": "north",
	"21": "northeast", "22": "northeast", "23": "northeast",
	"31": "east", "32": "east", "33": "east", "34": "east", "35": "east", "36": "east", "37": "east", "71": "east",
	"41": "central", "42": "central", "43": "central",
	"44": "south", "45": "south", "46": "south", "81": "south", "82": "south",
	"50": "southwest", "51": "southwest", "52": "southwest", "53": "southwest", "54": "southwest",
	"61": "northwest", "62": "northwest", "63": "northwest", "64": "northwest", "65": "northwest",
}

// RegionOf returns the geographic region of a province code.
func RegionOf(provinceCode string) (string, bool) {
	r, ok := regions[provinceCode]
	return r, ok
}

// features are the risk features of one order.
func features(in *Input, loc *time.Location) risk.Features {
	rq, h := in.Request, &in.History
	f := risk.Features{Channel: rq.GetChannel(), HourOfDay: in.Now.In(loc).Hour(), SKUPressure: max(0, in.SKUPressure),
		CustomerOrders1h: float64(h.Orders1h), CustomerOrders24h: float64(h.Orders24h),
		AddressCustomers: float64(h.AddressCustomers), DeviceCustomers: float64(h.DeviceCustomers)}
	f.Amount = Amount(rq)
	f.FirstOrder = h.Orders == 0
	if h.FirstUnixNano > 0 && in.Now.UnixNano() > h.FirstUnixNano {
		f.CustomerAgeHours = float64(in.Now.UnixNano()-h.FirstUnixNano) / float64(time.Hour)
	}
	f.AmountRatio = 1
	if h.Orders > 0 && h.AmountSum > 0 {
		f.AmountRatio = f.Amount / (h.AmountSum / float64(h.Orders))
	}
	f.RegionMismatch = rq.GetPayerRegion() != "" && rq.GetDeliveryRegion() != "" && rq.GetPayerRegion() != rq.GetDeliveryRegion()
	return f
}

// Amount is the order's lines' total in the currency's major unit (a
// feature: float precision is enough).
func Amount(rq *pb.CreateOrderRequest) float64 {
	var total float64
	for _, l := range rq.GetLines() {
		p, err := strconv.ParseFloat(l.UnitPrice, 64)
		if err == nil && p > 0 && !math.IsInf(p, 1) && l.Qty > 0 {
			total += p * float64(l.Qty)
		}
	}
	return total
}

// groupedNames are the names of a RiskRecord's columns: the plain
// features (features and contributions), then "channel" (contributions only).
var groupedNames, groupedIndex = func() ([]string, map[string]int) {
	var names []string
	for _, n := range risk.FeatureNames() {
		if !strings.HasPrefix(n, "channel=") {
			names = append(names, n)
		}
	}
	names = append(names, "channel")
	idx := make(map[string]int, len(names))
	for i, n := range names {
		idx[n] = i
	}
	return names, idx
}()

// GroupedFeatureNames returns the names of Columns' values: the plain
// features, then "channel" (a contribution only: the channel is the order's).
func GroupedFeatureNames() []string { return append([]string(nil), groupedNames...) }

// Columns returns the score's inputs (the plain features, in
// GroupedFeatureNames order) and contributions (every grouped feature), as
// float32: an order's record keeps them, for people to read.
func (sc *Score) Columns() (features, contributions []float32) {
	var buf [risk.ColumnCount]float64
	v := sc.Features.Vector(buf[:0])
	// One allocation for both: the order's record keeps them.
	cols := make([]float32, len(groupedNames)-1+len(groupedNames))
	features, contributions = cols[:len(groupedNames)-1:len(groupedNames)-1], cols[len(groupedNames)-1:]
	for i := range features {
		features[i] = float32(v[i])
	}
	for _, c := range sc.Contributions {
		if i, ok := groupedIndex[c.Feature]; ok {
			contributions[i] = float32(c.Contribution)
		}
	}
	return features, contributions
}
