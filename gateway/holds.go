package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ordergrid/ordergrid/catalog"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	purchase "github.com/ordergrid/ordergrid/limits"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/screening"
)

// Holds, purchase limits and the risk model: the review queue of the
// orders held at intake (GET /v1/holds, POST /v1/holds/{id}/decide), the
// limit rules (/v1/limits), an order's risk explanation
// (GET /v1/orders/{id}/risk) and the grid's risk model (/v1/risk/model).

// HoldQueue is the review queue (actors.Node in a node).
type HoldQueue interface {
	// Holds lists undecided holds (of reason, when not empty), oldest
	// first, after the hold (afterAt, afterID).
	Holds(reason string, afterAt int64, afterID string, limit int) ([]*gridpb.OrderRecord, error)
	// HoldCounts counts the undecided holds by reason.
	HoldCounts() map[string]int64
	// DecideHold records a reviewer's decision (release or cancel).
	DecideHold(ctx context.Context, principal, id, decision, reason string) (*gridpb.OrderGrainResponse, error)
}

// LimitRules are the purchase limits (catalog.Admin in a node). A refused
// rule is an error wrapping catalog.ErrRoutingInput or a limits.FieldError.
type LimitRules interface {
	Limits() *purchase.Set
	PutLimit(ctx context.Context, principal string, r *purchase.Rule, expected uint64) (*purchase.Rule, error)
	DeleteLimit(ctx context.Context, principal, id string, expected uint64) error
}

// RiskModels are the risk model the node scores with (its
// screening.Screener).
type RiskModels interface {
	// Model is the model the node scores with (nil: none).
	Model() *risk.Model
	// Thresholds are the hold and refuse thresholds.
	Thresholds() (hold, refuse float64)
}

// RiskModelStore stores the grid's risk model (catalog.Admin).
type RiskModelStore interface {
	PutRiskModel(ctx context.Context, principal string, doc []byte) (string, error)
	DeleteRiskModel(ctx context.Context, principal string) error
}

// Bounds of the review queue's routes.
const (
	holdsListedMax      = 500
	decisionReasonMax   = 512
	holdReasonsListed   = "limit, address, risk, duplicate"
	riskModelBodyMaxMul = 32 // the model route takes BodyBytesMax times this
)

func (g *Gateway) holdRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	api("GET /v1/holds", g.getHolds)
	api("POST /v1/holds/{id}/decide", g.postDecideHold)
	api("GET /v1/limits", g.getLimits)
	api("GET /v1/limits/{id}", g.getLimit)
	api("PUT /v1/limits/{id}", g.putLimit)
	api("DELETE /v1/limits/{id}", g.deleteLimit)
	api("GET /v1/orders/{id}/risk", g.getOrderRisk)
	api("GET /v1/risk/model", g.getRiskModel)
	api("PUT /v1/risk/model", g.putRiskModel)
	api("DELETE /v1/risk/model", g.deleteRiskModel)
}

// notWired answers a route whose part the node was started without.
func notWired(what string) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Name: "not-wired", Title: "Not available on this node",
		Detail: what + " is not wired on this node"}
}

// holdJSON is one held order in GET /v1/holds.
type holdJSON struct {
	Order     string            `json:"order"`
	Reason    string            `json:"reason"`
	Findings  []*pb.HoldFinding `json:"findings"`
	HeldAt    string            `json:"held_at"`
	Until     string            `json:"until"`
	Channel   string            `json:"channel"`
	Total     string            `json:"total"`
	Currency  string            `json:"currency"`
	Lines     int               `json:"lines"`
	RiskScore *float64          `json:"risk_score,omitempty"`
	Risk      string            `json:"risk_verdict,omitempty"`
	Cursor    string            `json:"cursor"`
}

