package channels

import (
	"net/http"
	"os"
	"testing"
)

func TestTmallMapsTheTrade(t *testing.T) {
	body, err := os.ReadFile("testdata/tmall/trade.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["tmall"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "4231864412907365817"},
		{"delivery_region", r.DeliveryRegion, "north"},
		{"customer.name", r.Customer.Name, "赵**"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-SERUM-30"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "159.00"},
		{"lines[1].sku", r.Lines[1].Sku, "4987654321002"},
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "40.00"},
		{"buyer", m.BuyerID, "AAHk8yXoAGTvVjQmdZ7yLqBn"},
		{"extra.payment", m.Extra["payment"], "338.00"},
		{"extra.oid", m.Extra["orders.order[1].oid"], "4231864412909365817"},
		{"placed_at", m.PlacedAt.UTC().Format("2006-01-02 15:04:05"), "2026-11-10 16:00:08"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || !m.Masked || len(m.Discounts) != 2 ||
		m.Discounts[0] != (Discount{Line: -1, Amount: "10.00", FundedBy: "platform", Kind: "coupon"}) ||
		m.Discounts[1] != (Discount{Line: 0, Amount: "20.00", FundedBy: "shop", Kind: "promotion"}) {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

func TestTmallRefusesNamingTheField(t *testing.T) {
	tr := `"tid":1,"created":"2026-11-11 00:00:08"`
	for body, field := range map[string]string{
		`{}`: "trade",
		`{"trade":{"created":"2026-11-11 00:00:08"}}`:                                                          "trade.tid",
		`{"trade":{"tid":1,"created":"2026-11-11T00:00:08Z"}}`:                                                 "trade.created",
		`{"trade":{` + tr + `}}`:                                                                               "trade.orders.order",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":0,"price":"1"}]}}}`:                 "trade.orders.order[0].num",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":1,"price":"1,00"}]}}}`:              "trade.orders.order[0].price",
		`{"trade":{` + tr + `,"payment":"abc","orders":{"order":[{"outer_sku_id":"A","num":1,"price":"1"}]}}}`: "trade.payment",
		`{"trade_fullinfo_get_response":{"trade":{"tid":1,"created":"yesterday"}}}`:                            "trade_fullinfo_get_response.trade.created",
	} {
		_, err := Adapters["tmall"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestTmallSignature(t *testing.T) {
	conn := &Connection{Channel: "tmall", Secret: "tm-secret"}
	body := []byte(`{"trade":{}}`)
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (tmall{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (tmall{}).Verify(&Request{Header: h, Body: []byte(`{"trade":{"tid":2}}`)}, conn); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := (tmall{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned trade verified")
	}
}

func FuzzMapTmall(f *testing.F) {
	body, _ := os.ReadFile("testdata/tmall/trade.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "tmall", data) })
}
