package gateway

import (
	"strings"
	"testing"

	"github.com/ordergrid/ordergrid/intake"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

var limits = Limits{LinesMax: 100, QtyMax: 1_000_000, BatchMax: 1000}

const validOrder = `{"channel":"douyin","channel_order_id":"123","customer":{"id":"c1","name":"Li Lei","phone":"138","address":"Shanghai"},"lines":[{"sku":"SKU-1","qty":2,"unit_price":"19.90"}],"currency":"CNY"}`

func TestDecodeValidOrder(t *testing.T) {
	var r pb.CreateOrderRequest
	if p := decodeOrder([]byte(validOrder), &r); p != nil {
		t.Fatal(p)
	}
	if v := validateCreateOrder(&r, limits, ""); len(v) != 0 {
		t.Fatal(v)
	}
	if r.Lines[0].Qty != 2 || r.Customer.Name != "Li Lei" {
		t.Fatalf("%v", &r)
	}
	again := &pb.CreateOrderRequest{Channel: r.Channel, ChannelOrderId: r.ChannelOrderId}
	if intake.OrderID(again) != intake.OrderID(&r) || !validOrderID(intake.OrderID(&r)) {
		t.Fatal("the order id must follow from channel and channel order id alone")
	}
	keyed := &pb.CreateOrderRequest{IdempotencyKey: "k", Channel: "douyin", ChannelOrderId: "123"}
	if intake.OrderID(keyed) == intake.OrderID(&r) {
		t.Fatal("the idempotency key must pick the id")
	}
}

// FuzzDecodeOrder: any body decodes to an order or to a problem naming what
// is wrong; nothing panics, an accepted order satisfies every limit, and
// the hand-written decoder agrees with encoding/json (decodeAgrees).
func FuzzDecodeOrder(f *testing.F) {
	for _, s := range []string{validOrder, `{}`, `[]`, `null`, `{"lines":[{"qty":1e99}]}`, `{"customer":{"id":"\u0000"}}`,
		`{"lines":[null]}`, strings.Repeat(`[`, 10000), `{"channel":"a","channel":"b"}`, `{"lines":[{"sku":"x","qty":-1,"unit_price":"01.0"}]}`,
		`{"channel":"tmall","channel_order_id":"9\u00e9\ud83d\ude00","customer":{"id":"c","name":"\"Li\"","erased":false,"withheld":null},` +
			`"lines":[{"sku":"S-1","qty":-0,"unit_price":"1.00"},{"sku":"S-2","qty":1e2}],"required_capabilities":["cold_chain"],` +
			`"channel_fields":{"a":"b","c":null},"delivery_region":"SH","customer_tier":"vip","promised_by":"2026-12-01T00:00:00Z","currency":null}`,
		` { "lines" : [ ] , "customer" : null } `, `{"Channel":"a"}`,
		`{"adjustments":[{"kind":"discount","amount":"5.00","line":1,"funded_by":"shop","detail":"coupon"},{"kind":"tax","line":-3,"detail":null}]}`,
		`{"adjustments":[{"line":2147483648}]}`, `{"adjustments":[{"line":1.5}]}`, `{"adjustments":null}`, `{"adjustments":[null]}`, `{"lines":[{"qty":9223372036854775807}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r pb.CreateOrderRequest
		p := decodeOrder(body, &r)
		decodeAgrees(t, body, &r, p)
		if p != nil {
			if p.Status < 400 || p.Status >= 500 || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		v := validateCreateOrder(&r, limits, "")
		if len(v) > 0 {
			for _, x := range v {
				if x.Field == "" || x.Detail == "" {
					t.Fatalf("violation without a field: %+v", x)
				}
			}
			return
		}
		if len(r.Lines) == 0 || len(r.Lines) > limits.LinesMax || r.Customer == nil {
			t.Fatalf("accepted an order outside the limits: %v", &r)
		}
		for _, l := range r.Lines {
			if l.Qty < 1 || l.Qty > limits.QtyMax || !namePattern.MatchString(l.Sku) {
				t.Fatalf("accepted line %v", l)
			}
		}
		if !validOrderID(intake.OrderID(&r)) {
			t.Fatalf("bad id %s", intake.OrderID(&r))
		}
	})
}
