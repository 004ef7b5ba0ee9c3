package stream

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/lifecycle"
)

// Limits of a filter: every list is bounded, and so is every value.
const (
	// FilterValuesMax bounds the values of one filter field.
	FilterValuesMax = 100
	// FilterValueBytesMax bounds one value.
	FilterValueBytesMax = 128
)

// Kinds are the event kinds a filter may name (the ledger's).
var Kinds = []string{ledger.KindOrder, ledger.KindStock, ledger.KindSubject, ledger.KindAccess, ledger.KindRetention, ledger.KindRouting}

// Filter selects events. An empty field selects everything; a field with
// values selects events that match one of them, and an event must match
// every field given. Scope, when not nil, is the only channels the reader
// may see (a channel-bound token's): an event whose order is of none of
// them, or that has no order, is not seen.
type Filter struct {
	Orders     []string `json:"order,omitempty"`
	Channels   []string `json:"channel,omitempty"`
	Warehouses []string `json:"warehouse,omitempty"`
	Statuses   []string `json:"status,omitempty"`
	Kinds      []string `json:"kind,omitempty"`
	Types      []string `json:"type,omitempty"`
	Scope      []string `json:"-"`
}

// FilterError is a filter that cannot be used: Field names the query
// parameter (or document field) at fault.
type FilterError struct {
	Field  string
	Detail string
}

func (e *FilterError) Error() string { return e.Field + ": " + e.Detail }

// FilterFields are the names ParseFilter knows, in documentation order.
var FilterFields = []string{"order", "channel", "warehouse", "status", "kind", "type"}

// ParseFilter reads a filter from query parameters (each a comma-separated
// list, or repeated). A name it does not know is an error: a typo must not
// silently widen a stream.
func ParseFilter(q map[string][]string) (Filter, error) {
	var f Filter
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names) // the first bad one named is always the same
	for _, name := range names {
		var vals []string
		for _, v := range q[name] {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					vals = append(vals, s)
				}
			}
		}
		var dst *[]string
		switch name {
		case "order":
			dst = &f.Orders
		case "channel":
			dst = &f.Channels
		case "warehouse":
			dst = &f.Warehouses
		case "status":
			dst = &f.Statuses
		case "kind":
			dst = &f.Kinds
		case "type":
			dst = &f.Types
		case "":
			return Filter{}, &FilterError{Field: "query", Detail: "a parameter with no name"}
		default:
			return Filter{}, &FilterError{Field: name, Detail: fmt.Sprintf("not a filter; the filters are %s", strings.Join(FilterFields, ", "))}
		}
		*dst = append(*dst, vals...)
	}
	return f, f.Validate()
}

// Validate checks every value of f.
func (f *Filter) Validate() error {
	for _, fl := range []struct {
		name string
		vals []string
	}{{"order", f.Orders}, {"channel", f.Channels}, {"warehouse", f.Warehouses}, {"status", f.Statuses}, {"kind", f.Kinds}, {"type", f.Types}} {
		if len(fl.vals) > FilterValuesMax {
			return &FilterError{Field: fl.name, Detail: fmt.Sprintf("%d values, at most %d", len(fl.vals), FilterValuesMax)}
		}
		for _, v := range fl.vals {
			if len(v) > FilterValueBytesMax || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return &FilterError{Field: fl.name, Detail: fmt.Sprintf("%.40q is not a value (at most %d bytes, no control characters)", v, FilterValueBytesMax)}
			}
			switch {
			case fl.name == "status" && !lifecycle.IsStatus(v):
				return &FilterError{Field: "status", Detail: fmt.Sprintf("%q is not a status; the statuses are %s", v, strings.Join(lifecycle.Statuses(), ", "))}
			case fl.name == "kind" && !slices.Contains(Kinds, v):
				return &FilterError{Field: "kind", Detail: fmt.Sprintf("%q is not an event kind; the kinds are %s", v, strings.Join(Kinds, ", "))}
			}
		}
	}
	return nil
}

// needsFacts reports whether matching needs the order's channel or warehouses.
func (f *Filter) needsFacts() bool {
	return len(f.Channels) > 0 || len(f.Warehouses) > 0 || f.Scope != nil
}

// Match reports whether f selects it; facts are the event's order's (nil
// when the filter does not need them, see needsFacts).
func (f *Filter) match(it *Item, fx *Facts) bool {
	e := &it.Event
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, e.Kind) ||
		len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) ||
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, e.Status) ||
		len(f.Orders) > 0 && !slices.Contains(f.Orders, e.Order) {
		return false
	}
	if !f.needsFacts() {
		return true
	}
	channel := ""
	if fx != nil {
		channel = fx.Channel
	}
	if f.Scope != nil && (e.Order == "" || channel == "" || !slices.Contains(f.Scope, channel)) {
		return false
	}
	if len(f.Channels) > 0 && !slices.Contains(f.Channels, channel) {
		return false
	}
	if len(f.Warehouses) > 0 {
		if e.Warehouse != "" {
			return slices.Contains(f.Warehouses, e.Warehouse)
		}
		if fx == nil || !slices.ContainsFunc(fx.Warehouses, func(w string) bool { return slices.Contains(f.Warehouses, w) }) {
			return false
		}
	}
	return true
}
