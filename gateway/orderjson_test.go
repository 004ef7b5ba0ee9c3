package gateway

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// orderFields are the members of an order and its parts, for checking that
// a key the hand-written decoder calls unknown differs from a known one
// only by case (encoding/json matches keys case-insensitively).
var orderFields = []string{"channel", "channel_order_id", "customer", "lines", "currency", "idempotency_key", "delivery_region",
	"customer_tier", "promised_by", "required_capabilities", "channel_fields", "id", "name", "phone", "address", "id_number",
	"email", "erased", "withheld", "sku", "qty", "unit_price", "adjustments", "kind", "amount", "line", "funded_by", "detail"}

// decodeAgrees checks decodeOrder's outcome (got, p) against encoding/json
// on the same body: both accept and decode the same order, or both refuse,
// or the hand-written decoder refuses for one of its deliberate
// strictnesses (a duplicate key, invalid UTF-8 or a lone surrogate, a key
// matched only case-insensitively, a null array element or body).
func decodeAgrees(t *testing.T, body []byte, got *pb.CreateOrderRequest, p *Problem) {
	t.Helper()
	var want pb.CreateOrderRequest
	wantP := DecodeJSON(body, &want)
	switch {
	case p == nil && wantP == nil:
		if !proto.Equal(got, &want) {
			t.Fatalf("%q: hand-written %v, encoding/json %v", body, got, &want)
		}
	case p == nil:
		t.Fatalf("%q: accepted by the hand-written decoder (%v), refused by encoding/json: %v", body, got, wantP)
	case wantP == nil:
		d := p.Detail
		strict := strings.Contains(d, "a duplicate key") || strings.Contains(d, "not valid UTF-8") || strings.Contains(d, "lone surrogate") ||
			strings.Contains(d, "got JSON null") || !utf8.Valid(body)
		if !strict && strings.HasPrefix(d, "unknown field ") {
			f := p.Errors[0].Field
			name := f[strings.LastIndexAny(f, ".]")+1:]
			strict = slices.ContainsFunc(orderFields, func(k string) bool { return strings.EqualFold(k, name) })
		}
		if !strict {
			t.Fatalf("%q: refused by the hand-written decoder (%s), accepted by encoding/json: %v", body, d, &want)
		}
	}
	if p != nil && (p.Status != 400 || p.Detail == "") {
		t.Fatalf("%q: problem %+v", body, p)
	}
}

func TestDecodeOrderNamesTheField(t *testing.T) {
	for _, c := range []struct{ body, field, detail string }{
		{`{"adjustments":[{"kind":"tax","line":4294967296}]}`, "adjustments[0].line", "adjustments[0].line must be a 32-bit integer, got JSON number 4294967296"},
		{`{"adjustments":[{"kind":"tax","kind":"tax"}]}`, "adjustments[0].kind", "adjustments[0].kind: a duplicate key"},
		{`{"lines":[{"sku":"a","qty":1},{"sku":"b","qty":"2"}]}`, "lines[1].qty", "lines[1].qty must be an integer, got JSON string"},
		{`{"lines":[{"sku":"a","qty":1.5}]}`, "lines[0].qty", "lines[0].qty must be an integer, got JSON number 1.5"},
		{`{"lines":[{"sku":"a","qty":99999999999999999999}]}`, "lines[0].qty", "must be an integer, got JSON number 99999999999999999999"},
		{`{"customer":{"id":"c","nick":"x"}}`, "customer.nick", `unknown field "customer.nick"`},
		{`{"customer":{"name":7}}`, "customer.name", "customer.name must be a string, got JSON number"},
		{`{"channel":"a","channel":"b"}`, "channel", "channel: a duplicate key"},
		{`{"lines":[{"sku":"a","sku":"b"}]}`, "lines[0].sku", "lines[0].sku: a duplicate key"},
		{`{"channel_fields":{"k":"1","k":"2"}}`, "channel_fields.k", "channel_fields.k: a duplicate key"},
		{"{\"channel\":\"a\xffb\"}", "channel", "channel: not valid UTF-8"},
		{`{"channel":"\ud800"}`, "channel", "lone surrogate"},
		{`{"lines":[null]}`, "lines[0]", "lines[0] must be an object, got JSON null"},
		{`{"required_capabilities":["a",3]}`, "required_capabilities[1]", "must be a string, got JSON number"},
		{`[]`, "body", "the body must be an object, got JSON array"},
		{`{"channel":"a"} {}`, "body", "unexpected data after the JSON value"},
		{`{"channel":"a",}`, "body", "a trailing comma"},
		{`{"channel":"a"`, "body", "the body ends early"},
	} {
		var r pb.CreateOrderRequest
		p := decodeOrder([]byte(c.body), &r)
		if p == nil {
			t.Errorf("%s: accepted", c.body)
			continue
		}
		field := ""
		if len(p.Errors) > 0 {
			field = p.Errors[0].Field
		}
		if field != c.field || !strings.Contains(p.Detail, c.detail) || p.Status != 400 {
			t.Errorf("%s: field %q detail %q, want field %q detail containing %q", c.body, field, p.Detail, c.field, c.detail)
		}
	}
	// In a batch, an order of the wrong shape is refused alone; malformed
	// JSON refuses the body.
	var b pb.BatchCreateOrdersRequest
	bad, p := decodeBatch([]byte(`{"orders":[{"channel":"a"},{"lines":[{"qty":true,"x":[1,{"y":"\u00e9"}]}],"z":1},7,{"channel":"c"}]}`), &b)
	if p != nil || len(b.Orders) != 4 || b.Orders[0].Channel != "a" || b.Orders[3].Channel != "c" || len(bad) != 2 ||
		bad[1].Errors[0].Field != "orders[1].lines[0].qty" || bad[2].Errors[0].Field != "orders[2]" {
		t.Fatalf("batch: %v %+v %v", &b, bad, p)
	}
	for _, body := range []string{`{"orders":[{"lines":[{"qty":true}]},{"channel":"a"`, `{"orders":[{"lines":[{"qty":true,}]}]}`,
		`{"orders":[{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}`} {
		var b pb.BatchCreateOrdersRequest
		if _, p := decodeBatch([]byte(body), &b); p == nil {
			t.Errorf("%s: accepted", body)
		}
	}
	var e pb.OrderEventRequest
	if p := decodeEvent([]byte(`{"type":"paid","carrier":"SF","carrier":"JD"}`), &e); p == nil || p.Errors[0].Field != "carrier" {
		t.Fatalf("event: %+v", p)
	}
	if p := decodeEvent([]byte(" {\"type\":\"shipped\",\"carrier\":\"SF\",\"tracking_number\":\"SF1\\u00e9\",\"reason\":null}\n"), &e); p != nil ||
		e.Type != "shipped" || e.TrackingNumber != "SF1é" {
		t.Fatalf("event: %+v %v", p, &e)
	}
}

