package limits

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodRule = `{"id":"ps5-launch","skus":["PS5","PS5-PRO"],"per":"customer","max_qty":2,"action":"refuse",
	"from":"2026-03-01T10:00:00Z","to":"2026-03-02T10:00:00Z","channels":["tmall","jd"],"note":"launch day"}`

// A good document parses to the rule it says; the action defaults to hold;
// the URL's id fills an empty one; a version in the document is ignored.
func TestParseGood(t *testing.T) {
	r, err := Parse([]byte(goodRule), "")
	if err != nil {
		t.Fatal(err)
	}
	want := Rule{ID: "ps5-launch", SKUs: []string{"PS5", "PS5-PRO"}, Per: PerCustomer, MaxQty: 2, Action: ActionRefuse,
		From: "2026-03-01T10:00:00Z", To: "2026-03-02T10:00:00Z", Channels: []string{"tmall", "jd"}, Note: "launch day"}
	if r.ID != want.ID || !reflect.DeepEqual(r.SKUs, want.SKUs) || r.Per != want.Per || r.MaxQty != want.MaxQty ||
		r.Action != want.Action || r.From != want.From || r.To != want.To || !reflect.DeepEqual(r.Channels, want.Channels) ||
		r.Note != want.Note || r.Version != 0 {
		t.Fatalf("parsed %+v, want %+v", r, want)
	}
	r, err = Parse([]byte(`{"skus":["A"],"per":"device","max_qty":1,"version":7}`), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "r1" || r.Action != ActionHold || r.Version != 0 {
		t.Fatalf("id %q action %q version %d, want r1 hold 0", r.ID, r.Action, r.Version)
	}
	if _, err := Parse([]byte(`{"id":"r1","skus":["A"],"per":"address","max_qty":1}`), "r1"); err != nil {
		t.Fatalf("same id as the URL: %v", err)
	}
}

// Each kind of bad document is refused with a *FieldError naming the field.
func TestParseNamesTheField(t *testing.T) {
	base := func(edit func(m map[string]any)) string {
		m := map[string]any{"id": "r1", "skus": []string{"A"}, "per": "customer", "max_qty": 2}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	manySKUs := make([]string, SKUsPerRuleMax+1)
	for i := range manySKUs {
		manySKUs[i] = fmt.Sprint("s", i)
	}
	manyChannels := make([]string, ChannelsPerRuleMax+1)
	for i := range manyChannels {
		manyChannels[i] = fmt.Sprint("c", i)
	}
	cases := []struct {
		name, doc, urlID, field string
	}{
		{"no id", base(func(m map[string]any) { delete(m, "id") }), "", "id"},
		{"bad id chars", base(func(m map[string]any) { m["id"] = "Big Rule" }), "", "id"},
		{"long id", base(func(m map[string]any) { m["id"] = strings.Repeat("a", 65) }), "", "id"},
		{"id not the URL's", base(func(m map[string]any) {}), "r2", "id"},
		{"no skus", base(func(m map[string]any) { delete(m, "skus") }), "", "skus"},
		{"empty skus", base(func(m map[string]any) { m["skus"] = []string{} }), "", "skus"},
		{"too many skus", base(func(m map[string]any) { m["skus"] = manySKUs }), "", "skus"},
		{"empty sku", base(func(m map[string]any) { m["skus"] = []string{"A", ""} }), "", "skus[1]"},
		{"duplicate sku", base(func(m map[string]any) { m["skus"] = []string{"A", "B", "A"} }), "", "skus[2]"},
		{"long sku", base(func(m map[string]any) { m["skus"] = []string{strings.Repeat("x", 129)} }), "", "skus[0]"},
		{"sku with NUL", base(func(m map[string]any) { m["skus"] = []string{"a\x00b"} }), "", "skus[0]"},
		{"no per", base(func(m map[string]any) { delete(m, "per") }), "", "per"},
		{"bad per", base(func(m map[string]any) { m["per"] = "household" }), "", "per"},
		{"max_qty 0", base(func(m map[string]any) { m["max_qty"] = 0 }), "", "max_qty"},
		{"max_qty negative", base(func(m map[string]any) { m["max_qty"] = -1 }), "", "max_qty"},
		{"max_qty too big", base(func(m map[string]any) { m["max_qty"] = QtyMax + 1 }), "", "max_qty"},
		{"bad action", base(func(m map[string]any) { m["action"] = "warn" }), "", "action"},
		{"bad from", base(func(m map[string]any) { m["from"] = "2026-03-01 10:00" }), "", "from"},
		{"bad to", base(func(m map[string]any) { m["to"] = "tomorrow" }), "", "to"},
		{"to before from", base(func(m map[string]any) { m["from"] = "2026-03-02T00:00:00Z"; m["to"] = "2026-03-01T00:00:00Z" }), "", "to"},
		{"to equal to from", base(func(m map[string]any) { m["from"] = "2026-03-02T00:00:00Z"; m["to"] = "2026-03-02T00:00:00Z" }), "", "to"},
		{"too many channels", base(func(m map[string]any) { m["channels"] = manyChannels }), "", "channels"},
		{"empty channel", base(func(m map[string]any) { m["channels"] = []string{"tmall", ""} }), "", "channels[1]"},
		{"long note", base(func(m map[string]any) { m["note"] = strings.Repeat("n", 513) }), "", "note"},
		{"unknown field", base(func(m map[string]any) { m["max"] = 3 }), "", "max"},
		{"wrong type", base(func(m map[string]any) { m["max_qty"] = "2" }), "", "max_qty"},
		{"wrong type of skus", base(func(m map[string]any) { m["skus"] = "A" }), "", "skus"},
		{"two JSON values", base(func(m map[string]any) {}) + ` {}`, "", "body"},
		{"not JSON", `{"id":`, "", "body"},
		{"an array", `[]`, "", "body"},
		{"too big", `{"note":"` + strings.Repeat("n", DocumentSizeMax) + `"}`, "", "body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Parse([]byte(c.doc), c.urlID)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse = %+v, %v; want a *FieldError", r, err)
			}
			if fe.Field != c.field || fe.Detail == "" {
				t.Fatalf("field %q (%s), want %q", fe.Field, fe.Detail, c.field)
			}
			if r != nil {
				t.Fatalf("a rule with the error: %+v", r)
			}
		})
	}
}

