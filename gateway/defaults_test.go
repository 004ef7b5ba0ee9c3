package gateway

import (
	"testing"

	"github.com/ordergrid/ordergrid/config"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Zero gateway settings take the configuration's defaults, so a gateway
// built with zero Options takes an ordinary order instead of refusing it.
func TestZeroOptionsTakeTheDefaults(t *testing.T) {
	var o Options
	o.withDefaults()
	d := config.Default()
	want := Limits{LinesMax: d.Orders.LinesMax, QtyMax: d.Orders.QtyMax, BatchMax: d.Orders.BatchMax}
	if o.Limits != want || o.BodyBytesMax != d.HTTP.BodyBytesMax || o.InFlightMax != d.HTTP.InFlightMax ||
		o.RequestTimeout != d.Actor.RequestTimeout+RequestTimeoutSlack {
		t.Fatalf("defaults %+v, want limits %+v, body %d, in flight %d", o, want, d.HTTP.BodyBytesMax, d.HTTP.InFlightMax)
	}
	neg := Options{Limits: Limits{LinesMax: -1, QtyMax: -1, BatchMax: -1}, BodyBytesMax: -1, InFlightMax: -1, RequestTimeout: -1}
	neg.withDefaults()
	if neg.Limits != o.Limits || neg.BodyBytesMax != o.BodyBytesMax || neg.InFlightMax != o.InFlightMax || neg.RequestTimeout != o.RequestTimeout {
		t.Fatalf("negative settings: %+v", neg)
	}
	order := &pb.CreateOrderRequest{Channel: "douyin", ChannelOrderId: "1", Currency: "CNY", Customer: &pb.Customer{Id: "u-1"},
		Lines: []*pb.OrderLineInput{{Sku: "SKU-1", Qty: 2, UnitPrice: "19.90"}}}
	if v := validateCreateOrder(order, o.Limits, ""); len(v) > 0 {
		t.Fatalf("an ordinary order under the default limits: %v", v)
	}
}
