package statemachine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	"github.com/ordergrid/ordergrid/risk"
)

// Holds: an order held at intake (a purchase limit, an address check or
// its risk score; OrderRecord.hold) is created on_hold, its pay-by time
// the hold's timeout: undecided by then it expires like an unpaid order,
// and its reservations are released. A reviewer's decide_hold releases it
// to pending payment (with a new pay-by time) or cancels it; the decision
// is a hold_decided event of the order, in the audit log, before the
// status change it makes. The undecided holds are indexed in memory.

// Decisions on a held order.
const (
	DecisionRelease = "release"
	DecisionCancel  = "cancel"
)

// Hold reasons.
const (
	HoldLimit     = "limit"
	HoldAddress   = "address"
	HoldRisk      = "risk"
	HoldDuplicate = "duplicate"
)

// EventHoldDecided is the event of a reviewer's decision on a held order.
const EventHoldDecided = "hold_decided"

// holdIndex holds the partition's orders held at intake and undecided.
type holdIndex struct {
	mu   sync.Mutex
	held map[string]heldOrder
}

type heldOrder struct {
	reason string
	at     int64
}

func (h *holdIndex) add(o *gridpb.OrderRecord) {
	h.mu.Lock()
	h.held[o.Id] = heldOrder{reason: o.Hold.Reason, at: o.Hold.HeldUnixNano}
	h.mu.Unlock()
}

func (h *holdIndex) remove(id string) {
	h.mu.Lock()
	delete(h.held, id)
	h.mu.Unlock()
}

// undecided reports whether o is held at intake and not decided.
func undecided(o *gridpb.OrderRecord) bool {
	return o.Status == lifecycle.StatusOnHold && o.Hold != nil && o.Hold.Decision == ""
}

// HeldOrder names one undecided hold.
type HeldOrder struct {
	ID, Reason string
	HeldAt     int64
}

// Holds returns up to limit of the partition's undecided holds (of reason,
// when not empty) held after (at, id) in (held time, id) order. It reads
// this replica's in-memory index.
func (m *Machine) Holds(reason string, afterAt int64, afterID string, limit int) []HeldOrder {
	var out []HeldOrder
	m.holds.mu.Lock()
	for id, h := range m.holds.held {
		if reason != "" && h.reason != reason {
			continue
		}
		if h.at < afterAt || h.at == afterAt && id <= afterID {
			continue
		}
		out = append(out, HeldOrder{ID: id, Reason: h.reason, HeldAt: h.at})
	}
	m.holds.mu.Unlock()
	slices.SortFunc(out, func(a, b HeldOrder) int { return cmp.Or(cmp.Compare(a.HeldAt, b.HeldAt), strings.Compare(a.ID, b.ID)) })
	return out[:min(len(out), limit)]
}

// HoldCounts counts the partition's undecided holds by reason.
func (m *Machine) HoldCounts() map[string]int {
	out := map[string]int{}
	m.holds.mu.Lock()
	for _, h := range m.holds.held {
		out[h.reason]++
	}
	m.holds.mu.Unlock()
	return out
}

// heldDetails are the created event's details of a held order: why, and
// its score. (An accepted order's score stays on its record: the log's
// leaves of the hot path carry no more than they must.)
func heldDetails(o *gridpb.OrderRecord, d map[string]string) {
	if o.Hold == nil {
		return
	}
	if r := o.Risk; r != nil {
		d["risk_score"] = fmt.Sprintf("%.4f", r.Score)
		d["risk_verdict"] = r.Verdict
		d["risk_model"] = r.Model
	}
	if h := o.Hold; h != nil {
		d["hold"] = h.Reason
		codes := make([]string, len(h.Findings))
		for i, f := range h.Findings {
			codes[i] = f.Code
		}
		d["hold_findings"] = strings.Join(codes, ",")
	}
}

// decideHold judges a reviewer's decision on a held order.
func (t *txn) decideHold(c *gridpb.DecideHoldCommand) *Result {
	o, ok := t.order(c.OrderId)
	if !ok {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	if c.Decision != DecisionRelease && c.Decision != DecisionCancel {
		return &Result{Detail: "decide_hold: decision must be release or cancel"}
	}
	if !undecided(o) {
		detail := "the order is not held"
		if h := o.Hold; h != nil && h.Decision != "" {
			detail = fmt.Sprintf("the hold was decided already (%s)", h.Decision)
		} else if o.Hold != nil {
			detail = fmt.Sprintf("the order is no longer held: it is %s", o.Status)
		}
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Order: o, Detail: detail}
	}
	if t.at >= o.PayByUnixNano {
		// Its time is up: the expiry sweep takes it, not a late decision.
		return &Result{Outcome: gridpb.Outcome_OUTCOME_EXPIRED, Order: o, Detail: "the hold timed out; the order expires"}
	}
	h := o.Hold
	h.Decision, h.DecidedBy, h.DecisionReason, h.DecidedUnixNano = c.Decision, t.principal, c.Reason, t.at
	details := map[string]string{risk.DetailDecision: c.Decision, "hold": h.Reason}
	if c.Reason != "" {
		details["reason"] = c.Reason
	}
	if r := o.Risk; r != nil {
		// An override: the person decided against the model's verdict.
		modelStops := r.Verdict != "accept"
		details[risk.DetailOverride] = strconv.FormatBool(modelStops != (c.Decision == DecisionCancel))
		details[risk.DetailScore] = fmt.Sprintf("%.4f", r.Score)
		details[risk.DetailModel] = r.Model
		// The score's inputs (nothing personal), so a verified audit
		// export of the decisions is training data (ordergrid risk train
		// --overrides).
		if f, ok := risk.FromColumns(float64s(r.Features), o.Channel); ok {
			if b, err := json.Marshal(f); err == nil {
				details[risk.DetailFeatures] = string(b)
			}
		}
	}
	t.addEvent(o, EventHoldDecided, details)
	if c.Decision == DecisionRelease {
		if c.PayByUnixNano > 0 {
			o.PayByUnixNano = c.PayByUnixNano
		}
		t.moveTo(o, lifecycle.StatusPendingPayment, map[string]string{"reason": "hold released"})
	} else {
		t.moveTo(o, lifecycle.StatusCancelled, map[string]string{"reason": "hold cancelled"})
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}
}

// float64s widens a risk record's float32 columns.
func float64s(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
