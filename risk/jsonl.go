package risk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Limits of the JSON Lines files.
const (
	// LineBytesMax bounds one line of a JSON Lines file.
	LineBytesMax = 1 << 20
	// OrderIDBytesMax bounds an override's order_id.
	OrderIDBytesMax = 128
	// ModelVersionBytesMax bounds an override's model.
	ModelVersionBytesMax = 64
)

// OverrideWeight is the weight of a reviewer's decision in training: a
// person's judgement on one order counts for this many bulk labels.
const OverrideWeight = 5

// Override decisions.
const (
	// DecisionRelease: the reviewer let the held order ship (label false).
	DecisionRelease = "release"
	// DecisionCancel: the reviewer cancelled it as fraud or abuse (label true).
	DecisionCancel = "cancel"
)

// Override is a human reviewer's decision on a held order, one JSON object
// per line of an overrides file.
type Override struct {
	OrderID  string   `json:"order_id"`
	Decision string   `json:"decision"`
	Score    float64  `json:"score"`
	Model    string   `json:"model"`
	Features Features `json:"features"`
}

// Validate returns a *FieldError naming the first bad field of o.
func (o *Override) Validate() error {
	switch {
	case o.OrderID == "" || len(o.OrderID) > OrderIDBytesMax:
		return fieldErr("order_id", "must be 1..%d bytes", OrderIDBytesMax)
	case o.Decision != DecisionRelease && o.Decision != DecisionCancel:
		return fieldErr("decision", "must be %q or %q, got %q", DecisionRelease, DecisionCancel, o.Decision)
	case math.IsNaN(o.Score) || o.Score < 0 || o.Score > 1:
		return fieldErr("score", "must be 0..1, got %v", o.Score)
	case len(o.Model) > ModelVersionBytesMax:
		return fieldErr("model", "longer than %d bytes", ModelVersionBytesMax)
	}
	if err := o.Features.Validate(); err != nil {
		return prefixed("features", err)
	}
	return nil
}

// Example is the training example of the decision: cancel is a positive,
// release a negative, weighted OverrideWeight.
func (o *Override) Example() Example {
	return Example{Features: o.Features, Label: o.Decision == DecisionCancel, Weight: OverrideWeight}
}

// readLines decodes each non-blank line of r strictly (unknown fields are
// errors) into a fresh T, checks it, and hands it to keep. Errors say
// "line N: " and wrap a *FieldError when a field is to blame.
func readLines[T any](r io.Reader, max int, what string, check func(*T) error, keep func(T)) error {
	if max <= 0 || max > ExamplesMax {
		max = ExamplesMax
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), LineBytesMax)
	line, count := 0, 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if count == max {
			return fmt.Errorf("line %d: more than %d %s", line, max, what)
		}
		var v T
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", line, jsonError(err))
		}
		if dec.More() {
			return fmt.Errorf("line %d: more than one JSON value", line)
		}
		if err := check(&v); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		keep(v)
		count++
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", line+1, LineBytesMax)
		}
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// ReadExamples reads JSON Lines of examples ({"features":{...},"label":true})
// up to max of them (max <= 0 or above ExamplesMax means ExamplesMax).
// Blank lines are skipped; lines are at most LineBytesMax. An error names
// the line and wraps a *FieldError naming the field:
// "line 17: features.hour_of_day: must be 0..23, got 24".
func ReadExamples(r io.Reader, max int) ([]Example, error) {
	var out []Example
	err := readLines(r, max, "examples", (*Example).Validate, func(e Example) { out = append(out, e) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WriteExamples writes the examples as JSON Lines, one per line.
func WriteExamples(w io.Writer, ex []Example) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range ex {
		if err := enc.Encode(&ex[i]); err != nil {
			return fmt.Errorf("risk: writing example %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("risk: writing examples: %w", err)
	}
	return nil
}

// ReadOverrides reads JSON Lines of reviewers' decisions (Override), up to
// max of them, and returns them as training examples (Override.Example).
// When an order has several decisions the last one counts, at the place
// of the first. Errors are as ReadExamples'.
func ReadOverrides(r io.Reader, max int) ([]Example, error) {
	var out []Example
	at := map[string]int{}
	err := readLines(r, max, "overrides", (*Override).Validate, func(o Override) {
		if i, ok := at[o.OrderID]; ok {
			out[i] = o.Example()
			return
		}
		at[o.OrderID] = len(out)
		out = append(out, o.Example())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FeaturesBytesMax bounds the JSON of one Features object.
const FeaturesBytesMax = 64 << 10

// ParseFeatures decodes one Features JSON object strictly (unknown fields
// are errors) and validates it; a bad field gives a *FieldError naming it.
// Fields left out are zero.
func ParseFeatures(data []byte) (Features, error) {
	var f Features
	if len(data) > FeaturesBytesMax {
		return f, fmt.Errorf("features: longer than %d bytes", FeaturesBytesMax)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Features{}, jsonError(err)
	}
	if dec.More() {
		return Features{}, errors.New("features: more than one JSON value")
	}
	if err := f.Validate(); err != nil {
		return Features{}, err
	}
	return f, nil
}
