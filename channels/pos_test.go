package channels

import (
	"net/http"
	"os"
	"testing"
	"time"
)

func TestPosMapsTheSale(t *testing.T) {
	body, err := os.ReadFile("testdata/pos/sale.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["pos"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "SH-001/R20261111-000123"},
		{"currency", r.Currency, "CNY"},
		{"delivery_region", r.DeliveryRegion, "east"},
		{"customer.phone", r.Customer.Phone, "138 1234 5678"},
		{"customer.address", r.Customer.Address, "浙江省 杭州市 西湖区 文三路 90号"},
		{"buyer", m.BuyerID, "9007199254740993"}, // 2^53 + 1, exact
		{"device", m.DeviceID, ""},               // the till is every buyer's: no fingerprint
		{"extra.device_id", m.Extra["device_id"], "POS-7"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "79.90"},
		{"lines[1].sku", r.Lines[1].Sku, "CH-MUG"},
		{"placed_at", m.PlacedAt.UTC().Format(time.RFC3339), "2026-11-11T11:42:05Z"},
		{"extra.store_id", m.Extra["store_id"], "SH-001"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || r.Lines[1].Qty != 1 || m.Masked || len(m.Discounts) != 2 ||
		m.Discounts[0] != (Discount{Line: -1, Amount: "10.00", FundedBy: "shop", Kind: "member"}) || m.Discounts[1].Amount != "5.00" {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
	keys := IdentityKeys(m, []byte("k"))
	if len(keys) != 3 || keys[0].Kind != "phone" || keys[1].Kind != "address" || keys[2].Kind != "buyer" {
		t.Fatalf("fingerprints %+v", keys)
	}
	// Two walk-in sales at one till are not one customer.
	walkIn := func(receipt string) []IdentityKey {
		m, err := Adapters["pos"].Map([]byte(`{"store_id":"S","receipt_no":"` + receipt + `","device_id":"POS-7","sold_at":"2026-11-11T19:42:05+08:00","currency":"CNY","lines":[{"sku":"A","qty":1,"price":"1"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return IdentityKeys(m, []byte("k"))
	}
	if k := walkIn("R1"); len(k) != 0 || len(walkIn("R2")) != 0 {
		t.Fatalf("a walk-in sale has fingerprints %+v", k)
	}
}

func TestPosRefusesNamingTheField(t *testing.T) {
	ok := `"store_id":"S","receipt_no":"R","sold_at":"2026-11-11T19:42:05+08:00","currency":"CNY"`
	for body, field := range map[string]string{
		`{"receipt_no":"R"}`: "store_id",
		`{"store_id":"S"}`:   "receipt_no",
		`{"store_id":"S","receipt_no":"R","currency":"yuan"}`: "currency",
		`{` + ok + `}`: "lines",
		`{"store_id":"S","receipt_no":"R","currency":"CNY","sold_at":"11/11","lines":[{}]}`:            "sold_at",
		`{` + ok + `,"lines":[{"qty":1,"price":"1"}]}`:                                                 "lines[0].sku",
		`{` + ok + `,"lines":[{"sku":"A","qty":0,"price":"1"}]}`:                                       "lines[0].qty",
		`{` + ok + `,"lines":[{"sku":"A","qty":1,"price":"1.234.5"}]}`:                                 "lines[0].price",
		`{` + ok + `,"lines":[{"sku":"A","qty":1,"price":"1"}],"discounts":[{"line":3,"amount":"1"}]}`: "discounts[0].line",
		`{` + ok + `,"lines":[{"sku":"A","qty":1.5,"price":"1"}]}`:                                     "lines.qty",
	} {
		_, err := Adapters["pos"].Map([]byte(body))
		fe, isField := err.(*FieldError)
		if !isField || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestPosSignature(t *testing.T) {
	conn := &Connection{Channel: "pos", Secret: "pos-secret"}
	body := []byte(`{"store_id":"S"}`)
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (pos{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (pos{}).Verify(&Request{Header: h, Body: []byte(`{"store_id":"T"}`)}, conn); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := (pos{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned sale verified")
	}
}

func FuzzMapPos(f *testing.F) {
	body, _ := os.ReadFile("testdata/pos/sale.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "pos", data) })
}
