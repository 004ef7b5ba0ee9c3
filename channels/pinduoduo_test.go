package channels

import (
	"net/http"
	"os"
	"testing"
)

func TestPinduoduoMapsTheOrder(t *testing.T) {
	body, err := os.ReadFile("testdata/pinduoduo/order.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["pinduoduo"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "261111-583920174655321"},
		{"delivery_region", r.DeliveryRegion, "central"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-RICE-5KG"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "39.90"}, // a JSON number, read exactly
		{"lines[1].sku", r.Lines[1].Sku, "1198765432110"},
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "20.00"},
		{"buyer", m.BuyerID, "9007199254740995"},
		{"extra.pay_amount", m.Extra["pay_amount"], "86.50"},
		{"extra.confirm_time", m.Extra["confirm_time"], "2026-11-11 09:30:12"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || !m.Masked || len(m.Discounts) != 2 ||
		m.Discounts[0] != (Discount{Line: -1, Amount: "8.30", FundedBy: "platform", Kind: "discount"}) || m.Discounts[1].Amount != "5.00" {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

func TestPinduoduoRefusesNamingTheField(t *testing.T) {
	at := "order_info_get_response.order_info."
	o := `"order_sn":"1","created_time":"2026-11-11 09:30:00"`
	wrap := func(s string) string { return `{"order_info_get_response":{"order_info":{` + s + `}}}` }
	for body, field := range map[string]string{
		`{}`: "order_info_get_response.order_info",
		wrap(`"created_time":"2026-11-11 09:30:00"`):  at + "order_sn",
		wrap(`"order_sn":"1","created_time":"11/11"`): at + "created_time",
		wrap(o): at + "item_list",
		wrap(o + `,"item_list":[{"outer_sku_id":"A","goods_count":0,"goods_price":1}]}`):                 at + "item_list[0].goods_count",
		wrap(o + `,"item_list":[{"outer_sku_id":"A","goods_count":1,"goods_price":1e3}]}`):               at + "item_list[0].goods_price",
		wrap(o + `,"item_list":[{"goods_count":1,"goods_price":1}]}`):                                    at + "item_list[0].outer_sku_id",
		wrap(o + `,"pay_amount":-1,"item_list":[{"outer_sku_id":"A","goods_count":1,"goods_price":1}]}`): at + "pay_amount",
	} {
		_, err := Adapters["pinduoduo"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

func TestPinduoduoSignature(t *testing.T) {
	conn := &Connection{Channel: "pinduoduo", Secret: "pdd-secret"}
	body := []byte(`{"order_info_get_response":{}}`)
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	if err := (pinduoduo{}).Verify(&Request{Header: h, Body: body}, conn); err != nil {
		t.Fatal(err)
	}
	if err := (pinduoduo{}).Verify(&Request{Header: h, Body: append(body, '\n')}, conn); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := (pinduoduo{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned order verified")
	}
}

func FuzzMapPinduoduo(f *testing.F) {
	body, _ := os.ReadFile("testdata/pinduoduo/order.json")
	f.Add(body)
	for _, env := range envelopeSeeds["pinduoduo"] {
		f.Add([]byte(env))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "pinduoduo", data) })
}