// getHolds lists the review queue: ?reason= (limit, address, risk,
// duplicate), ?after= (a cursor from the last page), ?limit=.
func (g *Gateway) getHolds(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading the review queue", RoleOps); p != nil {
		return p
	}
	if g.holds == nil {
		return notWired("the review queue")
	}
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"reason", "after", "limit"}, k) {
			return malformed(k, k+": unknown parameter; use reason, after, limit")
		}
	}
	reason := q.Get("reason")
	if reason != "" && !slices.Contains(strings.Split(holdReasonsListed, ", "), reason) {
		return malformed("reason", fmt.Sprintf("reason %q: one of %s", reason, holdReasonsListed))
	}
	var afterAt int64
	var afterID string
	if a := q.Get("after"); a != "" {
		at, id, ok := strings.Cut(a, ":")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || id == "" {
			return malformed("after", "after: the cursor of the last hold of the page before")
		}
		afterAt, afterID = n, id
	}
	limit, p := limitParam(r, 100, holdsListedMax)
	if p != nil {
		return p
	}
	orders, err := g.holds.Holds(reason, afterAt, afterID, limit)
	if err != nil {
		return g.grainProblem(err, "holds", "")
	}
	out := make([]holdJSON, 0, len(orders))
	for _, o := range orders {
		h := o.Hold
		j := holdJSON{Order: o.Id, Reason: h.Reason, Findings: findingsView(h.Findings), HeldAt: timeString(h.HeldUnixNano),
			Until: timeString(h.UntilUnixNano), Channel: o.Channel, Total: o.Total, Currency: o.Currency, Lines: len(o.Lines),
			Cursor: strconv.FormatInt(h.HeldUnixNano, 10) + ":" + o.Id}
		if o.Risk != nil {
			score := o.Risk.Score
			j.RiskScore, j.Risk = &score, o.Risk.Verdict
		}
		out = append(out, j)
	}
	body := map[string]any{"holds": out, "counts": g.holds.HoldCounts()}
	if len(out) == limit {
		body["next"] = out[len(out)-1].Cursor
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// decision is the body of POST /v1/holds/{id}/decide.
type decision struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

func (g *Gateway) postDecideHold(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "deciding holds", RoleOps); p != nil {
		return p
	}
	if g.holds == nil {
		return notWired("the review queue")
	}
	var d decision
	if p := g.decode(w, r, &d, false); p != nil {
		return p
	}
	var v violations
	if d.Decision != "release" && d.Decision != "cancel" {
		v.add("decision", "release or cancel")
	}
	if strings.TrimSpace(d.Reason) == "" {
		v.add("reason", "is required: the reviewer's reason, for the audit log")
	} else {
		v.text("reason", d.Reason, true, decisionReasonMax)
	}
	if len(v) > 0 {
		return invalid(v...)
	}
	id := r.PathValue("id")
	res, err := g.holds.DecideHold(r.Context(), principalName(r.Context()), id, d.Decision, d.Reason)
	if err != nil {
		return g.grainProblem(err, "order", id)
	}
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK:
		writeJSON(w, http.StatusOK, orderJSON(orderView(res.Order)))
		return nil
	case gridpb.Outcome_OUTCOME_NOT_FOUND:
		return notFound("order", id)
	default:
		cur := res.Order.GetStatus()
		return &Problem{Status: http.StatusConflict, Name: "not-held", Title: "The order is not held", Detail: res.Detail,
			CurrentStatus: cur, Errors: []*pb.FieldViolation{{Field: "id", Detail: res.Detail}}}
	}
}

// limitsProblem answers a refused limit rule.
func (g *Gateway) limitsProblem(err error, id string) *Problem {
	var fe *purchase.FieldError
	if errors.As(err, &fe) {
		if fe.Field == "body" || fe.Malformed { // not JSON of a rule's shape: 400, as every other body
			return malformed(fe.Field, fe.Error())
		}
		return invalid(&pb.FieldViolation{Field: fe.Field, Detail: fe.Detail})
	}
	if errors.Is(err, catalog.ErrRoutingInput) {
		return invalid(detailViolation(strings.TrimPrefix(err.Error(), catalog.ErrRoutingInput.Error()+": "), "body"))
	}
	return g.changeProblem(err, "limit", id)
}

func (g *Gateway) getLimits(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading purchase limits", RoleOps, RoleCompliance); p != nil {
		return p
	}
	if g.limitRules == nil {
		return notWired("purchase limits")
	}
	rules := g.limitRules.Limits().Rules()
	if rules == nil {
		rules = []*purchase.Rule{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": rules})
	return nil
}

func (g *Gateway) getLimit(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading purchase limits", RoleOps, RoleCompliance); p != nil {
		return p
	}
	if g.limitRules == nil {
		return notWired("purchase limits")
	}
	rule, ok := g.limitRules.Limits().Rule(r.PathValue("id"))
	if !ok {
		return notFound("limit", r.PathValue("id"))
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(rule.Version, 10)))
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (g *Gateway) putLimit(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing purchase limits", RoleOps); p != nil {
		return p
	}
	if g.limitRules == nil {
		return notWired("purchase limits")
	}
	raw, p := g.rawBody(w, r)
	if p != nil {
		return p
	}
	expected, p := expectedVersion(r)
	if p != nil {
		return p
	}
	id := r.PathValue("id")
	rule, err := purchase.Parse(raw, id)
	if err != nil {
		return g.limitsProblem(err, id)
	}
	_, existed := g.limitRules.Limits().Rule(id)
	stored, err := g.limitRules.PutLimit(r.Context(), principalName(r.Context()), rule, expected)
	if err != nil {
		return g.limitsProblem(err, id)
	}
	code := http.StatusOK
	if !existed {
		code = http.StatusCreated
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(stored.Version, 10)))
	writeJSON(w, code, stored)
	return nil
}

