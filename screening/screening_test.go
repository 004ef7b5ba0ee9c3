package screening

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/address"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/routing"
)

// testNow is 10:30 UTC, 18:30 in Shanghai.
var testNow = time.Date(2025, 3, 14, 10, 30, 0, 0, time.UTC)

const (
	completeAddress   = "浙江省 杭州市 西湖区 文三路 90号"
	noDistrictAddress = "浙江省 杭州市 文三路 90号"
	poBoxAddress      = "上海市 浦东新区 邮政信箱 1234号"
	bondedAddress     = "上海市 浦东新区 外高桥保税区 基隆路 1号"
)

func newScreener(t testing.TB, o Options) *Screener {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return s
}

func request(addr string) *pb.CreateOrderRequest {
	return &pb.CreateOrderRequest{Channel: "tmall", ChannelOrderId: "T-1",
		Customer: &pb.Customer{Id: "c-1", Address: addr},
		Lines:    []*pb.OrderLineInput{{Sku: "SKU-1", Qty: 2, UnitPrice: "19.90"}}}
}

func input(addr string) *Input { return &Input{Request: request(addr), Now: testNow} }

// warehouse is an up warehouse with a rate to each region.
func warehouse(id string, caps []string, regions ...string) *routing.Warehouse {
	w := &routing.Warehouse{ID: id, Capabilities: caps}
	for _, r := range regions {
		w.Rates = append(w.Rates, routing.Rate{Region: r, Cost: "10.00", TransitDays: 2})
	}
	return w
}

func catalog(t testing.TB, ws ...*routing.Warehouse) *routing.Catalog {
	t.Helper()
	c, err := routing.NewCatalog(1, ws, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func codes(v Verdict) []string {
	var out []string
	for _, f := range v.Findings {
		out = append(out, f.Code)
	}
	return out
}

func TestValidateNamesTheConfigurationKey(t *testing.T) {
	cases := []struct {
		o      Options
		field  string
		detail string
	}{
		{Options{Address: "maybe"}, "holds.address", `"maybe" is not hold, refuse or accept`},
		{Options{Address: "Hold"}, "holds.address", `"Hold" is not hold, refuse or accept`},
		{Options{RiskHold: -0.1}, "holds.risk_hold", "-0.1 outside 0..1 (0: the default 0.9)"},
		{Options{RiskHold: 1.5}, "holds.risk_hold", "1.5 outside 0..1 (0: the default 0.9)"},
		{Options{RiskHold: math.NaN()}, "holds.risk_hold", "NaN outside 0..1 (0: the default 0.9)"},
		{Options{RiskRefuse: -1}, "holds.risk_refuse", "-1 outside 0..1 (0: the default 1)"},
		{Options{RiskRefuse: 2}, "holds.risk_refuse", "2 outside 0..1 (0: the default 1)"},
		{Options{RiskRefuse: math.NaN()}, "holds.risk_refuse", "NaN outside 0..1 (0: the default 1)"},
		{Options{RiskHold: 0.8, RiskRefuse: 0.5}, "holds.risk_refuse", "0.5 is below holds.risk_hold 0.8"},
		// The default hold (0.9) is above a refuse of 0.5.
		{Options{RiskRefuse: 0.5}, "holds.risk_refuse", "0.5 is below holds.risk_hold 0.9"},
	}
	for _, c := range cases {
		err := c.o.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Detail != c.detail {
			t.Errorf("Validate(%+v) = %v, want %s: %s", c.o, err, c.field, c.detail)
			continue
		}
		if want := c.field + ": " + c.detail; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
		if s, err := New(c.o); s != nil || !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("New(%+v) = %v, %v; want the error of %s", c.o, s, err, c.field)
		}
	}
	for _, o := range []Options{{}, {Address: Hold}, {Address: Refuse}, {Address: Accept},
		{RiskHold: 0.5, RiskRefuse: 0.5}, {RiskHold: 1}, {RiskHold: 0.95, RiskRefuse: 1}, {RiskHold: 0.0001, RiskRefuse: 0.0002}} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", o, err)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	s := newScreener(t, Options{})
	if s.address != Hold {
		t.Errorf("address action %q, want hold", s.address)
	}
	if hold, refuse := s.Thresholds(); hold != 0.9 || refuse != 1 || DefaultRiskHold != 0.9 || DefaultRiskRefuse != 1 {
		t.Errorf("Thresholds() = %v, %v; want 0.9, 1", hold, refuse)
	}
	if s.loc.String() != "Asia/Shanghai" {
		t.Errorf("location %q, want Asia/Shanghai", s.loc)
	}
	if s.Model() != nil {
		t.Errorf("Model() = %v, want nil", s.Model())
	}
	m := risk.Default()
	loc := time.FixedZone("X", -5*3600)
	s = newScreener(t, Options{Address: Refuse, Risk: m, RiskHold: 0.7, RiskRefuse: 0.8, Location: loc})
	if hold, refuse := s.Thresholds(); s.address != Refuse || hold != 0.7 || refuse != 0.8 || s.loc != loc || s.Model() != m {
		t.Errorf("screener %+v, thresholds %v %v", s, hold, refuse)
	}
}

func TestJudgeAddressWithoutModel(t *testing.T) {
	incomplete := Finding{Code: address.CodeIncomplete, Field: address.FieldDistrict, Detail: "no district after 杭州市"}
	cases := []struct {
		name, action, addr string
		want               Verdict
	}{
		{"complete", Hold, completeAddress, Verdict{Action: Accept}},
		{"no district, hold", Hold, noDistrictAddress, Verdict{Action: Hold, Reason: ReasonAddress, Findings: []Finding{incomplete}}},
		{"no district, default hold", "", noDistrictAddress, Verdict{Action: Hold, Reason: ReasonAddress, Findings: []Finding{incomplete}}},
		{"no district, refuse", Refuse, noDistrictAddress, Verdict{Action: Refuse, Reason: ReasonAddress, Findings: []Finding{incomplete}}},
		{"no district, checks off", Accept, noDistrictAddress, Verdict{Action: Accept}},
		{"PO box, checks off", Accept, poBoxAddress, Verdict{Action: Accept}},
		{"empty: a store pickup", Hold, "", Verdict{Action: Accept}},
		{"blank: a store pickup", Refuse, "  \t ", Verdict{Action: Accept}},
	}
	for _, c := range cases {
		s := newScreener(t, Options{Address: c.action})
		got := s.Judge(input(c.addr))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Judge = %+v, want %+v", c.name, got, c.want)
		}
	}
	// No customer at all: nothing to check either.
	s := newScreener(t, Options{})
	if got := s.Judge(&Input{Request: &pb.CreateOrderRequest{}, Now: testNow}); !reflect.DeepEqual(got, Verdict{Action: Accept}) {
		t.Errorf("no customer: %+v", got)
	}
}

