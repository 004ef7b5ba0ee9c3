package limits

import (
	"errors"
	"strings"
	"testing"
)

// A document that is not a rule's JSON shape is Malformed, a bad value is
// not, and neither speaks Go.
func TestParseTellsMalformedFromInvalid(t *testing.T) {
	for _, c := range []struct {
		doc, field string
		malformed  bool
	}{
		{`{"skus":["A"],"per":"customer","max_qty":1,"colour":"red"}`, "colour", true},
		{`{"skus":["A"],"per":"customer","max_qty":"three"}`, "max_qty", true},
		{`{"skus":["A"],"per":"customer","max_qty":1.5}`, "max_qty", true},
		{`{"skus":"A","per":"customer","max_qty":1}`, "skus", true},
		{`[1]`, "body", true},
		{`{"skus":["A"]`, "body", true},
		{`{"skus":}`, "body", true},
		{``, "body", true},
		{`{"skus":["A"],"per":"customer","max_qty":1} {}`, "body", true},
		{`{"skus":["A"],"per":"house","max_qty":1}`, "per", false},
		{`{"skus":["A","A"],"per":"customer","max_qty":1}`, "skus[1]", false},
		{`{"id":"b","skus":["A"],"per":"customer","max_qty":1}`, "id", false},
	} {
		_, err := Parse([]byte(c.doc), "a")
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Malformed != c.malformed {
			t.Errorf("%s: %#v, want field %s, malformed %v", c.doc, err, c.field, c.malformed)
			continue
		}
		for _, leak := range []string{"json:", "Go", "int64", "unmarshal", "limits.Rule"} {
			if strings.Contains(fe.Detail, leak) {
				t.Errorf("%s: detail %q speaks Go", c.doc, fe.Detail)
			}
		}
	}
	r, err := Parse([]byte(`{"skus":["A"],"per":"device","max_qty":2}`), "a")
	if err != nil || r.ID != "a" || r.Action != ActionHold || r.MaxQty != 2 {
		t.Fatalf("a good rule: %+v %v", r, err)
	}
}
