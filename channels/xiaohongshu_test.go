package channels

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
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
		{"extra.totalPayAmount", m.Extra["totalPayAmount"], "264.00"},
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "10.00"},
		// The combined SKU: a line per component, at the component's price.
		{"lines[2].sku", r.Lines[2].Sku, "SKU-CANDLE-01"},
		{"lines[2].unit_price", r.Lines[2].UnitPrice, "59.00"},
		{"lines[3].sku", r.Lines[3].Sku, "SKU-HOLDER-02"},
		{"lines[3].unit_price", r.Lines[3].UnitPrice, "21.00"},
		{"placed_at", m.PlacedAt.UTC().Format("2006-01-02T15:04:05.000Z"), "2025-11-11T02:30:00.123Z"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	want := []Discount{
		{Line: 0, Amount: "12.00", FundedBy: "shop", Kind: "discount"},
		{Line: 0, Amount: "8.00", FundedBy: "platform", Kind: "discount"},
		{Line: 1, Amount: "2.00", FundedBy: "shop", Kind: "discount"},
		{Line: 2, Amount: "3.00", FundedBy: "shop", Kind: "discount"},
		{Line: 3, Amount: "3.00", FundedBy: "shop", Kind: "discount"},
		{Line: 2, Amount: "2.00", FundedBy: "platform", Kind: "discount"},
		{Line: 3, Amount: "2.00", FundedBy: "platform", Kind: "discount"},
	}
	if len(r.Lines) != 4 || r.Lines[0].Qty != 2 || !m.Masked || !slices.Equal(m.Discounts, want) ||
		!slices.Equal(m.Charges, []Charge{{Kind: "shipping", Amount: "8.00", Line: -1, Title: "totalShippingFree"}}) {
		t.Fatalf("lines %v masked %v discounts %+v charges %+v", r.Lines, m.Masked, m.Discounts, m.Charges)
	}
	// The bare data object maps alike, its fields named from the top.
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	bare, err := Adapters["xiaohongshu"].Map(env.Data)
	if err != nil || !proto.Equal(bare.Request, m.Request) || !slices.Equal(bare.Discounts, m.Discounts) {
		t.Fatalf("bare data: %v %v", bare, err)
	}
}

// A combined SKU whose details do not add up to its totals shares them by
// value, exactly; its components keep their own counts.
func TestXiaohongshuCombinedSKU(t *testing.T) {
	body := `{"success":true,"data":{"orderId":"P1","createdTime":1762828200123,"skuList":[{"skuId":"c","skuQuantity":1,
		"totalMerchantDiscount":100,"totalRedDiscount":0,"totalTaxAmount":7,"skuDetailList":[
		{"skuId":"a","erpCode":"A","quantity":2,"pricePerSku":333},{"skuId":"b","erpCode":"","quantity":1,"pricePerSku":334}]}]}}`
	m, err := Adapters["xiaohongshu"].Map([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	if len(r.Lines) != 2 || r.Lines[0].Sku != "A" || r.Lines[0].Qty != 2 || r.Lines[0].UnitPrice != "3.33" || r.Lines[1].Sku != "b" || r.Lines[1].UnitPrice != "3.34" {
		t.Fatalf("lines %v", r.Lines)
	}
	// 100 fen by value 666:334 is 66.6 and 33.4: 66 and 33, the fen left to the first.
	if !slices.Equal(m.Discounts, []Discount{{Line: 0, Amount: "0.67", FundedBy: "shop", Kind: "discount"}, {Line: 1, Amount: "0.33", FundedBy: "shop", Kind: "discount"}}) ||
		!slices.Equal(m.Charges, []Charge{{Kind: "tax", Amount: "0.05", Line: 0, Title: "totalTaxAmount"}, {Kind: "tax", Amount: "0.02", Line: 1, Title: "totalTaxAmount"}}) {
		t.Fatalf("discounts %+v charges %+v", m.Discounts, m.Charges)
	}
}

func TestXiaohongshuRefusesNamingTheField(t *testing.T) {
	o := `"orderId":"P1","createdTime":1762828200123`
	for body, field := range map[string]string{
		`{"success":true}`:                                   "data",
		`{"data":{"createdTime":1762828200123}}`:             "data.orderId",
		`{"data":{"orderId":"P1","createdTime":1762828200}}`: "data.createdTime", // seconds, not milliseconds
		`{"data":{` + o + `}}`:                               "data.skuList",
		`{"data":{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":0,"skuDetailList":[{"pricePerSku":1}]}]}}`:                                              "data.skuList[0].skuQuantity",
		`{"data":{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":1,"price":100}]}}`:                                                                      "data.skuList[0].skuDetailList",
		`{"data":{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":1,"skuDetailList":[{"pricePerSku":"9.9"}]}]}}`:                                          "data.skuList[0].skuDetailList[0].pricePerSku",
		`{"data":{` + o + `,"skuList":[{"skuQuantity":1,"skuDetailList":[{"pricePerSku":1}]}]}}`:                                                            "data.skuList[0].erpcode",
		`{"data":{` + o + `,"skuList":[{"skuQuantity":1,"skuDetailList":[{"erpCode":"A","quantity":1,"pricePerSku":1},{"erpCode":"B","quantity":1}]}]}}`:    "data.skuList[0].skuDetailList[1].pricePerSku",
		`{"data":{` + o + `,"skuList":[{"skuQuantity":1,"skuDetailList":[{"erpCode":"A","quantity":1,"pricePerSku":1},{"erpCode":"B","pricePerSku":1}]}]}}`: "data.skuList[0].skuDetailList[1].quantity",
		`{"data":{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":1,"totalMerchantDiscount":"x","skuDetailList":[{"pricePerSku":1}]}]}}`:                  "data.skuList[0].totalMerchantDiscount",
		`{` + o + `,"skuList":[{"erpcode":"A","skuQuantity":1,"skuDetailList":[{"pricePerSku":"-1"}]}]}`:                                                    "skuList[0].skuDetailList[0].pricePerSku",
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
	for _, env := range envelopeSeeds["xiaohongshu"] {
		f.Add([]byte(env))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "xiaohongshu", data) })
}
