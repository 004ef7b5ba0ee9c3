package channels

import (
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
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
		{"channel", r.Channel, "jd"},
		{"channel_order_id", r.ChannelOrderId, "308765432109876543"}, // beyond 2^53, exact
		{"currency", r.Currency, "CNY"},
		{"delivery_region", r.DeliveryRegion, "southwest"},
		{"customer.id", r.Customer.Id, ""},
		{"customer.name", r.Customer.Name, "刘*"},
		{"customer.phone", r.Customer.Phone, "150****2233"},
		{"customer.address", r.Customer.Address, "四川成都市武侯区桂溪街道天府大道****"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-PHONE-256"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "5899.00"},
		{"lines[1].sku", r.Lines[1].Sku, "100087654321"}, // no outerSkuId: JD's SKU id
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "50.00"},
		{"buyer", m.BuyerID, "jd_o0TgL8sXkF2Hn4wWmB1aQe"},
		{"province", m.Province, "四川"},
		{"city", m.City, "成都市"},
		{"district", m.District, "武侯区"},
		{"extra.orderState", m.Extra["orderState"], "WAIT_SELLER_STOCK_OUT"},
		{"extra.orderPayment", m.Extra["orderPayment"], "5820.00"},
		{"extra.orderSellerPrice", m.Extra["orderSellerPrice"], "5879.00"},
		{"extra.sellerDiscount", m.Extra["sellerDiscount"], "120.00"},
		{"extra.couponType", m.Extra["couponDetailList[2].couponType"], "41-京东券优惠"},
		{"placed_at", m.PlacedAt.UTC().Format(time.DateTime), "2026-11-11 12:15:30"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	want := []Discount{
		{Line: 0, Amount: "100.00", FundedBy: "shop", Kind: "promotion"},  // 30-单品促销优惠 on the phone
		{Line: -1, Amount: "20.00", FundedBy: "shop", Kind: "promotion"},  // 100-店铺优惠
		{Line: -1, Amount: "50.00", FundedBy: "platform", Kind: "coupon"}, // 41-京东券优惠
		{Line: -1, Amount: "9.00", FundedBy: "platform", Kind: "points"},  // 39-京豆优惠
	}
	if len(r.Lines) != 2 || r.Lines[0].Qty != 1 || r.Lines[1].Qty != 2 || !m.Masked || !slices.Equal(m.Discounts, want) {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

// couponType comes as "41-京东券优惠" or the bare code; a type JD adds later
// is the shop's; a zero coupon is no discount; a landline stands in for a
// missing mobile.
func TestJdCouponTypesAndPhone(t *testing.T) {
	body := `{"orderInfo":{"orderId":"7","orderStartTime":"2026-11-11 20:15:30","consigneeInfo":{"telephone":"028-****5566"},
		"itemInfoList":[{"skuId":9,"itemTotal":"1","jdPrice":"10.00"},{"skuId":9,"itemTotal":"1","jdPrice":"10.00"}],
		"couponDetailList":[{"skuId":"9","couponType":"30","couponPrice":"1"},{"couponType":"52-礼品卡优惠","couponPrice":"2"},
		{"couponType":"34","couponPrice":"3"},{"couponType":"77-新优惠","couponPrice":"4"},{"couponType":"41","couponPrice":"0.00"}]}}`
	m, err := Adapters["jd"].Map([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Discount{
		{Line: 0, Amount: "1.00", FundedBy: "shop", Kind: "promotion"},
		{Line: -1, Amount: "2.00", FundedBy: "platform", Kind: "gift_card"},
		{Line: -1, Amount: "3.00", FundedBy: "platform", Kind: "red_packet"},
		{Line: -1, Amount: "4.00", FundedBy: "shop", Kind: "promotion"},
	}
	if !slices.Equal(m.Discounts, want) || m.Request.Customer.Phone != "028-****5566" || !m.Masked ||
		m.Request.Customer.Address != "" || m.Extra["couponDetailList[3].couponType"] != "77-新优惠" {
		t.Fatalf("discounts %+v customer %+v", m.Discounts, m.Request.Customer)
	}
}

func TestJdRefusesNamingTheField(t *testing.T) {
	o := `"orderId":1,"orderStartTime":"2026-11-11 20:15:30"`
	item := `"itemInfoList":[{"skuId":"9","itemTotal":"1","jdPrice":"1"}]`
	for body, field := range map[string]string{
		`{}`:      "orderInfo",
		`"order"`: "body",
		`{"orderInfo":{"orderStartTime":"2026-11-11 20:15:30"}}`:                                             "orderInfo.orderId",
		`{"orderInfo":{"orderId":-3,"orderStartTime":"2026-11-11 20:15:30"}}`:                                "orderInfo.orderId",
		`{"orderInfo":{"orderId":1,"orderStartTime":"1762826400"}}`:                                          "orderInfo.orderStartTime",
		`{"orderInfo":{` + o + `}}`:                                                                          "orderInfo.itemInfoList",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"outerSkuId":"A","itemTotal":"0","jdPrice":"1"}]}}`:        "orderInfo.itemInfoList[0].itemTotal",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"outerSkuId":"A","itemTotal":"1.5","jdPrice":"1"}]}}`:      "orderInfo.itemInfoList[0].itemTotal",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"outerSkuId":"A","itemTotal":"1","jdPrice":"x"}]}}`:        "orderInfo.itemInfoList[0].jdPrice",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"outerSkuId":"A","itemTotal":"1"}]}}`:                      "orderInfo.itemInfoList[0].jdPrice",
		`{"orderInfo":{` + o + `,"itemInfoList":[{"itemTotal":"1","jdPrice":"1"}]}}`:                         "orderInfo.itemInfoList[0].outerSkuId",
		`{"orderInfo":{` + o + `,"orderPayment":"1.2.3",` + item + `}}`:                                      "orderInfo.orderPayment",
		`{"orderInfo":{` + o + `,` + item + `,"couponDetailList":[{"couponType":"41","couponPrice":"-5"}]}}`: "orderInfo.couponDetailList[0].couponPrice",
		`{"orderInfo":{` + o + `,` + item + `,"couponDetailList":[{"couponPrice":"5"}]}}`:                    "orderInfo.couponDetailList[0].couponType",
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
	if err := (jd{}).Verify(&Request{Header: h, Body: body}, &Connection{Secret: "other"}); err == nil {
		t.Fatal("another connection's secret verified")
	}
	if err := (jd{}).Verify(&Request{Header: http.Header{}, Body: body}, conn); err == nil {
		t.Fatal("an unsigned order verified")
	}
}

func FuzzMapJd(f *testing.F) {
	body, _ := os.ReadFile("testdata/jd/order.json")
	f.Add(body)
	for _, env := range envelopeSeeds["jd"] {
		f.Add([]byte(env))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "jd", data) })
}
