package channels

import (
	"fmt"
	"strings"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// jd is JD's POP (third-party seller) order: the orderInfo of
// jingdong.pop.order.get (jingdong_pop_order_get_responce.orderDetailInfo.orderInfo,
// or {"orderInfo": …}) / orderSearch, with itemInfoList, consigneeInfo and
// couponDetailList. Money is yuan strings ("5899.00"), times
// "yyyy-MM-dd HH:mm:ss" Beijing time, orderId a JSON number (or its text),
// item counts strings, freightPrice the shipping the buyer pays, the consignee masked ("刘*", "150****2233"), the
// buyer open_id_buyer (or pin). Customer.Address is consigneeInfo.fullAddress
// as JD sends it (it already starts with the province, city and county).
// JD does not push orders: a connector posts them with X-Ordergrid-Signature.
type jd struct{}

func init() { register(jd{}) }

func (jd) Channel() string { return "jd" }

func (jd) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

// jdCouponTypes are couponDetailList's couponType codes (JD sends
// "41-京东券优惠" or the bare "41") by who funds them. The shop's are its own
// promotions, the sellerDiscount (orderSellerPrice = orderTotalPrice -
// sellerDiscount); the platform's are the buyer's JD-wide discounts that
// orderPayment deducts from orderSellerPrice: 京豆, 京东券 (京券/东券),
// 手机红包, 礼品卡. A type not listed is taken as the shop's: its raw code
// stays in Extra.
var jdCouponTypes = map[string]struct{ by, kind string }{
	"20":  {"shop", "bundle"},         // 套装优惠
	"28":  {"shop", "flash_group"},    // 闪团优惠
	"29":  {"shop", "group_buy"},      // 团购优惠
	"30":  {"shop", "promotion"},      // 单品促销优惠: the only type with a skuId
	"34":  {"platform", "red_packet"}, // 手机红包
	"35":  {"shop", "cashback"},       // 满返满送(返现)
	"39":  {"platform", "points"},     // 京豆优惠
	"41":  {"platform", "coupon"},     // 京东券优惠
	"52":  {"platform", "gift_card"},  // 礼品卡优惠
	"100": {"shop", "promotion"},      // 店铺优惠
}

type jdOrder struct {
	OrderID        ID     `json:"orderId"`
	OrderState     string `json:"orderState"`
	OrderStartTime string `json:"orderStartTime"`
	// PaymentConfirmTime is when the payment was confirmed (付款确认时间).
	PaymentConfirmTime string `json:"paymentConfirmTime"`
	TotalPrice         string `json:"orderTotalPrice"`
	SellerPrice        string `json:"orderSellerPrice"`
	Payment            string `json:"orderPayment"`
	Freight            string `json:"freightPrice"`
	SellerDiscount     string `json:"sellerDiscount"`
	OpenIDBuyer        string `json:"open_id_buyer"`
	Pin                string `json:"pin"`
	Consignee          struct {
		Fullname    string `json:"fullname"`
		Mobile      string `json:"mobile"`
		Telephone   string `json:"telephone"`
		Province    string `json:"province"`
		City        string `json:"city"`
		County      string `json:"county"`
		Town        string `json:"town"`
		FullAddress string `json:"fullAddress"`
	} `json:"consigneeInfo"`
	Items []struct {
		SkuID      ID     `json:"skuId"`
		OuterSkuID string `json:"outerSkuId"`
		JdPrice    string `json:"jdPrice"`
		ItemTotal  ID     `json:"itemTotal"`
	} `json:"itemInfoList"`
	Coupons []struct {
		SkuID      ID     `json:"skuId"`
		CouponType string `json:"couponType"`
		Price      string `json:"couponPrice"`
	} `json:"couponDetailList"`
}

func (jd) Map(body []byte) (*Mapped, error) {
	inner, at, err := unwrapJD(body)
	if err != nil {
		return nil, err
	}
	o := &jdOrder{}
	if err := decodeAt(inner, at, o); err != nil {
		return nil, err
	}
	at += "."
	if o.OrderID == "" {
		return nil, fieldErr(at+"orderId", "required")
	}
	started, err := BeijingTime(at+"orderStartTime", o.OrderStartTime)
	if err != nil {
		return nil, err
	}
	c := o.Consignee
	buyer := o.OpenIDBuyer
	if buyer == "" {
		buyer = o.Pin
	}
	phone := c.Mobile
	if phone == "" {
		phone = c.Telephone // a landline only
	}
	m := &Mapped{PlacedAt: started, BuyerID: buyer, Province: c.Province, City: c.City, District: c.County,
		Masked: Masked(c.Fullname) || Masked(phone) || Masked(c.FullAddress), Extra: map[string]string{"orderState": o.OrderState},
		Cancelled: o.OrderState == "TRADE_CANCELED"}
	if o.PaymentConfirmTime != "" && o.PaymentConfirmTime != "0001-01-01 00:00:00" {
		if m.PaidAt, err = BeijingTime(at+"paymentConfirmTime", o.PaymentConfirmTime); err != nil {
			return nil, err
		}
	}
	req := &pb.CreateOrderRequest{Channel: "jd", ChannelOrderId: string(o.OrderID), Currency: "CNY", DeliveryRegion: ProvinceRegion(c.Province),
		Customer: &pb.Customer{Name: c.Fullname, Phone: phone, Address: c.FullAddress}}
	if req.Customer.Address == "" {
		req.Customer.Address = JoinAddress(c.Province, c.City, c.County, c.Town)
	}
	for _, f := range [][2]string{{"orderTotalPrice", o.TotalPrice}, {"orderSellerPrice", o.SellerPrice}, {"orderPayment", o.Payment},
		{"freightPrice", o.Freight}, {"sellerDiscount", o.SellerDiscount}} {
		if f[1] != "" {
			v, err := Yuan(at+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if v := m.Extra["freightPrice"]; v != "" && v != "0.00" {
		m.Charges = append(m.Charges, Charge{Kind: "shipping", Amount: v, Line: -1, Title: "freightPrice"})
	}
	if len(o.Items) == 0 {
		return nil, fieldErr(at+"itemInfoList", "at least one item")
	}
	lineOf := map[ID]int{}
	for i, it := range o.Items {
		f := fmt.Sprintf("%sitemInfoList[%d].", at, i)
		sku := it.OuterSkuID
		if sku == "" {
			sku = string(it.SkuID)
		}
		if sku == "" {
			return nil, fieldErr(f+"outerSkuId", "required (or skuId)")
		}
		qty, err := count(f+"itemTotal", it.ItemTotal)
		if err != nil {
			return nil, err
		}
		price, err := Yuan(f+"jdPrice", it.JdPrice)
		if err != nil {
			return nil, err
		}
		if _, seen := lineOf[it.SkuID]; !seen && it.SkuID != "" {
			lineOf[it.SkuID] = i // a coupon on a SKU sold on two lines goes to the first
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
	}
	for i, cp := range o.Coupons {
		f := fmt.Sprintf("%scouponDetailList[%d].", at, i)
		v, err := Yuan(f+"couponPrice", cp.Price)
		if err != nil {
			return nil, err
		}
		code, _, _ := strings.Cut(strings.TrimSpace(cp.CouponType), "-")
		if code == "" {
			return nil, fieldErr(f+"couponType", "required")
		}
		m.Extra[fmt.Sprintf("couponDetailList[%d].couponType", i)] = cp.CouponType
		if v == "0.00" {
			continue
		}
		line, ok := lineOf[cp.SkuID]
		if !ok {
			line = -1
		}
		t, known := jdCouponTypes[code]
		if !known {
			t.by, t.kind = "shop", "promotion"
		}
		m.Discounts = append(m.Discounts, Discount{Line: line, Amount: v, FundedBy: t.by, Kind: t.kind})
	}
	m.Request = req
	return m, nil
}
