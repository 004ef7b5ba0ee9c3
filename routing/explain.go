package routing

import (
	"fmt"
	"math"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Explanation is a routing decision in words and numbers: what
// GET /v1/orders/{id}/routing answers.
type Explanation struct {
	Order     string `json:"order"`
	Strategy  string `json:"strategy"` // name@version
	Arm       string `json:"arm"`
	DecidedAt string `json:"decided_at"`
	// Attempts above 1: a reservation found the chosen warehouse short and
	// the order was routed again with fresher stock.
	Attempts         uint32               `json:"attempts"`
	Lines            []ExplainedLine      `json:"lines"`
	Winner           *ExplainedPlan       `json:"winner"`
	RunnerUp         *ExplainedPlan       `json:"runner_up,omitempty"`
	Candidates       []*ExplainedPlan     `json:"candidates"`
	PlansConsidered  uint32               `json:"plans_considered"`
	PlansTruncated   bool                 `json:"plans_truncated,omitempty"`
	Excluded         []ExplainedExclusion `json:"excluded"`
	Rule             string               `json:"rule,omitempty"`
	DegradedFallback bool                 `json:"degraded_fallback,omitempty"`
	Flip             *ExplainedFlip       `json:"flip,omitempty"`
}

// ExplainedLine is one SKU of the order and the warehouse that ships it.
type ExplainedLine struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	Warehouse string `json:"warehouse"`
}

// ExplainedPlan is one candidate plan with its score, criterion by criterion.
type ExplainedPlan struct {
	Warehouses []string             `json:"warehouses"`
	Shipments  int                  `json:"shipments"`
	ShipDays   []int32              `json:"ship_days"`
	ETA        string               `json:"eta"`
	Score      float64              `json:"score"`
	Criteria   []ExplainedCriterion `json:"criteria"`
}

// ExplainedCriterion is one criterion of one plan: its raw value, that value
// normalised over the candidates (0 best, 1 worst), the weight and the
// product, which the score sums.
type ExplainedCriterion struct {
	Criterion    string  `json:"criterion"`
	Raw          float64 `json:"raw"`
	Unit         string  `json:"unit"`
	Normalised   float64 `json:"normalised"`
	Weight       float64 `json:"weight"`
	Contribution float64 `json:"contribution"`
}

// ExplainedExclusion is a warehouse in no plan and the constraint that kept it out.
type ExplainedExclusion struct {
	Warehouse  string `json:"warehouse,omitempty"`
	Constraint string `json:"constraint"`
	Detail     string `json:"detail"`
}

// ExplainedFlip is the smallest single weight change that changes the winner.
type ExplainedFlip struct {
	Criterion  string   `json:"criterion"`
	WeightFrom float64  `json:"weight_from"`
	WeightTo   float64  `json:"weight_to"`
	Winner     []string `json:"winner"`
	Detail     string   `json:"detail"`
}

// Explain renders a record with the weights of the strategy version that made it.
func Explain(orderID string, rec *gridpb.RoutingRecord, s *Strategy) (*Explanation, error) {
	if s == nil || s.Name != rec.Strategy || s.Version != rec.Version {
		return nil, fmt.Errorf("routing: record of %s@%d explained with another strategy", rec.Strategy, rec.Version)
	}
	e := &Explanation{Order: orderID, Strategy: fmt.Sprintf("%s@%d", rec.Strategy, rec.Version), Arm: rec.Arm,
		DecidedAt: time.Unix(0, rec.DecidedUnixNano).UTC().Format(time.RFC3339Nano), Attempts: rec.Attempts,
		PlansConsidered: rec.PlansConsidered, PlansTruncated: rec.PlansTruncated, Rule: rec.Rule,
		DegradedFallback: rec.DegradedFallback, Candidates: []*ExplainedPlan{}, Excluded: []ExplainedExclusion{}}
	for _, c := range rec.Candidates {
		p := &ExplainedPlan{Warehouses: c.Warehouses, Shipments: len(c.Warehouses), ShipDays: c.ShipDays,
			ETA: time.Unix(0, c.EtaUnixNano).UTC().Format(time.RFC3339), Score: round(c.Score)}
		for i := 0; i < int(CriteriaCount) && i < len(c.Raw); i++ {
			norm := 0.0
			if i < len(rec.RangeMin) && rec.RangeMax[i] > rec.RangeMin[i] {
				norm = (c.Raw[i] - rec.RangeMin[i]) / (rec.RangeMax[i] - rec.RangeMin[i])
			}
			w := s.weights[i]
			p.Criteria = append(p.Criteria, ExplainedCriterion{Criterion: criterionNames[i], Raw: round(c.Raw[i]),
				Unit: criterionUnits[i], Normalised: round(norm), Weight: w, Contribution: round(w * norm)})
		}
		e.Candidates = append(e.Candidates, p)
	}
	if len(e.Candidates) > 0 {
		e.Winner = e.Candidates[0]
		for i, sku := range rec.LineSkus {
			l := ExplainedLine{SKU: sku}
			if i < len(rec.LineQtys) {
				l.Qty = rec.LineQtys[i]
			}
			if c := rec.Candidates[0]; i < len(c.LineShipment) && int(c.LineShipment[i]) < len(c.Warehouses) {
				l.Warehouse = c.Warehouses[c.LineShipment[i]]
			}
			e.Lines = append(e.Lines, l)
		}
	}
	if len(e.Candidates) > 1 {
		e.RunnerUp = e.Candidates[1]
	}
	for _, x := range rec.Excluded {
		e.Excluded = append(e.Excluded, ExplainedExclusion{Warehouse: x.Warehouse, Constraint: x.Constraint, Detail: x.Detail})
	}
	switch {
	case rec.Flip != nil:
		f := rec.Flip
		dir := "raising"
		if f.WeightTo < f.WeightFrom {
			dir = "lowering"
		}
		e.Flip = &ExplainedFlip{Criterion: f.Criterion, WeightFrom: f.WeightFrom, WeightTo: round(f.WeightTo), Winner: f.Winner,
			Detail: fmt.Sprintf("%s the %s weight from %g past %g makes %v win", dir, f.Criterion, f.WeightFrom, round(f.WeightTo), f.Winner)}
	case rec.Rule != "":
		e.Flip = &ExplainedFlip{Detail: "the tier rule chose the winner: no weight change alone changes it"}
	case len(rec.Candidates) == 1:
		e.Flip = &ExplainedFlip{Detail: "the only plan that passed the constraints: no weight change changes it"}
	default:
		e.Flip = &ExplainedFlip{Detail: "the candidates tie on every weighted criterion or no weight within 0.." + fmt.Sprint(WeightMax) + " changes the winner"}
	}
	return e, nil
}

// round keeps six significant decimals, so answers read well and compare stably.
func round(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	return math.Round(v*1e6) / 1e6
}