// A rule applies from its from (inclusive) until its to (exclusive), on
// its channels (none named: every channel).
func TestRuleActive(t *testing.T) {
	r, err := Parse([]byte(goodRule), "")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	cases := []struct {
		at      time.Time
		channel string
		want    bool
	}{
		{from.Add(-time.Nanosecond), "tmall", false},
		{from, "tmall", true},
		{from.Add(time.Hour), "jd", true},
		{to.Add(-time.Nanosecond), "jd", true},
		{to, "tmall", false},
		{from.Add(time.Hour), "douyin", false},
		{from.Add(time.Hour), "", false},
	}
	for _, c := range cases {
		if got := r.Active(c.at, c.channel); got != c.want {
			t.Errorf("Active(%v, %q) = %v, want %v", c.at, c.channel, got, c.want)
		}
	}
	open, err := Parse([]byte(`{"id":"o","skus":["A"],"per":"customer","max_qty":1}`), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{{}, from, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if !open.Active(at, "anything") || !open.Active(at, "") {
			t.Errorf("an open rule is not active at %v", at)
		}
	}
	onlyFrom, err := Parse([]byte(`{"id":"f","skus":["A"],"per":"customer","max_qty":1,"from":"2026-03-01T10:00:00Z"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if onlyFrom.Active(from.Add(-1), "x") || !onlyFrom.Active(from.Add(100*24*time.Hour), "x") {
		t.Error("a rule with only from")
	}
	onlyTo, err := Parse([]byte(`{"id":"t","skus":["A"],"per":"customer","max_qty":1,"to":"2026-03-01T10:00:00+08:00"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	toUTC := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	if !onlyTo.Active(toUTC.Add(-1), "x") || onlyTo.Active(toUTC, "x") {
		t.Error("a rule with only to (in +08:00)")
	}
}

func mustParse(t testing.TB, doc string) *Rule {
	t.Helper()
	r, err := Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(rules []*Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.ID)
	}
	return out
}

// Set.For answers the active rules of a SKU, by id, appended to dst; a nil
// set has none; Rule and Rules find them by id.
func TestSetFor(t *testing.T) {
	b := mustParse(t, `{"id":"b","skus":["A","B"],"per":"customer","max_qty":1}`)
	a := mustParse(t, `{"id":"a","skus":["A"],"per":"device","max_qty":3,"channels":["jd"]}`)
	c := mustParse(t, `{"id":"c","skus":["A"],"per":"address","max_qty":2,"to":"2026-01-01T00:00:00Z"}`)
	s := NewSet(42, []*Rule{b, c, a})
	if s.Generation != 42 || s.Empty() {
		t.Fatalf("generation %d empty %v", s.Generation, s.Empty())
	}
	if got := ids(s.Rules()); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("rules %v, want by id", got)
	}
	before := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	after := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		sku     string
		at      time.Time
		channel string
		want    []string
	}{
		{"A", before, "jd", []string{"a", "b", "c"}},
		{"A", before, "tmall", []string{"b", "c"}},
		{"A", after, "jd", []string{"a", "b"}},
		{"A", after, "tmall", []string{"b"}},
		{"B", before, "jd", []string{"b"}},
		{"Z", before, "jd", nil},
	}
	for _, c := range cases {
		if got := ids(s.For(c.sku, c.at, c.channel, nil)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("For(%s, %v, %s) = %v, want %v", c.sku, c.at, c.channel, got, c.want)
		}
	}
	dst := []*Rule{c}
	if got := ids(s.For("B", before, "jd", dst)); !reflect.DeepEqual(got, []string{"c", "b"}) {
		t.Errorf("For appends: %v", got)
	}
	if r, ok := s.Rule("b"); !ok || r != b {
		t.Errorf("Rule(b) = %v %v", r, ok)
	}
	if _, ok := s.Rule("bb"); ok {
		t.Error("Rule(bb) found")
	}
	var none *Set
	if !none.Empty() || none.Rules() != nil || len(none.For("A", before, "jd", nil)) != 0 {
		t.Error("a nil set has rules")
	}
	if _, ok := none.Rule("a"); ok {
		t.Error("a nil set has rule a")
	}
	if !NewSet(1, nil).Empty() {
		t.Error("an empty set is not empty")
	}
}

// A rule read back as stored (Decode) keeps its version and its window.
func TestDecodeKeepsVersion(t *testing.T) {
	r := mustParse(t, goodRule)
	r.Version = 5
	doc, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 5 || !d.Active(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "jd") || d.Active(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), "jd") {
		t.Fatalf("decoded %+v", d)
	}
	if _, err := Decode([]byte(`{"id":"x"}`)); err == nil {
		t.Fatal("an invalid stored rule decoded")
	}
}

