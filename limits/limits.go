// Package limits holds the purchase-limit rules of a flash sale: at most
// max_qty of each of the rule's SKUs per customer, per delivery address or per
// device, within the rule's window, on the rule's channels.
//
// A rule is a JSON document, put and deleted through /v1/limits, stored
// with a version in the routing catalog's partition and logged in the
// audit log with each change, and copied into the partition of every SKU
// it names. There the state machine judges each new reservation of the
// SKU against the SKU's rules active at the command's time, exactly once
// (a retried reservation is the one that exists): it adds the line's qty
// to the buyer's counter under each rule, and gives it back when the
// reservation is released (the order is cancelled, expires or is merged).
// Over a rule's maximum, the rule's action applies: "refuse" reserves
// nothing and refuses the order, "hold" reserves and holds the order for a
// person to decide. A rule that counts per address or device holds (or
// refuses) an order that names none.
//
// The buyer is named by the customer id the channels resolve (one person
// across channels), or by the keyed hash of the normalised delivery
// address or device id: never by the plain value.
package limits

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/jsonshape"
)

// Scopes a rule counts per.
const (
	PerCustomer = "customer"
	PerAddress  = "address"
	PerDevice   = "device"
)

// Actions over a rule's maximum.
const (
	ActionHold   = "hold"
	ActionRefuse = "refuse"
)

// Bounds on the rules.
const (
	// RulesMax bounds the rules of a grid.
	RulesMax = 1000
	// SKUsPerRuleMax bounds the SKUs one rule names.
	SKUsPerRuleMax = 1000
	// ChannelsPerRuleMax bounds the channels one rule names.
	ChannelsPerRuleMax = 64
	// QtyMax bounds a rule's maximum.
	QtyMax = 1_000_000
	// DocumentSizeMax bounds a rule's JSON document.
	DocumentSizeMax = 64 << 10
	idSizeMax       = 64
	noteSizeMax     = 512
)

// Rule is one purchase limit.
type Rule struct {
	// ID names the rule ([a-z0-9_-], at most 64).
	ID string `json:"id"`
	// SKUs the rule counts, each on its own: a SKU's counters live in its
	// partition, where its reservations are judged.
	SKUs []string `json:"skus"`
	// Per is customer, address or device.
	Per string `json:"per"`
	// MaxQty is the most a buyer may hold of each SKU under the rule.
	MaxQty int64 `json:"max_qty"`
	// Action over the maximum: hold (default) or refuse.
	Action string `json:"action"`
	// From and To bound the sale window (RFC 3339; empty: open).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Channels the rule applies to; empty: every channel.
	Channels []string `json:"channels,omitempty"`
	Note     string   `json:"note,omitempty"`
	// Version counts the rule's changes; set by the grid.
	Version uint64 `json:"version,omitempty"`
	// Revision is the Raft index of the change that made this version
	// (rising across deletes and re-creates), the version the SKUs'
	// copies keep; set by the grid.
	Revision uint64 `json:"revision,omitempty"`
	// Retired are SKUs earlier versions named and this one does not: their
	// copies are taken out with every change (at most SKUsPerRuleMax).
	Retired []string `json:"retired_skus,omitempty"`
	// Deleted marks a deleted rule's tombstone in the catalog: a retried
	// delete finds what to take out of the SKUs, and a re-created rule's
	// versions keep rising.
	Deleted bool `json:"deleted,omitempty"`

	from, to time.Time
}

