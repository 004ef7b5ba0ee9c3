package channels

import (
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// xiaohongshu is Xiaohongshu (小红书): the order of the order detail API
// (order.getOrderDetail data) with its skuList. Money is integer fen, times
// epoch milliseconds, the receiver masked, the buyer openId (or userId).
// merchantDiscount is the shop's, platformDiscount Xiaohongshu's. A
// connector posts orders with X-Ordergrid-Signature.
type xiaohongshu struct{}

func init() { register(xiaohongshu{}) }

func (xiaohongshu) Channel() string { return "xiaohongshu" }

func (xiaohongshu) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type xhsOrder struct {
	OrderID           string `json:"orderId"`
	OrderStatus       ID     `json:"orderStatus"`
	CreatedTime       ID     `json:"createdTime"`
	PaidTime          ID     `json:"paidTime"`
	TotalPayAmount    ID     `json:"totalPayAmount"`
	TotalShippingFree ID     `json:"totalShippingFree"`
	MerchantDiscount  ID     `json:"merchantDiscount"`
	PlatformDiscount  ID     `json:"platformDiscount"`
	OpenID            string `json:"openId"`
	UserID            string `json:"userId"`
	ReceiverName      string `json:"receiverName"`
	ReceiverPhone     string `json:"receiverPhone"`
	ReceiverProvince  string `json:"receiverProvinceName"`
	ReceiverCity      string `json:"receiverCityName"`
	ReceiverDistrict  string `json:"receiverDistrictName"`
	ReceiverAddress   string `json:"receiverAddress"`
	SkuList           []struct {
		SkuID    string `json:"skuId"`
		Erpcode  string `json:"erpcode"`
		Quantity ID     `json:"skuQuantity"`
		Price    ID     `json:"price"`
		Paid     ID     `json:"totalPaidAmount"`
	} `json:"skuList"`
}

func (xiaohongshu) Map(body []byte) (*Mapped, error) {
	var wrapped struct {
		Data *xhsOrder `json:"data"`
	}
	if err := decode(body, &wrapped); err != nil {
		return nil, err
	}
	o := wrapped.Data
	if o == nil {
		return nil, fieldErr("data", "required")
	}
	if o.OrderID == "" {
		return nil, fieldErr("data.orderId", "required")
	}
	created, err := EpochMillis("data.createdTime", string(o.CreatedTime))
	if err != nil {
		return nil, err
	}
	buyer := o.OpenID
	if buyer == "" {
		buyer = o.UserID
	}
	m := &Mapped{PlacedAt: created, BuyerID: buyer, Province: o.ReceiverProvince, City: o.ReceiverCity, District: o.ReceiverDistrict,
		Masked: Masked(o.ReceiverName) || Masked(o.ReceiverPhone) || Masked(o.ReceiverAddress), Extra: map[string]string{"orderStatus": string(o.OrderStatus)}}
	req := &pb.CreateOrderRequest{Channel: "xiaohongshu", ChannelOrderId: o.OrderID, Currency: "CNY", DeliveryRegion: ProvinceRegion(o.ReceiverProvince),
		Customer: &pb.Customer{Name: o.ReceiverName, Phone: o.ReceiverPhone,
			Address: joinAddress(o.ReceiverProvince, o.ReceiverCity, o.ReceiverDistrict, o.ReceiverAddress)}}
	if o.PaidTime != "" && o.PaidTime != "0" {
		if _, err := EpochMillis("data.paidTime", string(o.PaidTime)); err != nil {
			return nil, err
		}
		m.Extra["paidTime"] = string(o.PaidTime)
	}
	for _, f := range [][2]string{{"totalPayAmount", string(o.TotalPayAmount)}, {"totalShippingFree", string(o.TotalShippingFree)}} {
		if f[1] != "" {
			v, err := fen("data."+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	for _, d := range []struct {
		name, by string
		v        ID
	}{{"merchantDiscount", "shop", o.MerchantDiscount}, {"platformDiscount", "platform", o.PlatformDiscount}} {
		if d.v == "" || d.v == "0" {
			continue
		}
		v, err := fen("data."+d.name, string(d.v))
		if err != nil {
			return nil, err
		}
		m.Discounts = append(m.Discounts, Discount{Line: -1, Amount: v, FundedBy: d.by, Kind: "discount"})
	}
	if len(o.SkuList) == 0 {
		return nil, fieldErr("data.skuList", "at least one SKU")
	}
	for i, s := range o.SkuList {
		f := fmt.Sprintf("data.skuList[%d].", i)
		sku := s.Erpcode
		if sku == "" {
			sku = s.SkuID
		}
		if sku == "" {
			return nil, fieldErr(f+"erpcode", "required (or skuId)")
		}
		qty, err := count(f+"skuQuantity", s.Quantity)
		if err != nil {
			return nil, err
		}
		price, err := fen(f+"price", string(s.Price))
		if err != nil {
			return nil, err
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
	}
	m.Request = req
	return m, nil
}