func TestJudgePOBox(t *testing.T) {
	poBox := Finding{Code: address.CodePOBox, Field: address.FieldAddress,
		Detail: "the address is a PO box and the order's carrier refuses PO boxes"}
	c := catalog(t, warehouse("wh-a", []string{"po_box"}, "*"), warehouse("wh-b", nil, "*"),
		warehouse("wh-c", []string{"cold_chain", "po_box"}, "*"))
	cases := []struct {
		name       string
		catalog    *routing.Catalog
		warehouses []string
		want       bool
	}{
		{"no catalog", nil, []string{"wh-a"}, true},
		{"routing unknown", c, nil, true},
		{"one po_box warehouse", c, []string{"wh-a"}, false},
		{"every warehouse po_box", c, []string{"wh-a", "wh-c"}, false},
		{"one without", c, []string{"wh-a", "wh-b"}, true},
		{"without", c, []string{"wh-b"}, true},
		{"unregistered warehouse", c, []string{"wh-a", "wh-x"}, true},
	}
	for _, addr := range []string{poBoxAddress, "PO Box 12", "P.O. Box 12, Kowloon"} {
		for _, tc := range cases {
			s := newScreener(t, Options{})
			in := input(addr)
			in.Catalog, in.Warehouses = tc.catalog, tc.warehouses
			got := s.Judge(in)
			want := Verdict{Action: Accept}
			if tc.want {
				want = Verdict{Action: Hold, Reason: ReasonAddress, Findings: []Finding{poBox}}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q, %s: Judge = %+v, want %+v", addr, tc.name, got, want)
			}
		}
	}
}

