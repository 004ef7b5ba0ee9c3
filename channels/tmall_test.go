package channels

import (
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
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
		{"channel", r.Channel, "tmall"},
		{"channel_order_id", r.ChannelOrderId, "4231864412907365817"}, // beyond 2^53, exact
		{"currency", r.Currency, "CNY"},
		{"delivery_region", r.DeliveryRegion, "north"},
		{"customer.id", r.Customer.Id, ""},
		{"customer.name", r.Customer.Name, "赵**"},
		{"customer.phone", r.Customer.Phone, "*******5678"},
		{"customer.address", r.Customer.Address, "北京 北京市 朝阳区 望京街道 望京SOHO T1 ****"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-SERUM-30"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "159.00"},
		{"lines[1].sku", r.Lines[1].Sku, "4987654321002"}, // no outer_sku_id: the platform SKU id
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "40.00"},
		{"buyer", m.BuyerID, "AAHk8yXoAGTvVjQmdZ7yLqBn"},
		{"province", m.Province, "北京"},
		{"city", m.City, "北京市"},
		{"district", m.District, "朝阳区"},
		{"extra.status", m.Extra["status"], "WAIT_SELLER_SEND_GOODS"},
		{"extra.payment", m.Extra["payment"], "326.00"},
		{"extra.total_fee", m.Extra["total_fee"], "358.00"},
		{"extra.discount_fee", m.Extra["discount_fee"], "20.00"},
		{"extra.oid", m.Extra["orders.order[1].oid"], "4231864412909365817"},
		{"extra.num_iid", m.Extra["orders.order[0].num_iid"], "680012345678"},
		{"extra.part_mjz_discount", m.Extra["orders.order[0].part_mjz_discount"], "16.65"},
		{"extra.promotion_id", m.Extra["promotion_details[1].promotion_id"], "Tmall$shopbonus-44012345_60981234-5521602042"},
		{"extra.pay_time", m.Extra["pay_time"], "2026-11-11 00:00:15"},
		{"placed_at", m.PlacedAt.UTC().Format(time.DateTime), "2026-11-10 16:00:08"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	// The red packet is Tmall's; the item-level 限时打折 itemises the
	// sub-order's discount_fee; the order-level shop coupon reaches the
	// lines as their part_mjz_discount shares, funded by the shop.
	want := []Discount{
		{Line: -1, Amount: "10.00", FundedBy: "platform", Kind: "red_packet"},
		{Line: 0, Amount: "20.00", FundedBy: "shop", Kind: "promotion"},
		{Line: 0, Amount: "16.65", FundedBy: "shop", Kind: "coupon"},
		{Line: 1, Amount: "3.35", FundedBy: "shop", Kind: "coupon"},
	}
	if len(r.Lines) != 2 || r.Lines[0].Qty != 2 || r.Lines[1].Qty != 1 || !m.Masked || !slices.Equal(m.Discounts, want) ||
		!slices.Equal(m.Charges, []Charge{{Kind: "shipping", Amount: "8.00", Line: -1, Title: "post_fee"}}) {
		t.Fatalf("lines %v masked %v discounts %+v charges %+v", r.Lines, m.Masked, m.Discounts, m.Charges)
	}
}

// Taobao's bare trade: coupon_fee in fen is the red packet, the receiver
// encrypted (~…~), the SKU the platform's.
func TestTmallMapsATaobaoTrade(t *testing.T) {
	body, err := os.ReadFile("testdata/tmall/taobao-trade.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["tmall"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	if r.ChannelOrderId != "3712209845566019283" || r.DeliveryRegion != "south" || !m.Masked ||
		len(r.Lines) != 1 || r.Lines[0].Sku != "5123456789012" || r.Lines[0].Qty != 3 || r.Lines[0].UnitPrice != "33.00" ||
		len(m.Discounts) != 2 || m.Discounts[0] != (Discount{Line: -1, Amount: "5.00", FundedBy: "platform", Kind: "red_packet"}) ||
		m.Discounts[1] != (Discount{Line: 0, Amount: "7.00", FundedBy: "shop", Kind: "promotion"}) {
		t.Fatalf("order %+v masked %v discounts %+v", r, m.Masked, m.Discounts)
	}
}

// A landline stands in for a missing mobile; both red-packet fields count once.
func TestTmallPhoneAndRedPacket(t *testing.T) {
	body := `{"trade":{"tid":1,"created":"2026-11-11 00:00:08","receiver_phone":"010-****1234","tmall_coupon_fee":300,"coupon_fee":300,
		"orders":{"order":[{"outer_sku_id":"A","num":1,"price":"9.9"}]}}}`
	m, err := Adapters["tmall"].Map([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Request.Customer.Phone != "010-****1234" || !m.Masked || m.Request.Lines[0].UnitPrice != "9.90" ||
		len(m.Discounts) != 1 || m.Discounts[0].Amount != "3.00" {
		t.Fatalf("customer %+v discounts %+v", m.Request.Customer, m.Discounts)
	}
}

func TestTmallRefusesNamingTheField(t *testing.T) {
	tr := `"tid":1,"created":"2026-11-11 00:00:08"`
	line := `"orders":{"order":[{"outer_sku_id":"A","num":1,"price":"1"}]}`
	for body, field := range map[string]string{
		`{}`:  "trade",
		`[1]`: "body",
		`{"trade":{"created":"2026-11-11 00:00:08"}}`:                                                              "trade.tid",
		`{"trade":{"tid":1.5,"created":"2026-11-11 00:00:08"}}`:                                                    "trade.tid",
		`{"trade":{"tid":1,"created":"2026-11-11T00:00:08Z"}}`:                                                     "trade.created",
		`{"trade":{` + tr + `}}`:                                                                                   "trade.orders.order",
		`{"trade":{` + tr + `,"orders":{"order":[{"num":1,"price":"1"}]}}}`:                                        "trade.orders.order[0].outer_sku_id",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":0,"price":"1"}]}}}`:                     "trade.orders.order[0].num",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":1}]}}}`:                                 "trade.orders.order[0].price",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":1,"price":"1,00"}]}}}`:                  "trade.orders.order[0].price",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":1,"price":19.9}]}}}`:                    "trade.orders.order.price",
		`{"trade":{` + tr + `,"orders":{"order":[{"outer_sku_id":"A","num":1,"price":"1","discount_fee":"-1"}]}}}`: "trade.orders.order[0].discount_fee",
		`{"trade":{` + tr + `,"payment":"abc",` + line + `}}`:                                                      "trade.payment",
		`{"trade":{` + tr + `,"pay_time":"soon",` + line + `}}`:                                                    "trade.pay_time",
		`{"trade":{` + tr + `,"coupon_fee":"10.00",` + line + `}}`:                                                 "trade.coupon_fee",
		`{"trade":{` + tr + `,"tmall_coupon_fee":-5,` + line + `}}`:                                                "trade.tmall_coupon_fee",
		`{"trade_fullinfo_get_response":{"trade":{"tid":1,"created":"yesterday"}}}`:                                "trade_fullinfo_get_response.trade.created",
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
	if err := (tmall{}).Verify(&Request{Header: h, Body: body}, &Connection{Secret: "other"}); err == nil {
		t.Fatal("another connection's secret verified")
	}
	if err := (tmall{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned trade verified")
	}
}

func FuzzMapTmall(f *testing.F) {
	for _, name := range []string{"trade.json", "taobao-trade.json"} {
		body, _ := os.ReadFile("testdata/tmall/" + name)
		f.Add(body)
	}
	for _, env := range envelopeSeeds["tmall"] {
		f.Add([]byte(env))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "tmall", data) })
}

