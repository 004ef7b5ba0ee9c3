package channels

import (
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
)

func TestDouyinMapsTheOrderDetail(t *testing.T) {
	// The order detail answer as Douyin documents it: {code, msg, data}.
	body, err := os.ReadFile("testdata/douyin/order-shipping.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["douyin"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	checks := []struct{ field, got, want string }{
		{"channel", r.Channel, "douyin"},
		{"channel_order_id", r.ChannelOrderId, "6920164531297438473"}, // beyond 2^53, exact
		{"currency", r.Currency, "CNY"},
		{"delivery_region", r.DeliveryRegion, "east"},
		{"customer.name", r.Customer.Name, "#张#ABCDEF0123==*CgkIARCtHCABKAESPgo8#1##"},
		{"customer.phone", r.Customer.Phone, "$138$QUJDREVGMDEyMw==*CgkIARCtHCABKAESPgo8$1$$"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-LIPSTICK-01"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "59.00"},
		{"lines[1].sku", r.Lines[1].Sku, "1742939920361493"}, // no merchant code: the platform SKU id
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "60.00"},
		{"buyer", m.BuyerID, "1@#Y2p0b3B0bHl3aW5jZGQ="},
		{"province", m.Province, "上海市"},
		{"district", m.District, "浦东新区"},
		{"extra.pay_amount", m.Extra["pay_amount"], "174.99"},
		{"lines[2].unit_price", r.Lines[2].UnitPrice, "3.33"}, // 999 fen for 3: exact
		{"extra.order_status", m.Extra["order_status"], "2"},
		{"placed_at", m.PlacedAt.In(beijing).Format(time.DateTime), "2025-11-11 10:00:00"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	want := []Discount{
		{Line: 0, Amount: "10.00", FundedBy: "shop", Kind: "promotion"},
		{Line: 0, Amount: "10.00", FundedBy: "platform", Kind: "promotion"},
		{Line: 2, Amount: "0.50", FundedBy: "platform", Kind: "talent_promotion"},
		{Line: 2, Amount: "0.50", FundedBy: "platform", Kind: "payment_promotion"},
	}
	if r.Lines[0].Qty != 2 || r.Lines[1].Qty != 1 || r.Lines[2].Qty != 3 || !m.Masked || !slices.Equal(m.Discounts, want) ||
		!slices.Equal(m.Charges, []Charge{{Kind: "shipping", Amount: "8.00", Line: -1, Title: "post_amount"}}) {
		t.Fatalf("lines %v masked %v discounts %+v charges %+v", r.Lines, m.Masked, m.Discounts, m.Charges)
	}
}

func TestDouyinRefusesNamingTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{}`: "shop_order_detail",
		`{"shop_order_detail":{"create_time":1762826400}}`:                                                                                                        "shop_order_detail.order_id",
		`{"shop_order_detail":{"order_id":"1","create_time":"yesterday"}}`:                                                                                        "shop_order_detail.create_time",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400}}`:                                                                                         "shop_order_detail.sku_order_list",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":0,"origin_amount":1}]}}`:                          "shop_order_detail.sku_order_list[0].item_num",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":3,"origin_amount":100,"sum_amount":100}]}}`:       "shop_order_detail.sku_order_list[0].sum_amount",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":3}]}}`:                                            "shop_order_detail.sku_order_list[0].origin_amount",
		`{"code":10000,"data":{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":2,"origin_amount":"-1"}]}}}`: "data.shop_order_detail.sku_order_list[0].origin_amount",
		`{"code":10000,"data":{}}`:               "data.shop_order_detail",
		`{"shop_order_detail":{"order_id":1.5}}`: "shop_order_detail.order_id",
	} {
		_, err := Adapters["douyin"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestDouyinSignatures(t *testing.T) {
	conn := &Connection{Channel: "douyin", AppKey: "7012345678", Secret: "s3cret"}
	body := []byte(`{"shop_order_detail":{}}`)
	for _, method := range []string{"", "md5", "hmac-sha256"} {
		h := http.Header{}
		h.Set("event-sign", SignDouyin(conn.AppKey, conn.Secret, method, body))
		if method != "" {
			h.Set("sign-method", method)
		}
		if err := (douyin{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
			t.Fatalf("%q: %v", method, err)
		}
		if err := (douyin{}).Verify(&Request{Header: h, Body: append(body, ' ')}, conn); err == nil {
			t.Fatalf("%q: a changed body verified", method)
		}
	}
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (douyin{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (douyin{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned request verified")
	}
}

// Douyin's sku_order_list money: origin_amount is the unit price,
// sum_amount = origin_amount × item_num; exact for any quantity.
func TestDouyinUnitPrices(t *testing.T) {
	for _, c := range []struct {
		qty, origin, sum string
		want             string // unit price, or the field refused
	}{
		{"1", "6000", "6000", "60.00"},
		{"2", "5900", "11800", "59.00"},
		{"3", "333", "999", "3.33"},
		{"7", "1", "7", "0.01"},
		{"3", "100", "", "1.00"}, // no sum_amount: nothing to check
		{"2", "5900", "5900", "sum_amount"},
		{"3", "333", "1000", "sum_amount"},
		{"1000000000", "1000000000000000", "1000000000000000", "sum_amount"},
		{"2", `"59.00"`, "11800", "origin_amount"},
	} {
		sum := ""
		if c.sum != "" {
			sum = `,"sum_amount":` + c.sum
		}
		body := `{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":` +
			c.qty + `,"origin_amount":` + c.origin + sum + `}]}}}`
		m, err := Adapters["douyin"].Map([]byte(body))
		if fe, ok := err.(*FieldError); ok {
			if fe.Field != "data.shop_order_detail.sku_order_list[0]."+c.want {
				t.Errorf("%s × %s (sum %s): %v", c.qty, c.origin, c.sum, err)
			}
			continue
		}
		if err != nil || m.Request.Lines[0].UnitPrice != c.want {
			t.Errorf("%s × %s (sum %s): %v %v, want %s", c.qty, c.origin, c.sum, m, err, c.want)
		}
	}
}

func FuzzMapDouyin(f *testing.F) {
	for _, name := range []string{"order.json", "order-shipping.json"} {
		body, _ := os.ReadFile("testdata/douyin/" + name)
		f.Add(body)
	}
	for _, env := range envelopeSeeds["douyin"] {
		f.Add([]byte(env))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "douyin", data) })
}