// Random orders, written by hand and by encoding/json, byte for byte; and
// read back by the hand-written decoder.
func TestAppendOrderMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	pieces := []string{"a", "Z9", " ", "<", ">", "&", `"`, `\`, "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f", "\x7f", "é", "订单",
		"\u2028", "\u2029", "\xff", "\xe2\x80", "😀", "/"}
	str := func() string {
		var sb strings.Builder
		for range rng.Intn(6) {
			sb.WriteString(pieces[rng.Intn(len(pieces))])
		}
		return sb.String()
	}
	for i := 0; i < 2000; i++ {
		o := &pb.Order{Id: str(), Status: str(), Channel: str(), ChannelOrderId: str(), Currency: str(), Total: str(),
			Version: rng.Uint64(), CreatedAt: str(), UpdatedAt: str(), PayBy: str(), IdempotencyKey: str(), ShipmentCarrier: str(),
			ShipmentTracking: str(), DeliveryRegion: str(), CustomerTier: str(), PromisedBy: str(), RoutingStrategy: str()}
		if rng.Intn(3) > 0 {
			o.Customer = &pb.Customer{Id: str(), Name: str(), Phone: str(), Address: str(), IdNumber: str(), Email: str(),
				Erased: rng.Intn(2) == 0, Withheld: rng.Intn(2) == 0}
		}
		for range rng.Intn(4) {
			o.Lines = append(o.Lines, &pb.OrderLine{Sku: str(), Qty: rng.Int63() - rng.Int63(), UnitPrice: str(), Warehouse: str()})
		}
		for range rng.Intn(3) {
			o.RequiredCapabilities = append(o.RequiredCapabilities, str())
		}
		if rng.Intn(2) == 0 {
			o.AmountDue = str()
		}
		for range rng.Intn(3) {
			o.Adjustments = append(o.Adjustments, &pb.Adjustment{Kind: str(), Amount: str(), Line: rng.Int31() - rng.Int31(), FundedBy: str(), Detail: str()})
		}
		if rng.Intn(2) == 0 {
			o.Hold = &pb.OrderHold{Reason: str(), HeldAt: str(), Until: str(), Decision: str(), DecidedBy: str(), DecisionReason: str(), DecidedAt: str()}
			for range rng.Intn(3) {
				o.Hold.Findings = append(o.Hold.Findings, &pb.HoldFinding{Code: str(), Detail: str()})
			}
		}
		if rng.Intn(2) == 0 {
			o.RiskVerdict = str()
			// Scores across encoding/json's two notations.
			o.RiskScore = []float64{0, 1, 0.5, rng.Float64(), rng.Float64() * 1e-9, 3e-7, 1e-6, 0.123456789012345678}[rng.Intn(8)]
		}
		if n := rng.Intn(4); n > 0 {
			o.ChannelFields = map[string]string{}
			for range n {
				o.ChannelFields[str()] = str()
			}
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(orderJSON(o)); err != nil {
			t.Fatal(err)
		}
		got := append(appendOrder(nil, o), '\n')
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("order %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
		res := &pb.BatchCreateOrdersResponse{Results: []*pb.BatchCreateOrderResult{{Status: 201, Order: o},
			{Status: 409, Problem: &pb.Problem{Type: "t<", Title: str(), Status: 409, Detail: str(), Sku: str(),
				Errors: []*pb.FieldViolation{{Field: str(), Detail: str()}}}}}}
		want.Reset()
		out := batchJSON{}
		for _, r := range res.Results {
			br := batchResultJSON{Status: int(r.Status)}
			if r.Order != nil {
				ov := orderJSON(r.Order)
				br.Order = &ov
			}
			if r.Problem != nil {
				pv := problemProtoJSON(r.Problem)
				br.Problem = &pv
			}
			out.Results = append(out.Results, br)
		}
		if err := json.NewEncoder(&want).Encode(out); err != nil {
			t.Fatal(err)
		}
		if got := appendBatch(nil, res); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("batch %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
}

// A valid order read by hand and by encoding/json, for the per-order cost.
func BenchmarkDecodeOrder(b *testing.B) {
	body := []byte(validOrder)
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r pb.CreateOrderRequest
			if p := decodeOrder(body, &r); p != nil {
				b.Fatal(p)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r pb.CreateOrderRequest
			if p := DecodeJSON(body, &r); p != nil {
				b.Fatal(p)
			}
		}
	})
}

func BenchmarkEncodeOrder(b *testing.B) {
	o := &pb.Order{Id: "o-0123456789abcdef", Status: "pending_payment", Channel: "douyin", ChannelOrderId: "123", Currency: "CNY",
		Total: "39.80", Version: 1, CreatedAt: "2026-11-28T12:00:00.123456789Z", UpdatedAt: "2026-11-28T12:00:00.123456789Z",
		PayBy: "2026-11-28T12:15:00Z", Customer: &pb.Customer{Id: "c1", Withheld: true}, RoutingStrategy: "default@1",
		Lines: []*pb.OrderLine{{Sku: "SKU-1", Qty: 2, UnitPrice: "19.90", Warehouse: "WH1"}}}
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = appendOrder(buf[:0], o)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			_ = json.NewEncoder(&buf).Encode(orderJSON(o))
		}
	})
}

// FuzzDecodeBatch: any body decodes to orders (some refused alone, each
// with a 400 naming its place) or to one problem; nothing panics, and
// where encoding/json reads the same body, the orders it reads are those
// the hand-written decoder accepted.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`{"orders":[` + validOrder + `,{"lines":[{"qty":"x"}]},7,null]}`, `{"orders":null}`, `{"orders":[]}`,
		`{"orders":[{"customer":{"x":[1,2,{"a":true}]}}]}`, `{"orders":[{},{}],"orders":[]}`, `[{"orders":[]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b pb.BatchCreateOrdersRequest
		bad, p := decodeBatch(body, &b)
		if p != nil {
			if p.Status != 400 || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		for i, q := range bad {
			if i < 0 || i >= len(b.Orders) || q.Status != 400 || len(q.Errors) == 0 || !strings.HasPrefix(q.Errors[0].Field, "orders[") {
				t.Fatalf("order %d of %d: %+v", i, len(b.Orders), q)
			}
		}
		var want pb.BatchCreateOrdersRequest
		if DecodeJSON(body, &want) == nil && len(bad) == 0 && utf8.Valid(body) {
			if len(want.Orders) != len(b.Orders) {
				t.Fatalf("%d orders, encoding/json %d", len(b.Orders), len(want.Orders))
			}
		}
	})
}

// Every other body is checked before encoding/json reads it: a key twice
// in one object, a string that is not UTF-8 and data after the value are
// refused, naming the field by its full path.
func TestStrictJSON(t *testing.T) {
	for _, c := range []struct{ body, field, detail string }{
		{`{"on_hand":50,"on_hand":60}`, "on_hand", "on_hand: a duplicate key"},
		{`{"rates":[{"region":"SH"},{"region":"BJ","region":"GZ"}]}`, "rates[1].region", "a duplicate key"},
		{"{\"name\":\"a\xc3\"}", "name", "not valid UTF-8"},
		{`{"a":1} x`, "body", "unexpected data after the JSON value"},
		{`{"a":[1,2,]}`, "body", "a trailing comma"},
	} {
		p := strictJSON([]byte(c.body))
		if p == nil {
			t.Errorf("%s: accepted", c.body)
			continue
		}
		field := ""
		if len(p.Errors) > 0 {
			field = p.Errors[0].Field
		}
		if field != c.field || !strings.Contains(p.Detail, c.detail) || p.Status != 400 {
			t.Errorf("%s: %q %q", c.body, field, p.Detail)
		}
	}
	for _, ok := range []string{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, ` [1, "\u00e9", true, null, -0.5e3] `, `"x"`} {
		if p := strictJSON([]byte(ok)); p != nil {
			t.Errorf("%s: %v", ok, p)
		}
	}
}
