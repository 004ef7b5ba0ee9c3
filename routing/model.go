package routing

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // warehouses name IANA time zones; the binary carries them

	"github.com/ordergrid/ordergrid/jsonshape"
)

// Limits of the documents, so one bad document cannot blow up every decision.
const (
	WarehousesMax       = 1_000
	RatesPerWarehouse   = 256
	CapabilitiesMax     = 32
	StrategyVersions    = 10_000
	MaxShipmentsLimit   = 4
	WeightMax           = 1_000
	TierRulesMax        = 16
	TierPriorityMax     = 100
	DocumentBytesMax    = 256 << 10
	idBytesMax          = 64
	descriptionMax      = 1_000
	costMinorMax        = 1_000_000_000 // 10 million in major units
	transitDaysMax      = 365
	carbonGramsMax      = 100_000_000
	capacityPerDayMax   = 1_000_000_000
	StrategyNameDefault = "default"
)

// Warehouse states.
const (
	StateUp       = "up"
	StateDegraded = "degraded"
	StateDown     = "down"
)

// Warehouse is one warehouse, as configured and as PUT /v1/warehouses/{id} takes it.
type Warehouse struct {
	ID     string  `json:"id"`
	Name   string  `json:"name,omitempty"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	Region string  `json:"region"`
	// CapacityPerDay is how many parcels it ships per day; 0: no limit.
	CapacityPerDay int64 `json:"capacity_per_day"`
	// State is up, degraded or down; StateReason says why (e.g. "cold chain failure").
	State       string `json:"state"`
	StateReason string `json:"state_reason,omitempty"`
	// Rates are the shipping cost and transit days per destination region;
	// region "*" serves any region without its own rate.
	Rates []Rate `json:"rates"`
	// CarbonGramsPerParcel is the CO2e of one parcel from here.
	CarbonGramsPerParcel int64 `json:"carbon_grams_per_parcel"`
	// Cutoff is the local time ("16:00") after which a parcel ships the next
	// day; empty: ships the moment it is routed.
	Cutoff string `json:"cutoff,omitempty"`
	// Timezone is the IANA zone of Cutoff and of the capacity day. Default "UTC".
	Timezone     string   `json:"timezone,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	// Version counts the changes of this warehouse; set by the grid.
	Version uint64 `json:"version,omitempty"`
}

// Rate is the cost of one parcel to a region and its transit time.
type Rate struct {
	Region      string `json:"region"`
	Cost        string `json:"cost"` // decimal string in the currency's major unit, e.g. "12.50"
	TransitDays int    `json:"transit_days"`
}