// Parse never panics; a rule it accepts re-parses from its JSON to an
// equal rule.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodRule), "")
	f.Add([]byte(`{"skus":["A"],"per":"device","max_qty":1}`), "r1")
	f.Add([]byte(`{"id":"a","skus":["A","A"],"per":"customer","max_qty":1}`), "")
	f.Add([]byte(`{"id":"a","skus":["A"],"per":"customer","max_qty":0}`), "")
	f.Add([]byte(`{"id":"a","skus":["A"],"per":"customer","max_qty":1,"from":"2026-03-02T00:00:00Z","to":"2026-03-01T00:00:00Z"}`), "")
	f.Add([]byte(`{"id":"a","skus":["A"],"per":"customer","max_qty":1} {}`), "")
	f.Add([]byte(`{"id":1}`), "")
	f.Add([]byte(`{"id":"a","skus":["A"],"per":"customer","max_qty":1,"channels":[]}`), "")
	f.Add([]byte(`{"":""}`), "")
	f.Add([]byte(`null`), "")
	f.Add([]byte(``), "x")
	f.Fuzz(func(t *testing.T, doc []byte, id string) {
		r, err := Parse(doc, id)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error %v is not a *FieldError naming a field", err)
			}
			if r != nil {
				t.Fatal("a rule with an error")
			}
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b, "")
		if err != nil {
			t.Fatalf("%s does not re-parse: %v", b, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("re-parsed %+v, want %+v", again, r)
		}
	})
}
