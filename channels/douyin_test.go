package channels

import (
	"net/http"
	"os"
	"testing"
	"time"
)

func TestDouyinMapsTheOrderDetail(t *testing.T) {
	body, err := os.ReadFile("testdata/douyin/order.json")
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
		{"extra.pay_amount", m.Extra["pay_amount"], "158.00"},
		{"extra.order_status", m.Extra["order_status"], "2"},
		{"placed_at", m.PlacedAt.In(beijing).Format(time.DateTime), "2025-11-11 10:00:00"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || r.Lines[1].Qty != 1 || !m.Masked || len(m.Discounts) != 2 ||
		m.Discounts[0] != (Discount{Line: 0, Amount: "10.00", FundedBy: "shop", Kind: "promotion"}) ||
		m.Discounts[1].FundedBy != "platform" {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

func TestDouyinRefusesNamingTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{}`: "shop_order_detail",
		`{"shop_order_detail":{"create_time":1762826400}}`:                                                                                 "shop_order_detail.order_id",
		`{"shop_order_detail":{"order_id":"1","create_time":"yesterday"}}`:                                                                 "shop_order_detail.create_time",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400}}`:                                                                  "shop_order_detail.sku_order_list",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":0,"origin_amount":1}]}}`:   "shop_order_detail.sku_order_list[0].item_num",
		`{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":3,"origin_amount":100}]}}`: "shop_order_detail.sku_order_list[0].origin_amount",
		`{"shop_order_detail":{"order_id":1.5}}`:                                                                                           "shop_order_detail.order_id",
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

func FuzzMapDouyin(f *testing.F) {
	body, _ := os.ReadFile("testdata/douyin/order.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "douyin", data) })
}
