package channels

import (
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// jd is JD's POP (third-party seller) order: the orderInfo of
// jingdong.pop.order.get / orderSearch, with itemInfoList, consigneeInfo and
// couponDetailList. Money is yuan strings, times "yyyy-MM-dd HH:mm:ss"
// Beijing time, orderId a JSON number, item counts strings, the consignee
// masked, the buyer open_id_buyer (or pin). Coupons: JD's own (京券, 东券,
// couponType 20/30/39, and "平台" in the type name) are platform-funded,
// every other (单品促销, 满减, 店铺券) the shop's. A connector posts orders
// with X-Ordergrid-Signature.
type jd struct{}

func init() { register(jd{}) }

func (jd) Channel() string { return "jd" }

func (jd) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type jdOrder struct {
	OrderID        ID     `json:"orderId"`
	OrderState     string `json:"orderState"`
	OrderStartTime string `json:"orderStartTime"`
	TotalPrice     string `json:"orderTotalPrice"`
	SellerPrice    string `json:"orderSellerPrice"`
	Payment        string `json:"orderPayment"`
	Freight        string `json:"freightPrice"`
	OpenIDBuyer    string `json:"open_id_buyer"`
	Pin            string `json:"pin"`
	Consignee      struct {
		Fullname    string `json:"fullname"`
		Mobile      string `json:"mobile"`
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
	var wrapped struct {
		OrderInfo *jdOrder `json:"orderInfo"`
	}
	if err := decode(body, &wrapped); err != nil {
		return nil, err
	}
	o := wrapped.OrderInfo
	if o == nil {
		return nil, fieldErr("orderInfo", "required")
	}
	if o.OrderID == "" {
		return nil, fieldErr("orderInfo.orderId", "required")
	}
	started, err := BeijingTime("orderInfo.orderStartTime", o.OrderStartTime)
	if err != nil {
		return nil, err
	}
	c := o.Consignee
	buyer := o.OpenIDBuyer
	if buyer == "" {
		buyer = o.Pin
	}
	m := &Mapped{PlacedAt: started, BuyerID: buyer, Province: c.Province, City: c.City, District: c.County,
		Masked: Masked(c.Fullname) || Masked(c.Mobile) || Masked(c.FullAddress), Extra: map[string]string{"orderState": o.OrderState}}
	req := &pb.CreateOrderRequest{Channel: "jd", ChannelOrderId: string(o.OrderID), Currency: "CNY", DeliveryRegion: ProvinceRegion(c.Province),
		Customer: &pb.Customer{Name: c.Fullname, Phone: c.Mobile, Address: c.FullAddress}}
	if req.Customer.Address == "" {
		req.Customer.Address = joinAddress(c.Province, c.City, c.County, c.Town)
	}
	for _, f := range [][2]string{{"orderTotalPrice", o.TotalPrice}, {"orderSellerPrice", o.SellerPrice}, {"orderPayment", o.Payment}, {"freightPrice", o.Freight}} {
		if f[1] != "" {
			v, err := Yuan("orderInfo."+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if len(o.Items) == 0 {
		return nil, fieldErr("orderInfo.itemInfoList", "at least one item")
	}
	lineOf := map[string]int{}
	for i, it := range o.Items {
		f := fmt.Sprintf("orderInfo.itemInfoList[%d].", i)
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
		lineOf[string(it.SkuID)] = i
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
	}
	for i, cp := range o.Coupons {
		v, err := Yuan(fmt.Sprintf("orderInfo.couponDetailList[%d].couponPrice", i), cp.Price)
		if err != nil {
			return nil, err
		}
		line, ok := lineOf[string(cp.SkuID)]
		if !ok {
			line = -1
		}
		by := "shop"
		switch cp.CouponType {
		case "20", "30", "39", "京券", "东券", "平台券":
			by = "platform"
		}
		m.Discounts = append(m.Discounts, Discount{Line: line, Amount: v, FundedBy: by, Kind: "coupon " + cp.CouponType})
	}
	m.Request = req
	return m, nil
}