// FieldError is a rule document that is wrong, naming the field.
type FieldError struct {
	Field  string
	Detail string
	// Malformed: the document is not JSON of a rule's shape (a syntax
	// error, a wrong type, an unknown field), not a bad value.
	Malformed bool
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

func validID(s string) bool {
	if s == "" || len(s) > idSizeMax {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Parse reads and validates a rule document. id, when not empty, is the
// rule's id from the URL: the document's id must be empty or equal.
func Parse(doc []byte, id string) (*Rule, error) {
	if len(doc) > DocumentSizeMax {
		return nil, &FieldError{Field: "body", Detail: fmt.Sprintf("at most %d bytes", DocumentSizeMax)}
	}
	r := &Rule{}
	if err := jsonshape.Check(doc, r); err != nil {
		return nil, shapeError(err)
	}
	if err := json.Unmarshal(doc, r); err != nil {
		// The shape fits, so only a value's content can fail here.
		return nil, &FieldError{Field: "body", Detail: "a value cannot be read as its field's type", Malformed: true}
	}
	if id != "" {
		if r.ID == "" {
			r.ID = id
		} else if r.ID != id {
			return nil, &FieldError{Field: "id", Detail: fmt.Sprintf("%q is not the rule of the URL (%q)", r.ID, id)}
		}
	}
	r.Version, r.Revision, r.Retired, r.Deleted = 0, 0, nil, false
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// shapeError names the field of a document that is not JSON of a rule's
// shape, by its path ("skus[1]"), in JSON's words (jsonshape's); the
// document itself is "body" (a FieldError always names a field).
func shapeError(err error) *FieldError {
	var se *jsonshape.Error
	if !errors.As(err, &se) || se.Path == "" || se.Syntax {
		return &FieldError{Field: "body", Detail: err.Error(), Malformed: true}
	}
	return &FieldError{Field: se.Path, Detail: se.Detail, Malformed: true}
}

func (r *Rule) validate() error {
	if !validID(r.ID) {
		return &FieldError{Field: "id", Detail: "1 to 64 of a-z, 0-9, _ and -"}
	}
	if len(r.SKUs) == 0 || len(r.SKUs) > SKUsPerRuleMax {
		return &FieldError{Field: "skus", Detail: fmt.Sprintf("1 to %d SKUs", SKUsPerRuleMax)}
	}
	seen := make(map[string]bool, len(r.SKUs))
	for i, s := range r.SKUs {
		if s == "" || len(s) > 128 || strings.ContainsRune(s, 0) {
			return &FieldError{Field: fmt.Sprintf("skus[%d]", i), Detail: "a SKU of 1 to 128 bytes"}
		}
		if seen[s] {
			return &FieldError{Field: fmt.Sprintf("skus[%d]", i), Detail: fmt.Sprintf("%s named twice", s)}
		}
		seen[s] = true
	}
	switch r.Per {
	case PerCustomer, PerAddress, PerDevice:
	default:
		return &FieldError{Field: "per", Detail: "customer, address or device"}
	}
	if r.MaxQty < 1 || r.MaxQty > QtyMax {
		return &FieldError{Field: "max_qty", Detail: fmt.Sprintf("1 to %d", QtyMax)}
	}
	switch r.Action {
	case "":
		r.Action = ActionHold
	case ActionHold, ActionRefuse:
	default:
		return &FieldError{Field: "action", Detail: "hold or refuse"}
	}
	var err error
	if r.From != "" {
		if r.from, err = time.Parse(time.RFC3339, r.From); err != nil {
			return &FieldError{Field: "from", Detail: "an RFC 3339 time"}
		}
	}
	if r.To != "" {
		if r.to, err = time.Parse(time.RFC3339, r.To); err != nil {
			return &FieldError{Field: "to", Detail: "an RFC 3339 time"}
		}
	}
	for _, w := range []struct {
		field string
		at    time.Time
	}{{"from", r.from}, {"to", r.to}} {
		// A sale window is judged in unix nanoseconds.
		if !w.at.IsZero() && (w.at.Year() < 1678 || w.at.Year() > 2261) {
			return &FieldError{Field: w.field, Detail: "a time within the years 1678..2261"}
		}
	}
	if !r.from.IsZero() && !r.to.IsZero() && !r.to.After(r.from) {
		return &FieldError{Field: "to", Detail: "after from"}
	}
	if len(r.Channels) == 0 {
		// "channels": [] is every channel, as no channels: one form, so a
		// stored rule reads back equal to the one put.
		r.Channels = nil
	}
	if len(r.Channels) > ChannelsPerRuleMax {
		return &FieldError{Field: "channels", Detail: fmt.Sprintf("at most %d", ChannelsPerRuleMax)}
	}
	for i, c := range r.Channels {
		if c == "" || len(c) > 64 {
			return &FieldError{Field: fmt.Sprintf("channels[%d]", i), Detail: "a channel name of 1 to 64 bytes"}
		}
	}
	if len(r.Note) > noteSizeMax {
		return &FieldError{Field: "note", Detail: fmt.Sprintf("at most %d bytes", noteSizeMax)}
	}
	return nil
}

// Decode reads a rule as stored (valid when it was put).
func Decode(doc []byte) (*Rule, error) {
	r := &Rule{}
	if err := json.Unmarshal(doc, r); err != nil {
		return nil, fmt.Errorf("limits: rule: %w", err)
	}
	v := r.Version
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("limits: stored rule %s: %w", r.ID, err)
	}
	r.Version = v
	return r, nil
}

// IsTombstone reports whether a stored rule document is a deleted rule's
// tombstone (Rule.Deleted).
func IsTombstone(doc []byte) bool {
	var t struct {
		Deleted bool `json:"deleted"`
	}
	return json.Unmarshal(doc, &t) == nil && t.Deleted
}

// Window returns the rule's sale window (a zero time: open on that side).
func (r *Rule) Window() (from, to time.Time) { return r.from, r.to }

// Active reports whether the rule applies at t on channel.
func (r *Rule) Active(t time.Time, channel string) bool {
	if !r.from.IsZero() && t.Before(r.from) || !r.to.IsZero() && !t.Before(r.to) {
		return false
	}
	return len(r.Channels) == 0 || slices.Contains(r.Channels, channel)
}

// Set is a grid's rules, indexed by SKU. The zero Set (and nil) has none.
type Set struct {
	// Generation is the catalog generation the set is as of.
	Generation uint64
	rules      []*Rule // by id
	bySKU      map[string][]*Rule
}

// NewSet indexes rules (sorted by id).
func NewSet(generation uint64, rules []*Rule) *Set {
	s := &Set{Generation: generation, rules: slices.Clone(rules), bySKU: map[string][]*Rule{}}
	slices.SortFunc(s.rules, func(a, b *Rule) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range s.rules {
		for _, sku := range r.SKUs {
			s.bySKU[sku] = append(s.bySKU[sku], r)
		}
	}
	return s
}

// Rules returns the rules, by id.
func (s *Set) Rules() []*Rule {
	if s == nil {
		return nil
	}
	return s.rules
}

// Rule returns the rule with id.
func (s *Set) Rule(id string) (*Rule, bool) {
	if s == nil {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(s.rules, id, func(r *Rule, id string) int { return strings.Compare(r.ID, id) })
	if !ok {
		return nil, false
	}
	return s.rules[i], true
}

// Empty reports whether the set has no rule.
func (s *Set) Empty() bool { return s == nil || len(s.rules) == 0 }

// For returns the rules that count sku at t on channel.
func (s *Set) For(sku string, t time.Time, channel string, dst []*Rule) []*Rule {
	if s == nil {
		return dst
	}
	for _, r := range s.bySKU[sku] {
		if r.Active(t, channel) {
			dst = append(dst, r)
		}
	}
	return dst
}