func TestJudgeBondedZone(t *testing.T) {
	bonded := Finding{Code: address.CodeBondedZone, Field: address.FieldAddress,
		Detail: "the address is in a bonded zone and the order holds goods that are not bonded"}
	c := catalog(t, warehouse("wh-a", []string{"bonded"}, "east"), warehouse("wh-b", []string{"po_box"}, "east"),
		warehouse("wh-c", []string{"bonded", "po_box"}, "east"))
	cases := []struct {
		name       string
		catalog    *routing.Catalog
		warehouses []string
		want       bool
	}{
		{"no catalog", nil, []string{"wh-a"}, true},
		{"routing unknown", c, nil, true},
		{"bonded", c, []string{"wh-a"}, false},
		{"every warehouse bonded", c, []string{"wh-a", "wh-c"}, false},
		{"one not bonded", c, []string{"wh-a", "wh-b"}, true},
		{"not bonded", c, []string{"wh-b"}, true},
	}
	for _, tc := range cases {
		s := newScreener(t, Options{Address: Refuse})
		in := input(bondedAddress)
		in.Catalog, in.Warehouses = tc.catalog, tc.warehouses
		got := s.Judge(in)
		want := Verdict{Action: Accept}
		if tc.want {
			want = Verdict{Action: Refuse, Reason: ReasonAddress, Findings: []Finding{bonded}}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Judge = %+v, want %+v", tc.name, got, want)
		}
	}
}

func TestJudgeRegionUnserved(t *testing.T) {
	unserved := []Finding{{Code: address.CodeRegionUnserved, Field: address.FieldProvince, Detail: "no warehouse serves 浙江省"}}
	down := warehouse("wh-down", nil, "east", "*")
	down.State = routing.StateDown
	degraded := warehouse("wh-degraded", nil, "east")
	degraded.State = routing.StateDegraded
	cases := []struct {
		name   string
		ws     []*routing.Warehouse
		region string // the order's delivery_region
		want   []Finding
	}{
		{"no rate to east", []*routing.Warehouse{warehouse("wh-n", nil, "north", "south")}, "", unserved},
		{"a rate to east", []*routing.Warehouse{warehouse("wh-n", nil, "north"), warehouse("wh-e", nil, "east")}, "", nil},
		{"a rate to any region", []*routing.Warehouse{warehouse("wh-n", nil, "north"), warehouse("wh-x", nil, "*")}, "", nil},
		{"a down warehouse's rates do not count", []*routing.Warehouse{warehouse("wh-n", nil, "north"), down}, "", unserved},
		{"a degraded warehouse's do", []*routing.Warehouse{warehouse("wh-n", nil, "north"), degraded}, "", nil},
		{"routing judged the region", []*routing.Warehouse{warehouse("wh-n", nil, "north")}, "north", nil},
		{"no registered warehouse", nil, "", nil},
		{"every warehouse down", []*routing.Warehouse{down}, "", nil},
	}
	for _, tc := range cases {
		s := newScreener(t, Options{})
		in := input(completeAddress)
		in.Catalog, in.Request.DeliveryRegion = catalog(t, tc.ws...), tc.region
		got := s.Judge(in)
		want := Verdict{Action: Accept}
		if tc.want != nil {
			want = Verdict{Action: Hold, Reason: ReasonAddress, Findings: tc.want}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Judge = %+v, want %+v", tc.name, got, want)
		}
	}
	// An address with no province recognised is not judged by region.
	s := newScreener(t, Options{})
	in := input("PO Box 12")
	in.Catalog, in.Warehouses = catalog(t, warehouse("wh-n", []string{"po_box"}, "north")), []string{"wh-n"}
	if got := s.Judge(in); !reflect.DeepEqual(got, Verdict{Action: Accept}) {
		t.Errorf("international: %+v", got)
	}
}

