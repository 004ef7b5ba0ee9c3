package risk

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Details of a reviewer's decision as the audit log records it: the
// details of a hold_decided event (the grid's statemachine writes them).
const (
	// DetailDecision is DecisionRelease or DecisionCancel.
	DetailDecision = "decision"
	// DetailOverride is "true" when the reviewer decided against the
	// model's verdict, "false" when with it; absent without a score.
	DetailOverride = "override"
	// DetailScore is the order's score, as "0.1523"; absent without one.
	DetailScore = "risk_score"
	// DetailModel is the version of the model that scored the order.
	DetailModel = "risk_model"
	// DetailFeatures is the score's inputs, a Features JSON object; absent
	// when the order had no score.
	DetailFeatures = "features"
)

// Decision is a reviewer's decision on a held order as the audit log
// records it, read by ParseDecision.
type Decision struct {
	// Override is the decision in an overrides file's form. Its Features,
	// Score and Model are zero when Scored is false.
	Override Override
	// Scored says the event holds the score's features: only then is the
	// decision training data.
	Scored bool
	// AgainstModel says the reviewer decided against the model's verdict
	// (DetailOverride "true").
	AgainstModel bool
}

// ParseDecision reads the details of an order's hold_decided event of the
// audit log. An error is a *FieldError naming the order ("order") or the
// detail ("details.decision", "details.features.hour_of_day"). A decision
// without DetailFeatures is valid and not Scored.
func ParseDecision(orderID string, details map[string]string) (Decision, error) {
	var d Decision
	if orderID == "" || len(orderID) > OrderIDBytesMax {
		return Decision{}, fieldErr("order", "must be 1..%d bytes, got %d", OrderIDBytesMax, len(orderID))
	}
	o := Override{OrderID: orderID, Decision: details[DetailDecision]}
	if o.Decision != DecisionRelease && o.Decision != DecisionCancel {
		return Decision{}, fieldErr("details."+DetailDecision, "must be %q or %q, got %q", DecisionRelease, DecisionCancel, o.Decision)
	}
	if s, ok := details[DetailOverride]; ok {
		against, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			return Decision{}, fieldErr("details."+DetailOverride, `must be "true" or "false", got %q`, s)
		}
		d.AgainstModel = against
	}
	raw, ok := details[DetailFeatures]
	if !ok {
		d.Override = o
		return d, nil
	}
	f, err := ParseFeatures([]byte(raw))
	if err != nil {
		return Decision{}, underField("details."+DetailFeatures, err)
	}
	o.Features = f
	s, ok := details[DetailScore]
	if !ok {
		return Decision{}, fieldErr("details."+DetailScore, "missing beside the features")
	}
	if o.Score, err = strconv.ParseFloat(s, 64); err != nil || math.IsNaN(o.Score) || o.Score < 0 || o.Score > 1 {
		return Decision{}, fieldErr("details."+DetailScore, "must be a number 0..1, got %q", s)
	}
	o.Model = details[DetailModel]
	if err := o.Validate(); err != nil {
		return Decision{}, underField("details", err)
	}
	d.Override, d.Scored = o, true
	return d, nil
}

// underField returns err as a *FieldError under field: a *FieldError's
// field prefixed, any other error as field's detail.
func underField(field string, err error) *FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: field + "." + fe.Field, Detail: fe.Detail}
	}
	return &FieldError{Field: field, Detail: err.Error()}
}

// WriteOverrides writes the overrides as JSON Lines, one per line, in the
// form ReadOverrides reads.
func WriteOverrides(w io.Writer, overrides []Override) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range overrides {
		if err := enc.Encode(&overrides[i]); err != nil {
			return fmt.Errorf("risk: writing override %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("risk: writing overrides: %w", err)
	}
	return nil
}
