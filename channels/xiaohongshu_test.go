package channels

import (
	"net/http"
	"os"
	"testing"
)

func TestXiaohongshuMapsTheOrder(t *testing.T) {
	body, err := os.ReadFile("testdata/xiaohongshu/order.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["xiaohongshu"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "P745612398701234567"},
		{"delivery_region", r.DeliveryRegion, "east"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-CANDLE-01"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "99.00"},
		{"lines[1].sku", r.Lines[1].Sku, "65a1b2c3d4e5f60718293a4c"},
		{"buyer", m.BuyerID, "xhs_9f3c1d2e7a6b4c"},
		{"extra.totalPayAmount", m.Extra["totalPayAmount"], "256.00"},
		{"placed_at", m.PlacedAt.UTC().Format("2006-01-02T15:04:05.000Z"), "2025-11-11T02:30:00.123Z"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || !m.Masked || len(m.Discounts) != 2 || m.Discounts[0] != (Discount{Line: -1, Amount: "20.00", FundedBy: "shop", Kind: "discount"}) {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

func TestXiaohongshuRefusesNamingTheField(t *testing.T) {
	o := `"orderId":"P1","createdTime":1762828200123`
	for body, field := range map[string]string{
		`{"success":true}`:                                   "data",
		`{"data":{"createdTime":1762828200123}}`:             "data.orderId",
		`{"data":{"orderId":"P1","createdTime":1762828200}}`: "data.createdTime", // seconds, not milliseconds
		`{"data":{` + o + `}}`:                               "data.skuList",
		`{"data":{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":0,"price":1}]}}`:                        "data.skuList[0].skuQuantity",
		`{"data":{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":1,"price":"9.9"}]}}`:                    "data.skuList[0].price",
		`{"data":{` + o + `,"skuList":[{"skuQuantity":1,"price":1}]}}`:                                      "data.skuList[0].erpcode",
		`{"data":{` + o + `,"merchantDiscount":"x","skuList":[{"erpcode":"A","skuQuantity":1,"price":1}]}}`: "data.merchantDiscount",
	} {
		_, err := Adapters["xiaohongshu"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestXiaohongshuSignature(t *testing.T) {
	conn := &Connection{Channel: "xiaohongshu", Secret: "xhs-secret"}
	body := []byte(`{"data":{}}`)
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (xiaohongshu{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (xiaohongshu{}).Verify(&Request{Header: h, Body: []byte(`{"data":[]}`)}, conn); err == nil {
		t.Fatal("a changed body verified")
	}
	h.Set(SignatureHeader, "sha256=00")
	if err := (xiaohongshu{}).Verify(&Request{Header: h, Body: body}, conn); err == nil {
		t.Fatal("a wrong signature verified")
	}
}

func FuzzMapXiaohongshu(f *testing.F) {
	body, _ := os.ReadFile("testdata/xiaohongshu/order.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "xiaohongshu", data) })
}