func TestServedFollowsTheCatalog(t *testing.T) {
	s := newScreener(t, Options{})
	north := catalog(t, warehouse("wh-n", nil, "north"))
	east := catalog(t, warehouse("wh-e", nil, "east"))
	empty := catalog(t)
	steps := []struct {
		c    *routing.Catalog
		want []string
	}{
		{north, []string{address.CodeRegionUnserved}},
		{north, []string{address.CodeRegionUnserved}},
		{east, nil},
		{north, []string{address.CodeRegionUnserved}},
		{empty, nil},
		{empty, nil},
		{north, []string{address.CodeRegionUnserved}},
		{nil, nil},
		{east, nil},
	}
	for i, st := range steps {
		in := input(completeAddress)
		in.Catalog = st.c
		if got := codes(s.Judge(in)); !reflect.DeepEqual(got, st.want) {
			t.Errorf("step %d: findings %v, want %v", i, got, st.want)
		}
	}
}

func TestRegionOf(t *testing.T) {
	provinces := []struct{ name, code, region string }{
		{"北京市", "11", "north"}, {"天津市", "12", "north"}, {"河北省", "13", "north"}, {"山西省", "14", "north"},
		{"内蒙古自治区", "15", "north"},
		{"辽宁省", "21", "northeast"}, {"吉林省", "22", "northeast"}, {"黑龙江省", "23", "northeast"},
		{"上海市", "31", "east"}, {"江苏省", "32", "east"}, {"浙江省", "33", "east"}, {"安徽省", "34", "east"},
		{"福建省", "35", "east"}, {"江西省", "36", "east"}, {"山东省", "37", "east"}, {"台湾省", "71", "east"},
		{"河南省", "41", "central"}, {"湖北省", "42", "central"}, {"湖南省", "43", "central"},
		{"广东省", "44", "south"}, {"广西壮族自治区", "45", "south"}, {"海南省", "46", "south"},
		{"香港特别行政区", "81", "south"}, {"澳门特别行政区", "82", "south"},
		{"重庆市", "50", "southwest"}, {"四川省", "51", "southwest"}, {"贵州省", "52", "southwest"},
		{"云南省", "53", "southwest"}, {"西藏自治区", "54", "southwest"},
		{"陕西省", "61", "northwest"}, {"甘肃省", "62", "northwest"}, {"青海省", "63", "northwest"},
		{"宁夏回族自治区", "64", "northwest"}, {"新疆维吾尔自治区", "65", "northwest"},
	}
	if len(provinces) != 34 {
		t.Fatalf("%d provinces in the table, want 34", len(provinces))
	}
	seen := map[string]bool{}
	for _, p := range provinces {
		if got, ok := RegionOf(p.code); !ok || got != p.region {
			t.Errorf("RegionOf(%q) = %q, %v; want %q", p.code, got, ok, p.region)
		}
		// The address package names the province by the same code.
		if got := address.Parse(p.name).ProvinceCode; got != p.code {
			t.Errorf("address.Parse(%q).ProvinceCode = %q, want %q", p.name, got, p.code)
		}
		seen[p.region] = true
	}
	if len(regions) != 34 {
		t.Errorf("regions has %d codes, want 34", len(regions))
	}
	for _, r := range routing.SyntheticRegions {
		if !seen[r] {
			t.Errorf("region %q of the synthetic catalog has no province", r)
		}
	}
	if len(seen) != len(routing.SyntheticRegions) {
		t.Errorf("%d regions, want the %d of routing.SyntheticRegions", len(seen), len(routing.SyntheticRegions))
	}
	for _, code := range []string{"", "00", "10", "16", "30", "72", "83", "91", "1", "110", "east"} {
		if got, ok := RegionOf(code); ok || got != "" {
			t.Errorf("RegionOf(%q) = %q, %v; want \"\", false", code, got, ok)
		}
	}
}

// wantTop is the detail's list of contributions: the first three that raised the score.
func wantTop(sc *Score) string {
	var parts []string
	for _, c := range sc.Contributions {
		if c.Contribution > 0 && len(parts) < 3 {
			v := fmt.Sprint(c.Value)
			if c.Feature == "channel" {
				v = c.Category
			}
			parts = append(parts, fmt.Sprintf("%s=%s (%+.2f)", c.Feature, v, c.Contribution))
		}
	}
	if len(parts) == 0 {
		return "no single feature"
	}
	return strings.Join(parts, ", ")
}

