package channels

import (
	"net/http"
	"os"
	"testing"
)

func TestJdMapsTheOrder(t *testing.T) {
	body, err := os.ReadFile("testdata/jd/order.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["jd"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "308765432109876543"},
		{"delivery_region", r.DeliveryRegion, "southwest"},
		{"customer.phone", r.Customer.Phone, "150****2233"},
		{"customer.address", r.Customer.Address, "四川成都市武侯区天府大道****"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-PHONE-256"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "5899.00"},
		{"lines[1].sku", r.Lines[1].Sku, "100087654321"},
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "100.00"},
		{"buyer", m.BuyerID, "jd_o0TgL8sXkF2Hn4wWmB1aQe"},
		{"extra.orderPayment", m.Extra["orderPayment"], "5849.00"},
		{"placed_at", m.PlacedAt.UTC().Format("2006-01-02 15:04:05"), "2026-11-11 12:15:30"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[1].Qty != 1 || !m.Masked || len(m.Discounts) != 2 ||
		m.Discounts[0] != (Discount{Line: 0, Amount: "50.00", FundedBy: "platform", Kind: "coupon 39"}) ||
		m.Discounts[1].Line != -1 || m.Discounts[1].FundedBy != "shop" {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

func TestJdRefusesNamingTheField(t *testing.T) {
	o := `"orderId":1,"orderStartTime":"2026-11-11 20:15:30"`
	for body, field := range map[string]string{
		`{}`: "orderInfo",
		`{"orderInfo":{"orderStartTime":"2026-11-11 20:15:30"}}`:                                                                           "orderInfo.orderId",
		`{"orderInfo":{"orderId":1,"orderStartTime":"1762826400"}}`:                                                                        "orderInfo.orderStartTime",
		`{"orderInfo":{` + o + `}}`:                                                                                                        "orderInfo.itemInfoList",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"outerSkuId":"A","itemTotal":"0","jdPrice":"1"}]}}`:                                      "orderInfo.itemInfoList[0].itemTotal",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"outerSkuId":"A","itemTotal":"1","jdPrice":"x"}]}}`:                                      "orderInfo.itemInfoList[0].jdPrice",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"itemTotal":"1","jdPrice":"1"}]}}`:                                                       "orderInfo.itemInfoList[0].outerSkuId",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"skuId":"9","itemTotal":"1","jdPrice":"1"}],"couponDetailList":[{"couponPrice":"-5"}]}}`: "orderInfo.couponDetailList[0].couponPrice",
	} {
		_, err := Adapters["jd"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestJdSignature(t *testing.T) {
	conn := &Connection{Channel: "jd", Secret: "jd-secret"}
	body := []byte(`{"orderInfo":{}}`)
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (jd{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (jd{}).Verify(&Request{Header: h, Body: []byte(`{"orderInfo":{"orderId":2}}`)}, conn); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := (jd{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned order verified")
	}
}

func FuzzMapJd(f *testing.F) {
	body, _ := os.ReadFile("testdata/jd/order.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "jd", data) })
}