// FieldError names the field of a document that is wrong.
type FieldError struct {
	Field  string
	Detail string
	// Malformed: the document is not JSON of the right shape (a syntax
	// error, a wrong type, an unknown field), not a bad value.
	Malformed bool
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

// Errors is every FieldError of one document.
type Errors []*FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (es *Errors) add(field, format string, args ...any) {
	*es = append(*es, &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

func checkID(es *Errors, field, id string) {
	switch {
	case id == "":
		es.add(field, "required")
	case len(id) > idBytesMax:
		es.add(field, "longer than %d bytes", idBytesMax)
	case !idPattern.MatchString(id):
		es.add(field, "%q: letters, digits and . _ : - only, starting with a letter or digit", id)
	}
}

// decodeStrict decodes one JSON document, refusing unknown fields, values
// of the wrong JSON kind and trailing data, and naming the field at fault
// by its full path with indexes ("rates[1].cost"), in JSON's words.
func decodeStrict(data []byte, v any) error {
	if len(data) > DocumentBytesMax {
		return &FieldError{Field: "body", Detail: fmt.Sprintf("%d bytes, at most %d", len(data), DocumentBytesMax), Malformed: true}
	}
	if err := jsonshape.Check(data, v); err != nil {
		fe := jsonFieldError(err)
		fe.Malformed = true
		return fe
	}
	if err := json.Unmarshal(data, v); err != nil {
		// The shape fits, so only a value's content can fail here.
		return &FieldError{Field: "body", Detail: "a value cannot be read as its field's type", Malformed: true}
	}
	return nil
}

// jsonFieldError turns a jsonshape error into a FieldError naming the
// field by its full path ("body" for the document itself).
func jsonFieldError(err error) *FieldError {
	var se *jsonshape.Error
	if !errors.As(err, &se) {
		return &FieldError{Field: "body", Detail: "not JSON of the document's shape"}
	}
	if se.Path == "" || se.Syntax {
		return &FieldError{Field: "body", Detail: se.Error()}
	}
	return &FieldError{Field: se.Path, Detail: se.Detail}
}

// ParseWarehouse decodes and validates a warehouse document. id, when not
// empty, is the id of the URL: the document's id must be empty or equal.
func ParseWarehouse(data []byte, id string) (*Warehouse, error) {
	var w Warehouse
	if err := decodeStrict(data, &w); err != nil {
		return nil, Errors{err.(*FieldError)}
	}
	if w.ID == "" {
		w.ID = id
	} else if id != "" && w.ID != id {
		return nil, Errors{{Field: "id", Detail: fmt.Sprintf("%q differs from the URL's %q", w.ID, id)}}
	}
	w.Version = 0
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return &w, nil
}

// Validate checks every field and fills defaults (state up, timezone UTC).
func (w *Warehouse) Validate() error {
	var es Errors
	checkID(&es, "id", w.ID)
	if len(w.Name) > descriptionMax {
		es.add("name", "longer than %d bytes", descriptionMax)
	}
	if math.IsNaN(w.Lat) || w.Lat < -90 || w.Lat > 90 {
		es.add("lat", "%v outside -90..90", w.Lat)
	}
	if math.IsNaN(w.Lon) || w.Lon < -180 || w.Lon > 180 {
		es.add("lon", "%v outside -180..180", w.Lon)
	}
	if w.Region != "" {
		checkID(&es, "region", w.Region)
	}
	if w.CapacityPerDay < 0 || w.CapacityPerDay > capacityPerDayMax {
		es.add("capacity_per_day", "%d outside 0..%d (0: no limit)", w.CapacityPerDay, capacityPerDayMax)
	}
	if w.State == "" {
		w.State = StateUp
	}
	if w.State != StateUp && w.State != StateDegraded && w.State != StateDown {
		es.add("state", "%q: want up, degraded or down", w.State)
	}
	if len(w.StateReason) > descriptionMax {
		es.add("state_reason", "longer than %d bytes", descriptionMax)
	}
	if len(w.Rates) == 0 {
		es.add("rates", "at least one rate (region \"*\" serves every region)")
	}
	if len(w.Rates) > RatesPerWarehouse {
		es.add("rates", "%d rates, at most %d", len(w.Rates), RatesPerWarehouse)
	}
	seen := map[string]bool{}
	for i, r := range w.Rates {
		f := fmt.Sprintf("rates[%d]", i)
		if r.Region != "*" {
			checkID(&es, f+".region", r.Region)
		}
		if seen[r.Region] {
			es.add(f+".region", "%q appears twice", r.Region)
		}
		seen[r.Region] = true
		if _, err := ParseMoney(r.Cost); err != nil {
			es.add(f+".cost", "%v", err)
		}
		if r.TransitDays < 0 || r.TransitDays > transitDaysMax {
			es.add(f+".transit_days", "%d outside 0..%d", r.TransitDays, transitDaysMax)
		}
	}
	if w.CarbonGramsPerParcel < 0 || w.CarbonGramsPerParcel > carbonGramsMax {
		es.add("carbon_grams_per_parcel", "%d outside 0..%d", w.CarbonGramsPerParcel, carbonGramsMax)
	}
	if w.Cutoff != "" {
		if _, err := parseCutoff(w.Cutoff); err != nil {
			es.add("cutoff", "%v", err)
		}
	}
	if w.Timezone == "" {
		w.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(w.Timezone); err != nil || strings.EqualFold(w.Timezone, "local") {
		es.add("timezone", "%q is not an IANA time zone", w.Timezone)
	}
	if len(w.Capabilities) > CapabilitiesMax {
		es.add("capabilities", "%d, at most %d", len(w.Capabilities), CapabilitiesMax)
	}
	for i, c := range w.Capabilities {
		checkID(&es, fmt.Sprintf("capabilities[%d]", i), c)
	}
	slices.Sort(w.Capabilities)
	w.Capabilities = slices.Compact(w.Capabilities)
	return es.err()
}

// parseCutoff reads "HH:MM" as minutes after midnight.
func parseCutoff(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM, 24-hour", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// ParseMoney reads a non-negative decimal string with at most two decimals
// ("12.5", "12.50", "0") as minor units.
func ParseMoney(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || (hasDot && frac == "") {
		return 0, fmt.Errorf("%q: want a decimal like \"12.50\"", s)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q: want a decimal like \"12.50\"", s)
		}
	}
	for len(frac) < 2 {
		frac += "0"
	}
	if len(whole) > 12 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	v, _ := strconv.ParseInt(whole+frac, 10, 64)
	if v > costMinorMax {
		return 0, fmt.Errorf("%q: above %s", s, FormatMoney(costMinorMax))
	}
	return v, nil
}

// FormatMoney writes minor units as a decimal string with two decimals.
func FormatMoney(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}

// Criterion is one of the scored criteria.
type Criterion int

// The criteria, in the order of Record's raw values.
const (
	Transit Criterion = iota
	Cost
	Splits
	Balance
	Utilisation
	Carbon
	Tier
	CriteriaCount
)

var criterionNames = [CriteriaCount]string{"transit", "cost", "splits", "balance", "utilisation", "carbon", "tier"}

// criterionUnits say what a raw value counts.
var criterionUnits = [CriteriaCount]string{"hours", "minor currency units", "extra shipments", "share of free stock",
	"share of day capacity", "grams CO2e", "priority-weighted hours"}

func (c Criterion) String() string {
	if c < 0 || c >= CriteriaCount {
		return fmt.Sprintf("criterion(%d)", int(c))
	}
	return criterionNames[c]
}

// Strategy is a named, versioned routing strategy.
type Strategy struct {
	Name        string `json:"name"`
	Version     uint64 `json:"version,omitempty"` // set by the grid: 1, 2, ...
	Description string `json:"description,omitempty"`
	// Weights per criterion name; criteria left out weigh 0.
	Weights map[string]float64 `json:"weights"`
	// MaxShipments bounds a split: 1 never splits. Default 2.
	MaxShipments int `json:"max_shipments,omitempty"`
	// TierPriority scales the tier criterion per customer tier ("vip": 2).
	TierPriority map[string]float64 `json:"tier_priority,omitempty"`
	// TierRules override the score for the orders of some tiers.
	TierRules []TierRule `json:"tier_rules,omitempty"`
	// CreatedAt and CreatedBy are set by the grid.
	CreatedAt string `json:"created_at,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`

	weights [CriteriaCount]float64
	rules   map[string]tierRule
}

// Tier rules.
const (
	// RuleFastestWithinCostCap picks the plan that delivers first among those
	// whose shipping cost is at most CostCap (all plans when none is);
	// the score breaks ties.
	RuleFastestWithinCostCap = "fastest_within_cost_cap"
)

// TierRule is a rule for the orders of one customer tier.
type TierRule struct {
	Tier    string `json:"tier"`
	Rule    string `json:"rule"`
	CostCap string `json:"cost_cap,omitempty"`
}

type tierRule struct {
	rule    string
	costCap int64 // minor units; -1: no cap
}

// ParseStrategy decodes and validates a strategy document; name, when not
// empty, is the name of the URL.
func ParseStrategy(data []byte, name string) (*Strategy, error) {
	var s Strategy
	if err := decodeStrict(data, &s); err != nil {
		return nil, Errors{err.(*FieldError)}
	}
	if s.Name == "" {
		s.Name = name
	} else if name != "" && s.Name != name {
		return nil, Errors{{Field: "name", Detail: fmt.Sprintf("%q differs from the URL's %q", s.Name, name)}}
	}
	s.Version, s.CreatedAt, s.CreatedBy = 0, "", ""
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks the strategy and compiles its weights and rules.
func (s *Strategy) Validate() error {
	var es Errors
	checkID(&es, "name", s.Name)
	if len(s.Description) > descriptionMax {
		es.add("description", "longer than %d bytes", descriptionMax)
	}
	if len(s.Weights) == 0 {
		es.add("weights", "required: at least one of %s", strings.Join(criterionNames[:], ", "))
	}
	s.weights = [CriteriaCount]float64{}
	positive := false
	for name, w := range s.Weights {
		c := slices.Index(criterionNames[:], name)
		f := "weights." + name
		switch {
		case c < 0:
			es.add(f, "unknown criterion; want one of %s", strings.Join(criterionNames[:], ", "))
			continue
		case math.IsNaN(w) || math.IsInf(w, 0) || w < 0 || w > WeightMax:
			es.add(f, "%v outside 0..%d", w, WeightMax)
			continue
		}
		s.weights[c] = w
		positive = positive || w > 0
	}
	if len(s.Weights) > 0 && !positive {
		es.add("weights", "every weight is 0: at least one must be above 0")
	}
	if s.MaxShipments == 0 {
		s.MaxShipments = 2
	}
	if s.MaxShipments < 1 || s.MaxShipments > MaxShipmentsLimit {
		es.add("max_shipments", "%d outside 1..%d", s.MaxShipments, MaxShipmentsLimit)
	}
	for tier, p := range s.TierPriority {
		checkID(&es, "tier_priority."+tier, tier)
		if math.IsNaN(p) || p < 0 || p > TierPriorityMax {
			es.add("tier_priority."+tier, "%v outside 0..%d", p, TierPriorityMax)
		}
	}
	if len(s.TierRules) > TierRulesMax {
		es.add("tier_rules", "%d rules, at most %d", len(s.TierRules), TierRulesMax)
	}
	s.rules = map[string]tierRule{}
	for i, r := range s.TierRules {
		f := fmt.Sprintf("tier_rules[%d]", i)
		checkID(&es, f+".tier", r.Tier)
		if _, dup := s.rules[r.Tier]; dup {
			es.add(f+".tier", "%q has a rule already", r.Tier)
		}
		tr := tierRule{rule: r.Rule, costCap: -1}
		if r.Rule != RuleFastestWithinCostCap {
			es.add(f+".rule", "%q: want %s", r.Rule, RuleFastestWithinCostCap)
		}
		if r.CostCap != "" {
			v, err := ParseMoney(r.CostCap)
			if err != nil {
				es.add(f+".cost_cap", "%v", err)
			}
			tr.costCap = v
		}
		s.rules[r.Tier] = tr
	}
	return es.err()
}

// Weight returns the weight of criterion c.
func (s *Strategy) Weight(c Criterion) float64 { return s.weights[c] }

// Ref is "name@version", or "name@draft" for a document not stored.
func (s *Strategy) Ref() string {
	if s.Version == 0 {
		return s.Name + "@draft"
	}
	return fmt.Sprintf("%s@%d", s.Name, s.Version)
}

// DefaultStrategy routes when no strategy was ever activated: one shipment
// whenever possible, from the warehouse with the most free stock, then the
// cheapest and fastest.
func DefaultStrategy() *Strategy {
	s := &Strategy{Name: StrategyNameDefault, Description: "built in: most free stock, then cost and transit",
		Weights: map[string]float64{"balance": 4, "cost": 1, "transit": 1, "splits": 2}, MaxShipments: MaxShipmentsLimit}
	if err := s.Validate(); err != nil {
		panic(fmt.Sprintf("routing: default strategy: %v", err))
	}
	return s
}

// Selection is which strategy versions route live orders.
type Selection struct {
	Strategy string `json:"strategy"`
	Version  uint64 `json:"version"`
	// Candidate routes SharePercent of orders, chosen by a hash of the
	// order id (a retry routes alike), for an A/B comparison.
	Candidate *CandidateArm `json:"candidate,omitempty"`
	// ActivatedAt and ActivatedBy are set by the grid.
	ActivatedAt string `json:"activated_at,omitempty"`
	ActivatedBy string `json:"activated_by,omitempty"`
}

// CandidateArm is the candidate side of an A/B split.
type CandidateArm struct {
	Strategy     string  `json:"strategy"`
	Version      uint64  `json:"version"`
	SharePercent float64 `json:"share_percent"`
}

// ParseSelection decodes and checks a selection's shape; versions 0 mean
// "the newest" and are resolved against the catalog by the caller.
func ParseSelection(data []byte) (*Selection, error) {
	var s Selection
	if err := decodeStrict(data, &s); err != nil {
		return nil, Errors{err.(*FieldError)}
	}
	s.ActivatedAt, s.ActivatedBy = "", ""
	var es Errors
	checkID(&es, "strategy", s.Strategy)
	if c := s.Candidate; c != nil {
		checkID(&es, "candidate.strategy", c.Strategy)
		if math.IsNaN(c.SharePercent) || c.SharePercent <= 0 || c.SharePercent >= 100 {
			es.add("candidate.share_percent", "%v outside (0, 100)", c.SharePercent)
		}
		if c.Strategy == s.Strategy && c.Version == s.Version && c.Version != 0 {
			es.add("candidate", "the same version as the active strategy")
		}
	}
	return &s, es.err()
}

// armBuckets is the resolution of an A/B share: 0.01%.
const armBuckets = 10_000

// Arm tells whether the order with this id goes to the candidate.
func (s *Selection) Arm(orderID string) bool {
	if s == nil || s.Candidate == nil {
		return false
	}
	// FNV-1a: stable across versions and processes.
	h := uint64(14695981039346656037)
	for i := 0; i < len(orderID); i++ {
		h ^= uint64(orderID[i])
		h *= 1099511628211
	}
	return float64(h%armBuckets) < s.Candidate.SharePercent*armBuckets/100
}
