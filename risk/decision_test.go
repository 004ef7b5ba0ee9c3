package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A hold_decided event's details make an override: scored ones with the
// features, score and model; unscored ones only the decision; bad ones a
// FieldError naming the detail.
func TestParseDecision(t *testing.T) {
	features := Features{CustomerAgeHours: 2, CustomerOrders1h: 9, Amount: 80, AmountRatio: 1.5, Channel: "tmall", HourOfDay: 3, FirstOrder: true}
	raw, err := json.Marshal(features)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDecision("o-1", map[string]string{"decision": "cancel", "hold": "risk", "reason": "stolen card",
		"override": "false", "risk_score": "0.8123", "risk_model": "m-1", "features": string(raw)})
	if err != nil {
		t.Fatal(err)
	}
	want := Override{OrderID: "o-1", Decision: DecisionCancel, Score: 0.8123, Model: "m-1", Features: features}
	if !d.Scored || d.AgainstModel || d.Override != want {
		t.Fatalf("decision %+v, want %+v", d, want)
	}
	d, err = ParseDecision("o-2", map[string]string{"decision": "release", "hold": "limit", "override": "true"})
	if err != nil || d.Scored || !d.AgainstModel || d.Override != (Override{OrderID: "o-2", Decision: DecisionRelease}) {
		t.Fatalf("unscored decision %+v, %v", d, err)
	}

	// The overrides file it writes reads back as the same examples.
	var buf bytes.Buffer
	if err := WriteOverrides(&buf, []Override{want}); err != nil {
		t.Fatal(err)
	}
	ex, err := ReadOverrides(&buf, 0)
	if err != nil || len(ex) != 1 || ex[0] != want.Example() {
		t.Fatalf("read back %+v, %v", ex, err)
	}

	good := func() map[string]string {
		return map[string]string{"decision": "release", "risk_score": "0.5", "risk_model": "m", "features": string(raw)}
	}
	for _, c := range []struct {
		order  string
		change func(map[string]string)
		field  string
	}{
		{"", func(map[string]string) {}, "order"},
		{strings.Repeat("x", OrderIDBytesMax+1), func(map[string]string) {}, "order"},
		{"o", func(d map[string]string) { d["decision"] = "ship" }, "details.decision"},
		{"o", func(d map[string]string) { delete(d, "decision") }, "details.decision"},
		{"o", func(d map[string]string) { d["override"] = "yes" }, "details.override"},
		{"o", func(d map[string]string) { d["override"] = "1" }, "details.override"},
		{"o", func(d map[string]string) { d["features"] = `{"hour_of_day":24}` }, "details.features.hour_of_day"},
		{"o", func(d map[string]string) { d["features"] = `{"colour":"red"}` }, "details.features"},
		{"o", func(d map[string]string) { d["features"] = `{"amount":` }, "details.features"},
		{"o", func(d map[string]string) { d["features"] = `{"amount":"ten"}` }, "details.features.amount"},
		{"o", func(d map[string]string) { delete(d, "risk_score") }, "details.risk_score"},
		{"o", func(d map[string]string) { d["risk_score"] = "1.5" }, "details.risk_score"},
		{"o", func(d map[string]string) { d["risk_score"] = "NaN" }, "details.risk_score"},
		{"o", func(d map[string]string) { d["risk_model"] = strings.Repeat("m", ModelVersionBytesMax+1) }, "details.model"},
	} {
		details := good()
		c.change(details)
		_, err := ParseDecision(c.order, details)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("details %v of order %q: %v; want a FieldError of %s", details, c.order, err, c.field)
		}
	}
}

func FuzzParseDecision(f *testing.F) {
	f.Add("o-1", `{"decision":"cancel","override":"true","risk_score":"0.9","risk_model":"m","features":"{\"amount\":3,\"hour_of_day\":4}"}`)
	f.Add("o-2", `{"decision":"release"}`)
	f.Add("o-3", `{"decision":"ship","features":"{}"}`)
	f.Add("", `{"decision":"cancel","risk_score":"-0","features":"{\"hour_of_day\":-1}"}`)
	f.Add("o-4", `{"decision":"cancel","risk_score":"1e-400","features":"null"}`)
	f.Fuzz(func(t *testing.T, order, detailsJSON string) {
		var details map[string]string
		if json.Unmarshal([]byte(detailsJSON), &details) != nil {
			return
		}
		d, err := ParseDecision(order, details)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !(fe.Field == "order" || strings.HasPrefix(fe.Field, "details.")) {
				t.Fatalf("an error naming no field: %v", err)
			}
			return
		}
		if d.Override.OrderID != order || (d.Override.Decision != DecisionRelease && d.Override.Decision != DecisionCancel) {
			t.Fatalf("accepted %+v", d)
		}
		if !d.Scored {
			return
		}
		// A scored decision is a valid override that round-trips.
		if err := d.Override.Validate(); err != nil {
			t.Fatalf("accepted an invalid override %+v: %v", d.Override, err)
		}
		var buf bytes.Buffer
		if err := WriteOverrides(&buf, []Override{d.Override}); err != nil {
			t.Fatal(err)
		}
		ex, err := ReadOverrides(&buf, 1)
		if err != nil || len(ex) != 1 || ex[0] != d.Override.Example() {
			t.Fatalf("round trip of %+v: %+v, %v", d.Override, ex, err)
		}
	})
}

func BenchmarkParseDecision(b *testing.B) {
	details := map[string]string{"decision": "cancel", "hold": "risk", "reason": "stolen card", "override": "false", "risk_score": "0.8123",
		"risk_model": "m-1", "features": `{"customer_age_hours":2,"customer_orders_1h":9,"amount":80,"amount_ratio":1.5,"channel":"tmall","hour_of_day":3,"first_order":true}`}
	for b.Loop() {
		if _, err := ParseDecision("o-1", details); err != nil {
			b.Fatal(err)
		}
	}
}