func (g *Gateway) deleteLimit(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing purchase limits", RoleOps); p != nil {
		return p
	}
	if g.limitRules == nil {
		return notWired("purchase limits")
	}
	expected, p := expectedVersion(r)
	if p != nil {
		return p
	}
	id := r.PathValue("id")
	if err := g.limitRules.DeleteLimit(r.Context(), principalName(r.Context()), id, expected); err != nil {
		if isNotFound(err) {
			return notFound("limit", id)
		}
		return g.limitsProblem(err, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// contributionJSON is one feature's part of a risk score.
type contributionJSON struct {
	Feature      string  `json:"feature"`
	Value        any     `json:"value"`
	Contribution float64 `json:"contribution"`
}

// getOrderRisk explains an order's risk score: the model, the
// thresholds' verdict and each feature's input and contribution
// (log-odds), largest first.
func (g *Gateway) getOrderRisk(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading risk scores", RoleOps, RoleCompliance); p != nil {
		return p
	}
	id := r.PathValue("id")
	o, found, err := g.grid.ReadOrder(id)
	if err != nil {
		return g.grainProblem(err, "order", id)
	}
	if !found {
		return notFound("order", id)
	}
	if o.Risk == nil {
		return &Problem{Status: http.StatusNotFound, Name: "no-risk-score", Title: "No risk score",
			Detail: "order " + id + " was created without a risk score (holds.risk_model off, or before scoring)"}
	}
	rk := o.Risk
	names := screening.GroupedFeatureNames()
	var cs []contributionJSON
	for i, name := range names {
		c := contributionJSON{Feature: name}
		if i < len(rk.Contributions) {
			c.Contribution = float64(rk.Contributions[i])
		}
		switch {
		case name == "channel":
			c.Value = o.Channel
		case i < len(rk.Features):
			c.Value = featureValue(name, float64(rk.Features[i]))
		}
		cs = append(cs, c)
	}
	slices.SortStableFunc(cs, func(a, b contributionJSON) int {
		return -cmpFloat(math.Abs(a.Contribution), math.Abs(b.Contribution))
	})
	body := map[string]any{"order": id, "score": rk.Score, "verdict": rk.Verdict, "model": rk.Model, "base": rk.Base,
		"contributions": cs}
	if g.riskModels != nil {
		hold, refuse := g.riskModels.Thresholds()
		body["thresholds"] = map[string]float64{"hold": hold, "refuse": refuse}
	}
	if o.Hold != nil {
		body["hold"] = orderView(o).Hold
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// featureValue renders a feature's input as its JSON type.
func featureValue(name string, v float64) any {
	switch name {
	case "region_mismatch", "first_order":
		return v != 0
	case "hour_of_day":
		return int(v)
	}
	return v
}

// getRiskModel describes the model this node scores with: its version,
// training, held-out evaluation and the thresholds.
func (g *Gateway) getRiskModel(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading the risk model", RoleOps, RoleCompliance); p != nil {
		return p
	}
	if g.riskModels == nil {
		return notWired("risk scoring")
	}
	hold, refuse := g.riskModels.Thresholds()
	body := map[string]any{"thresholds": map[string]float64{"hold": hold, "refuse": refuse}, "features": screening.GroupedFeatureNames()}
	m := g.riskModels.Model()
	if m == nil {
		body["model"] = nil
		writeJSON(w, http.StatusOK, body)
		return nil
	}
	model := map[string]any{"version": m.Version(), "trained": m.Trained(), "trees": len(m.Trees())}
	if e, ok := m.Evaluation(); ok {
		model["evaluation"] = e
	}
	body["model"] = model
	writeJSON(w, http.StatusOK, body)
	return nil
}

// putRiskModel makes a model file the grid's: every node scores with it
// from its next catalog read. A file that does not load is refused (422
// naming the field) and the model before keeps serving.
func (g *Gateway) putRiskModel(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing the risk model", RoleOps); p != nil {
		return p
	}
	if g.riskStore == nil {
		return notWired("the grid's risk model")
	}
	limit := g.opts.BodyBytesMax * riskModelBodyMaxMul
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &Problem{Status: http.StatusRequestEntityTooLarge, Name: "body-too-large", Title: "Body too large",
				Detail: fmt.Sprintf("a model file is at most %d bytes here", limit)}
		}
		return malformed("body", "reading the body: "+err.Error())
	}
	if _, err := risk.Parse(raw); err != nil {
		return riskModelProblem(err)
	}
	version, err := g.riskStore.PutRiskModel(r.Context(), principalName(r.Context()), raw)
	if err != nil {
		if errors.Is(err, catalog.ErrRoutingInput) {
			return riskModelProblem(err)
		}
		return g.grainProblem(err, "risk model", "")
	}
	writeJSON(w, http.StatusOK, map[string]any{"model": version})
	return nil
}

func riskModelProblem(err error) *Problem {
	var fe *risk.FieldError
	if errors.As(err, &fe) {
		return invalid(&pb.FieldViolation{Field: "model." + fe.Field, Detail: fe.Detail})
	}
	return invalid(&pb.FieldViolation{Field: "model", Detail: err.Error()})
}

func (g *Gateway) deleteRiskModel(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing the risk model", RoleOps); p != nil {
		return p
	}
	if g.riskStore == nil {
		return notWired("the grid's risk model")
	}
	if err := g.riskStore.DeleteRiskModel(r.Context(), principalName(r.Context())); err != nil {
		if isNotFound(err) {
			return notFound("risk model", "grid")
		}
		return g.grainProblem(err, "risk model", "")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// isNotFound reports whether a grid call failed on something not there.
func isNotFound(err error) bool { return failure.OutcomeOf(err) == gridpb.Outcome_OUTCOME_NOT_FOUND }
