package channels

import (
	"net/http"
	"os"
	"slices"
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
		{"extra.total_price", m.Extra["total_price"], "59.38"},
		{"extra.total_tax", m.Extra["total_tax"], "4.40"},
		{"placed_at", m.PlacedAt.UTC().Format("2006-01-02T15:04:05Z"), "2026-11-11T15:00:00Z"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	// Each allocation has its application's kind; the shipping line and
	// its discount are the order's; the taxes are the lines' own (the
	// order's tax_lines sum them and are not counted again).
	discounts := []Discount{{Line: 0, Amount: "5.00", FundedBy: "shop", Kind: "discount_code"}, {Line: -1, Amount: "5.00", FundedBy: "shop", Kind: "automatic"}}
	charges := []Charge{{Kind: "tax", Amount: "2.80", Line: 0, Title: "CA State Tax"}, {Kind: "tax", Amount: "1.20", Line: 1, Title: "CA State Tax"},
		{Kind: "shipping", Amount: "10.00", Line: -1, Title: "Standard Shipping"}, {Kind: "tax", Amount: "0.40", Line: -1, Title: "CA State Tax"}}
	if r.Lines[0].Qty != 2 || m.Masked || !slices.Equal(m.Discounts, discounts) || !slices.Equal(m.Charges, charges) {
		t.Fatalf("lines %v discounts %+v charges %+v", r.Lines, m.Discounts, m.Charges)
	}
	for k, v := range m.Extra {
		if v == "203.0.113.7" || v == "li.lei@example.com" {
			t.Fatalf("personal data in extra %s", k)
		}
	}
}

// Shopify's money besides the lines, by the Order resource's fields.
func TestShopifyTaxShippingAndDiscountKinds(t *testing.T) {
	order := func(extra string) string {
		return `{"id":1,"currency":"EUR","created_at":"2026-11-11T10:00:00Z","line_items":[{"sku":"A","quantity":1,"price":"10.00"` + extra + `}`
	}
	for _, c := range []struct {
		name, body string
		discounts  []Discount
		charges    []Charge
	}{
		{"manual and script kinds", order(`,"discount_allocations":[{"amount":"1.00","discount_application_index":1},{"amount":"0.50","discount_application_index":0}]}],
			"discount_applications":[{"type":"script","title":"Buy more","value":"5.0","value_type":"percentage","target_type":"line_item"},
			{"type":"manual","title":"Staff","value":"1.0","value_type":"fixed_amount","target_type":"line_item"}]}`),
			[]Discount{{Line: 0, Amount: "1.00", FundedBy: "shop", Kind: "manual"}, {Line: 0, Amount: "0.50", FundedBy: "shop", Kind: "script"}}, nil},
		{"order tax lines only", order(`}],"tax_lines":[{"title":"VAT","price":"2.00","rate":0.2}],"total_tax":"2.00"}`),
			nil, []Charge{{Kind: "tax", Amount: "2.00", Line: -1, Title: "VAT"}}},
		{"total_tax only", order(`}],"total_tax":"1.50"}`), nil, []Charge{{Kind: "tax", Amount: "1.50", Line: -1, Title: "total_tax"}}},
		{"taxes included are not charged again", order(`,"tax_lines":[{"title":"VAT","price":"1.67"}]}],"taxes_included":true,"total_tax":"1.67"}`), nil, nil},
		{"shipping discounted without allocations", order(`}],"shipping_lines":[{"title":"Express","price":"8.00","discounted_price":"6.50"}]}`),
			[]Discount{{Line: -1, Amount: "1.50", FundedBy: "shop", Kind: "shipping"}}, []Charge{{Kind: "shipping", Amount: "8.00", Line: -1, Title: "Express"}}},
		{"the REST API's {order}", `{"order":` + order(`}]}`) + `}`, nil, nil},
	} {
		m, err := Adapters["shopify"].Map([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(m.Discounts, c.discounts) || !slices.Equal(m.Charges, c.charges) {
			t.Errorf("%s: discounts %+v charges %+v", c.name, m.Discounts, m.Charges)
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
		`{"id":1,"currency":"USD","created_at":"2026-11-11T10:00:00Z","line_items":[{"sku":"A","quantity":1,"price":"1","discount_allocations":[{"amount":"1","discount_application_index":2}]}]}`: "line_items[0].discount_allocations[0].discount_application_index",
		`{"id":1,"currency":"USD","created_at":"2026-11-11T10:00:00Z","line_items":[{"sku":"A","quantity":1,"price":"1","tax_lines":[{"price":"x"}]}]}`:                                            "line_items[0].tax_lines[0].price",
		`{"id":1,"currency":"USD","created_at":"2026-11-11T10:00:00Z","line_items":[{"sku":"A","quantity":1,"price":"1"}],"shipping_lines":[{"price":"-1"}]}`:                                      "shipping_lines[0].price",
		`{"order":{"id":1,"currency":"USD"}}`: "order.line_items",
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