func TestJudgeRisk(t *testing.T) {
	m := risk.Default()
	// Accept: default thresholds, an ordinary order.
	s := newScreener(t, Options{Risk: m})
	v := s.Judge(input(completeAddress))
	if v.Action != Accept || v.Reason != "" || v.Findings != nil || v.Risk == nil {
		t.Fatalf("ordinary order: %+v", v)
	}
	sc := v.Risk
	if sc.Model != m.Version() || sc.Model == "" || sc.Verdict != Accept || !(sc.Score > 0 && sc.Score < 1) {
		t.Fatalf("score %+v, want model %s, accept, in (0,1)", sc, m.Version())
	}
	if want := m.Explain(&sc.Features); !reflect.DeepEqual(sc.Explanation, want) {
		t.Errorf("explanation %+v, want the model's %+v", sc.Explanation, want)
	}
	if sc.Score <= 0.0002 {
		t.Fatalf("score %v: the tests below need it over 0.0002", sc.Score)
	}

	// Hold by risk alone.
	s = newScreener(t, Options{Risk: m, RiskHold: 0.0001, RiskRefuse: 1})
	v = s.Judge(input(completeAddress))
	if v.Action != Hold || v.Reason != ReasonRisk || v.Risk == nil || v.Risk.Verdict != Hold || len(v.Findings) != 1 {
		t.Fatalf("risk hold: %+v", v)
	}
	want := Finding{Code: CodeRiskScore, Detail: fmt.Sprintf("risk score %.3f is at or over the hold threshold 0.0001; most of it: %s",
		v.Risk.Score, wantTop(v.Risk))}
	if v.Findings[0] != want {
		t.Errorf("finding %+v, want %+v", v.Findings[0], want)
	}
	if !strings.Contains(v.Findings[0].Detail, "=") {
		t.Errorf("finding %q names no contribution", v.Findings[0].Detail)
	}

	// Refuse by risk alone.
	s = newScreener(t, Options{Risk: m, RiskHold: 0.0001, RiskRefuse: 0.0002})
	v = s.Judge(input(completeAddress))
	want.Detail = fmt.Sprintf("risk score %.3f is at or over the refuse threshold 0.0002; most of it: %s", v.Risk.Score, wantTop(v.Risk))
	if v.Action != Refuse || v.Reason != ReasonRisk || v.Risk.Verdict != Refuse || !reflect.DeepEqual(v.Findings, []Finding{want}) {
		t.Errorf("risk refuse: %+v", v)
	}

	// A risk refusal outranks an address hold: the reason becomes risk.
	v = s.Judge(input(noDistrictAddress))
	if v.Action != Refuse || v.Reason != ReasonRisk || !reflect.DeepEqual(codes(v), []string{address.CodeIncomplete, CodeRiskScore}) {
		t.Errorf("address hold, risk refuse: %+v", v)
	}

	// An address refusal with a risk hold: refuse, for the address.
	s = newScreener(t, Options{Address: Refuse, Risk: m, RiskHold: 0.0001, RiskRefuse: 1})
	v = s.Judge(input(noDistrictAddress))
	if v.Action != Refuse || v.Reason != ReasonAddress || v.Risk.Verdict != Hold ||
		!reflect.DeepEqual(codes(v), []string{address.CodeIncomplete, CodeRiskScore}) {
		t.Errorf("address refuse, risk hold: %+v", v)
	}

	// An address hold and a risk hold: hold, for the address (the first).
	s = newScreener(t, Options{Risk: m, RiskHold: 0.0001, RiskRefuse: 1})
	v = s.Judge(input(noDistrictAddress))
	if v.Action != Hold || v.Reason != ReasonAddress || !reflect.DeepEqual(codes(v), []string{address.CodeIncomplete, CodeRiskScore}) {
		t.Errorf("address hold, risk hold: %+v", v)
	}

	// Both refuse: the address refused first.
	s = newScreener(t, Options{Address: Refuse, Risk: m, RiskHold: 0.0001, RiskRefuse: 0.0002})
	if v = s.Judge(input(noDistrictAddress)); v.Action != Refuse || v.Reason != ReasonAddress {
		t.Errorf("both refuse: %+v", v)
	}
}

