package channels

import (
	"net/http"
	"os"
	"testing"
)

func TestShopifyMapsTheWebhook(t *testing.T) {
	body, err := os.ReadFile("testdata/shopify/orders-create.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["shopify"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "5800000000001"},
		{"currency", r.Currency, "USD"},
		{"delivery_region", r.DeliveryRegion, "us"},
		{"customer.name", r.Customer.Name, "Li Lei"},
		{"customer.phone", r.Customer.Phone, "+1 415-555-0100"},
		{"customer.address", r.Customer.Address, "1 Market St Apt 5 San Francisco California 94105 US"},
		{"buyer", m.BuyerID, "7001"},
		{"lines[0].sku", r.Lines[0].Sku, "CH-TEE"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "19.99"},
		{"lines[1].sku", r.Lines[1].Sku, "44110002"}, // no SKU: the variant
		{"extra.name", m.Extra["name"], "#1001"},
		{"extra.total_price", m.Extra["total_price"], "54.98"},
		{"placed_at", m.PlacedAt.UTC().Format("2006-01-02T15:04:05Z"), "2026-11-11T15:00:00Z"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || m.Masked || len(m.Discounts) != 1 || m.Discounts[0] != (Discount{Line: 0, Amount: "5.00", FundedBy: "shop", Kind: "discount"}) {
		t.Fatalf("lines %v discounts %+v", r.Lines, m.Discounts)
	}
	for k, v := range m.Extra {
		if v == "203.0.113.7" || v == "li.lei@example.com" {
			t.Fatalf("personal data in extra %s", k)
		}
	}
}

func TestShopifyRefusesNamingTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{"currency":"USD"}`:            "id",
		`{"id":1,"currency":"dollars"}`: "currency",
		`{"id":1,"currency":"USD"}`:     "line_items",
		`{"id":1,"currency":"USD","created_at":"2026-11-11","line_items":[{}]}`:                                              "created_at",
		`{"id":1,"currency":"USD","created_at":"2026-11-11T10:00:00Z","line_items":[{"quantity":1,"price":"1"}]}`:            "line_items[0].sku",
		`{"id":1,"currency":"USD","created_at":"2026-11-11T10:00:00Z","line_items":[{"sku":"A","quantity":0,"price":"1"}]}`:  "line_items[0].quantity",
		`{"id":1,"currency":"USD","created_at":"2026-11-11T10:00:00Z","line_items":[{"sku":"A","quantity":1,"price":"-1"}]}`: "line_items[0].price",
		`{"id":1.5,"currency":"USD"}`: "id",
	} {
		_, err := Adapters["shopify"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestShopifySignatures(t *testing.T) {
	conn := &Connection{Channel: "shopify", Secret: "shp-secret"}
	body := []byte(`{"id":1}`)
	h := http.Header{}
	h.Set("X-Shopify-Hmac-Sha256", SignShopify(conn.Secret, body))
	if err := (shopify{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (shopify{}).Verify(&Request{Header: h, Body: []byte(`{"id":2}`)}, conn); err == nil {
		t.Fatal("a changed body verified")
	}
	c := http.Header{}
	c.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (shopify{}).Verify(&Request{Header: c, Body: body}, conn); err != nil {
		t.Fatalf("connector: %v", err)
	}
}

func FuzzMapShopify(f *testing.F) {
	body, _ := os.ReadFile("testdata/shopify/orders-create.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "shopify", data) })
}
