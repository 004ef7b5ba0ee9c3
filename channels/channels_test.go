package channels

import (
	"errors"
	"testing"
)

// checkMapped is every adapter's fuzz property: an error names a field, and
// an order that maps is one the intake could take (lines with SKUs,
// positive quantities, prices).
func checkMapped(t *testing.T, channel string, data []byte) {
	t.Helper()
	m, err := Adapters[channel].Map(data)
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field == "" {
			t.Fatalf("error without a field: %v", err)
		}
		return
	}
	r := m.Request
	if r.Channel != channel || r.ChannelOrderId == "" || len(r.Lines) == 0 {
		t.Fatalf("mapped order without channel, id or lines: %+v", r)
	}
	for _, l := range r.Lines {
		if l.Sku == "" || l.Qty < 1 || !decimalPattern.MatchString(l.UnitPrice) {
			t.Fatalf("bad line %+v", l)
		}
	}
}