func TestTop(t *testing.T) {
	sc := &Score{Explanation: risk.Explanation{Contributions: []risk.Contribution{
		{Feature: "customer_age_hours", Value: 9000, Contribution: -2},
		{Feature: "channel", Category: "other", Contribution: 1.5},
		{Feature: "customer_orders_1h", Value: 7, Contribution: 1.25},
		{Feature: "amount_ratio", Value: 0.5, Contribution: -1},
		{Feature: "amount", Value: 1234.5678, Contribution: 0.5},
		{Feature: "sku_pressure", Value: 0.9, Contribution: 0.25},
	}}}
	// The largest contribution lowered the score: it is passed over.
	if got, want := top(sc), "channel=other (+1.50), customer_orders_1h=7 (+1.25), amount=1235 (+0.50)"; got != want {
		t.Errorf("top = %q, want %q", got, want)
	}
	sc.Contributions = sc.Contributions[:1]
	if got := top(sc); got != "no single feature" {
		t.Errorf("top of a negative contribution = %q", got)
	}
	sc.Contributions = nil
	if got := top(sc); got != "no single feature" {
		t.Errorf("top of nothing = %q", got)
	}
}

func TestFeatures(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip(err)
	}
	// No history: a first order.
	in := input(completeAddress)
	in.Request.Channel = "douyin"
	in.Request.Lines = []*pb.OrderLineInput{{Sku: "A", Qty: 3, UnitPrice: "10.50"}, {Sku: "B", Qty: 1, UnitPrice: "100"},
		{Sku: "C", Qty: 2, UnitPrice: "not a price"}, {Sku: "D", Qty: 1, UnitPrice: "-5"}, {Sku: "E", Qty: 1, UnitPrice: "Inf"},
		{Sku: "F", Qty: 1, UnitPrice: "NaN"}, {Sku: "G", Qty: 1, UnitPrice: ""}, {Sku: "H", Qty: -2, UnitPrice: "7"}}
	in.SKUPressure = -0.5
	got := features(in, shanghai)
	want := risk.Features{Channel: "douyin", HourOfDay: 18, Amount: 131.5, AmountRatio: 1, FirstOrder: true}
	if got != want {
		t.Errorf("first order: features %+v, want %+v", got, want)
	}
	if a := Amount(in.Request); a != 131.5 {
		t.Errorf("Amount = %v, want 131.5", a)
	}

	// With history.
	in = input(completeAddress)
	in.Request.PayerRegion, in.Request.DeliveryRegion = "north", "east"
	in.History = History{FirstUnixNano: testNow.Add(-50 * time.Hour).UnixNano(), Orders: 4, Orders1h: 1, Orders24h: 2,
		AmountSum: 19.9, AddressCustomers: 3, DeviceCustomers: 5}
	in.SKUPressure = 0.25
	got = features(in, time.UTC)
	amount := 2 * 19.9 // as a float64, not a constant
	want = risk.Features{Channel: "tmall", HourOfDay: 10, Amount: amount, AmountRatio: amount / (19.9 / 4), CustomerAgeHours: 50,
		CustomerOrders1h: 1, CustomerOrders24h: 2, AddressCustomers: 3, DeviceCustomers: 5, RegionMismatch: true, SKUPressure: 0.25}
	if got != want {
		t.Errorf("with history: features %+v, want %+v", got, want)
	}
	if got.AmountRatio != 8 {
		t.Errorf("amount ratio %v, want 8", got.AmountRatio)
	}

	// Region mismatch needs both regions; same regions do not mismatch.
	for _, c := range []struct {
		payer, delivery string
		want            bool
	}{{"north", "north", false}, {"", "east", false}, {"north", "", false}, {"", "", false}, {"south", "east", true}} {
		in.Request.PayerRegion, in.Request.DeliveryRegion = c.payer, c.delivery
		if got := features(in, time.UTC).RegionMismatch; got != c.want {
			t.Errorf("payer %q, delivery %q: mismatch %v, want %v", c.payer, c.delivery, got, c.want)
		}
	}

	// A first order time in the future, or none, gives age 0; history
	// without amounts gives ratio 1; orders but not first.
	in.History = History{FirstUnixNano: testNow.Add(time.Hour).UnixNano(), Orders: 2}
	got = features(in, time.UTC)
	if got.CustomerAgeHours != 0 || got.AmountRatio != 1 || got.FirstOrder {
		t.Errorf("future first order: %+v", got)
	}
	// The hour is the location's: 10:30 UTC is 06:30 in New York (EDT, UTC-4, from 9 March 2025).
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		if h := features(in, ny).HourOfDay; h != 6 {
			t.Errorf("hour in New York %d, want 6", h)
		}
	}
}