// Shop coupons in promotion_details, by the documented PromotionDetail
// fields (id: the tid for an order-level promotion, the oid for an
// item-level one; promotion_id "shopbonus-…"; promotion_name 店铺优惠券).
func TestTmallShopCoupons(t *testing.T) {
	trade := func(orders, promotions string) string {
		return `{"trade_fullinfo_get_response":{"trade":{"tid":100,"created":"2026-11-11 00:00:08","orders":{"order":[` + orders +
			`]},"promotion_details":{"promotion_detail":[` + promotions + `]}}}}`
	}
	line := func(oid, discount, mjz string) string {
		return `{"oid":` + oid + `,"outer_sku_id":"A` + oid + `","num":1,"price":"50.00","discount_fee":"` + discount + `","part_mjz_discount":"` + mjz + `"}`
	}
	for _, c := range []struct {
		name, body string
		want       []Discount
	}{
		{"order-level shop coupon, no shares", trade(line("1", "0.00", ""), `{"id":100,"promotion_name":"店铺优惠券","discount_fee":"5.00","promotion_id":"shopbonus-1_2-3"}`),
			[]Discount{{Line: -1, Amount: "5.00", FundedBy: "shop", Kind: "coupon"}}},
		{"order-level coupon shared by part_mjz_discount", trade(line("1", "0.00", "3.00")+","+line("2", "0.00", "2.00"),
			`{"id":100,"promotion_name":"店铺优惠券","discount_fee":"5.00","promotion_id":"Tmall$shopbonus-1_2-3"}`),
			[]Discount{{Line: 0, Amount: "3.00", FundedBy: "shop", Kind: "coupon"}, {Line: 1, Amount: "2.00", FundedBy: "shop", Kind: "coupon"}}},
		{"shares of mixed order-level promotions", trade(line("1", "0.00", "4.00"),
			`{"id":100,"promotion_name":"店铺优惠券","discount_fee":"3.00","promotion_id":"shopbonus-1_2-3"},{"id":100,"promotion_name":"满减","discount_fee":"1.00","promotion_id":"mjs-1_2"}`),
			[]Discount{{Line: 0, Amount: "4.00", FundedBy: "shop", Kind: "order_promotion"}}},
		{"item-level coupon itemises discount_fee", trade(line("1", "7.00", ""), `{"id":1,"promotion_name":"店铺优惠券","discount_fee":"5.00","promotion_id":"shopbonus-9"}`),
			[]Discount{{Line: 0, Amount: "5.00", FundedBy: "shop", Kind: "coupon"}, {Line: 0, Amount: "2.00", FundedBy: "shop", Kind: "promotion"}}},
		{"other order-level promotion stays raw", trade(line("1", "0.00", ""), `{"id":100,"promotion_name":"跨店满减","discount_fee":"5.00","promotion_id":"mjs-1_2"}`),
			nil},
	} {
		m, err := Adapters["tmall"].Map([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(m.Discounts, c.want) {
			t.Errorf("%s: discounts %+v, want %+v", c.name, m.Discounts, c.want)
		}
	}
}
