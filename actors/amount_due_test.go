package actors

import (
	"bytes"
	"testing"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

func TestAmountDue(t *testing.T) {
	for _, c := range []struct {
		total string
		adj   []*pb.Adjustment
		want  string
	}{
		{"54.98", nil, "54.98"},
		{"54.98", []*pb.Adjustment{{Kind: "discount", Amount: "5.00"}, {Kind: "discount", Amount: "5"}, {Kind: "tax", Amount: "4.40"},
			{Kind: "shipping", Amount: "10.00"}}, "59.38"},
		{"10", []*pb.Adjustment{{Kind: "tax", Amount: "0.125"}}, "10.125"},
		{"0.30", []*pb.Adjustment{{Kind: "discount", Amount: "0.10"}, {Kind: "discount", Amount: "0.20"}}, "0.00"}, // exact, never a float
	} {
		got, err := AmountDue(c.total, c.adj)
		if err != nil || got != c.want {
			t.Errorf("%s %v: %q %v, want %q", c.total, c.adj, got, err, c.want)
		}
	}
	if _, err := AmountDue("1", []*pb.Adjustment{{Kind: "fee", Amount: "1"}}); err == nil {
		t.Fatal("an unknown kind was taken")
	}
}

// A retry with other adjustments is a different request.
func TestRequestHashCoversAdjustments(t *testing.T) {
	r := &pb.CreateOrderRequest{Channel: "web", ChannelOrderId: "1", Lines: []*pb.OrderLineInput{{Sku: "A", Qty: 1, UnitPrice: "10"}},
		Adjustments: []*pb.Adjustment{{Kind: "discount", Amount: "1.00", FundedBy: "shop"}}}
	h := RequestHash(r)
	r.Adjustments[0].Amount = "2.00"
	if bytes.Equal(h, RequestHash(r)) {
		t.Fatal("the hash does not cover the adjustments")
	}
}