func TestScoreColumns(t *testing.T) {
	names := GroupedFeatureNames()
	if len(names) != risk.PlainColumnCount+1 || names[len(names)-1] != "channel" {
		t.Fatalf("GroupedFeatureNames() = %v: want the %d plain features, then channel", names, risk.PlainColumnCount)
	}
	if !reflect.DeepEqual(names[:risk.PlainColumnCount], risk.FeatureNames()[:risk.PlainColumnCount]) {
		t.Errorf("GroupedFeatureNames() = %v, want the plain names of %v", names, risk.FeatureNames())
	}
	names[0] = "changed"
	if GroupedFeatureNames()[0] == "changed" {
		t.Error("GroupedFeatureNames returns its own slice")
	}
	s := newScreener(t, Options{Risk: risk.Default()})
	in := input(completeAddress)
	in.Request.Channel = "an unknown channel"
	in.History = History{FirstUnixNano: testNow.Add(-24 * time.Hour).UnixNano(), Orders: 2, Orders1h: 1, Orders24h: 2, AmountSum: 80,
		AddressCustomers: 2, DeviceCustomers: 3}
	in.SKUPressure = 0.4
	sc := s.Judge(in).Risk
	features, contributions := sc.Columns()
	amount := 2 * 19.9 // as a float64, not a constant
	want := []float32{24, 1, 2, 3, 2, float32(amount), float32(amount / (80.0 / 2)), 0, 18, 0.4, 0}
	if len(want) != risk.PlainColumnCount || !reflect.DeepEqual(features, want) {
		t.Errorf("features %v, want %v", features, want)
	}
	wide := make([]float64, len(features))
	for i, f := range features {
		wide[i] = float64(f)
	}
	if f, ok := risk.FromColumns(wide, sc.Features.Channel); !ok || f.Channel != sc.Features.Channel || f.HourOfDay != sc.Features.HourOfDay ||
		math.Abs(f.Amount-sc.Features.Amount) > 1e-4 || math.Abs(f.AmountRatio-sc.Features.AmountRatio) > 1e-6 {
		t.Errorf("FromColumns(features) = %+v, %v; want %+v", f, ok, sc.Features)
	}
	if len(contributions) != len(GroupedFeatureNames()) {
		t.Fatalf("%d contributions, want %d", len(contributions), len(GroupedFeatureNames()))
	}
	sum := sc.Base
	for i, c := range contributions {
		sum += float64(c)
		for _, e := range sc.Contributions {
			if e.Feature == GroupedFeatureNames()[i] && float32(e.Contribution) != c {
				t.Errorf("contribution %s = %v, want %v", e.Feature, c, e.Contribution)
			}
		}
	}
	if math.Abs(sum-sc.Logit) > 1e-5 { // float32 contributions
		t.Errorf("base %v + contributions = %v, want the logit %v", sc.Base, sum, sc.Logit)
	}
	if sc.Contributions[0].Contribution == 0 && contributions[len(contributions)-1] == 0 {
		t.Log("every contribution is 0")
	}
}

func TestSetModelWhileJudging(t *testing.T) {
	trained, err := risk.Train(risk.Synthetic(3, 3000), risk.TrainOptions{Trees: 3})
	if err != nil {
		t.Fatal(err)
	}
	def := risk.Default()
	if trained.Version() == def.Version() {
		t.Fatal("the trained model has the default's version")
	}
	s := newScreener(t, Options{Risk: def})
	const judges, rounds = 4, 200
	var wg sync.WaitGroup
	errs := make(chan string, judges)
	for g := 0; g < judges; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := input(completeAddress)
			for i := 0; i < rounds; i++ {
				v := s.Judge(in)
				if v.Risk == nil {
					errs <- "no score"
					return
				}
				if m := v.Risk.Model; m != def.Version() && m != trained.Version() {
					errs <- "model " + m
					return
				}
			}
		}()
	}
	for i := 0; i < rounds; i++ {
		if i%2 == 0 {
			s.SetModel(trained)
		} else {
			s.SetModel(def)
		}
	}
	s.SetModel(trained)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if s.Model() != trained {
		t.Fatal("Model() is not the model set last")
	}
	in := input(completeAddress)
	sc := s.Judge(in).Risk
	if sc.Model != trained.Version() || sc.Score != trained.Score(&sc.Features) {
		t.Errorf("after SetModel: model %s score %v; want %s %v", sc.Model, sc.Score, trained.Version(), trained.Score(&sc.Features))
	}
	s.SetModel(nil)
	if v := s.Judge(in); v.Risk != nil || v.Action != Accept {
		t.Errorf("after SetModel(nil): %+v", v)
	}
}

func benchInput(b *testing.B) *Input {
	ws := []*routing.Warehouse{
		{ID: "wh-east", Rates: []routing.Rate{{Region: "east", Cost: "8.00", TransitDays: 1}, {Region: "north", Cost: "12.00", TransitDays: 2}}},
		{ID: "wh-south", Rates: []routing.Rate{{Region: "south", Cost: "9.00", TransitDays: 1}, {Region: "*", Cost: "15.00", TransitDays: 3}}},
	}
	c, err := routing.NewCatalog(7, ws, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2025, 3, 14, 10, 30, 0, 0, time.UTC)
	return &Input{
		Request: &pb.CreateOrderRequest{Channel: "tmall", ChannelOrderId: "T-1",
			Customer: &pb.Customer{Id: "c-1", Address: "浙江省 杭州市 西湖区 文三路 90号 3幢 501室"},
			Lines:    []*pb.OrderLineInput{{Sku: "SKU-1", Qty: 1, UnitPrice: "199.00"}, {Sku: "SKU-2", Qty: 2, UnitPrice: "39.90"}, {Sku: "SKU-3", Qty: 1, UnitPrice: "12.50"}}},
		Now: now, Warehouses: []string{"wh-east"}, Catalog: c,
		History:     History{FirstUnixNano: now.Add(-90 * 24 * time.Hour).UnixNano(), Orders: 3, Orders24h: 1, AmountSum: 600, AddressCustomers: 1, DeviceCustomers: 1},
		SKUPressure: 0.01,
	}
}

func benchJudge(b *testing.B, o Options) {
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if v := s.Judge(in); v.Action != Accept {
			b.Fatalf("%+v", v)
		}
	}
}

func BenchmarkJudge(b *testing.B) { benchJudge(b, Options{Risk: risk.Default()}) }

func BenchmarkJudgeAddressOnly(b *testing.B) { benchJudge(b, Options{}) }

func BenchmarkJudgeRiskOnly(b *testing.B) {
	benchJudge(b, Options{Address: Accept, Risk: risk.Default()})
}

// AddressRefuse refuses on its codes whatever the address action, and
// holds on the others; an unknown code is refused by Validate naming it.
func TestAddressRefuseCodes(t *testing.T) {
	if _, err := New(Options{AddressRefuse: []string{"po_box", "moon_base"}}); err == nil || err.Error() != `holds.address_refuse[1]: "moon_base" is not one of address_missing, address_incomplete, address_ambiguous, region_unserved, po_box, bonded_zone` {
		t.Fatalf("unknown code: %v", err)
	}
	s, err := New(Options{AddressRefuse: []string{"po_box"}})
	if err != nil {
		t.Fatal(err)
	}
	judge := func(addr string) Verdict {
		return s.Judge(&Input{Request: &pb.CreateOrderRequest{Channel: "tmall", Customer: &pb.Customer{Id: "c", Address: addr}}, Now: time.Unix(1_800_000_000, 0)})
	}
	if v := judge("上海市 浦东新区 邮政信箱 1234号"); v.Action != Refuse || v.Reason != ReasonAddress || len(v.Findings) == 0 || v.Findings[0].Code != "po_box" {
		t.Fatalf("PO box: %+v", v)
	}
	if v := judge("浙江省 杭州市 文三路 90号"); v.Action != Hold || v.Reason != ReasonAddress {
		t.Fatalf("incomplete: %+v", v)
	}
}
