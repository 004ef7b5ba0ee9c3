package channels

import (
	"encoding/json"
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// pinduoduo is Pinduoduo: the order_info of pdd.order.information.get
// (order_info_get_response.order_info, or {"order_info": …}) with its
// item_list; postage is the shipping the buyer pays. Money is yuan
// JSON numbers (read from their text, never through a float), times
// "yyyy-MM-dd HH:mm:ss" Beijing time, sku ids JSON numbers, the receiver
// encrypted ("~…~") or masked. platform_discount is Pinduoduo's,
// seller_discount the shop's. A connector posts orders with
// X-Ordergrid-Signature.
type pinduoduo struct{}

func init() { register(pinduoduo{}) }

func (pinduoduo) Channel() string { return "pinduoduo" }

func (pinduoduo) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type pddOrder struct {
	OrderSn          string      `json:"order_sn"`
	OrderStatus      ID          `json:"order_status"`
	CreatedTime      string      `json:"created_time"`
	ConfirmTime      string      `json:"confirm_time"`
	PayAmount        json.Number `json:"pay_amount"`
	GoodsAmount      json.Number `json:"goods_amount"`
	Postage          json.Number `json:"postage"`
	PlatformDiscount json.Number `json:"platform_discount"`
	SellerDiscount   json.Number `json:"seller_discount"`
	BuyerID          ID          `json:"buyer_id"`
	ReceiverName     string      `json:"receiver_name"`
	ReceiverPhone    string      `json:"receiver_phone"`
	ReceiverAddress  string      `json:"receiver_address"`
	Province         string      `json:"province"`
	City             string      `json:"city"`
	Town             string      `json:"town"`
	Items            []struct {
		GoodsID    ID          `json:"goods_id"`
		SkuID      ID          `json:"sku_id"`
		OuterSkuID string      `json:"outer_sku_id"`
		OuterID    string      `json:"outer_id"`
		GoodsCount ID          `json:"goods_count"`
		GoodsPrice json.Number `json:"goods_price"`
	} `json:"item_list"`
}

func (pinduoduo) Map(body []byte) (*Mapped, error) {
	inner, at, err := unwrapPinduoduo(body)
	if err != nil {
		return nil, err
	}
	o := &pddOrder{}
	if err := decodeAt(inner, at, o); err != nil {
		return nil, err
	}
	at += "."
	if o.OrderSn == "" {
		return nil, fieldErr(at+"order_sn", "required")
	}
	created, err := BeijingTime(at+"created_time", o.CreatedTime)
	if err != nil {
		return nil, err
	}
	m := &Mapped{PlacedAt: created, BuyerID: string(o.BuyerID), Province: o.Province, City: o.City, District: o.Town,
		Masked: Masked(o.ReceiverName) || Masked(o.ReceiverPhone) || Masked(o.ReceiverAddress), Extra: map[string]string{"order_status": string(o.OrderStatus)}}
	if Masked(o.ReceiverName) || Masked(o.ReceiverPhone) || Masked(o.ReceiverAddress) {
		m.Ciphertexts = map[string]string{"name": o.ReceiverName, "phone": o.ReceiverPhone, "address_detail": o.ReceiverAddress}
	}
	req := &pb.CreateOrderRequest{Channel: "pinduoduo", ChannelOrderId: o.OrderSn, Currency: "CNY", DeliveryRegion: ProvinceRegion(o.Province),
		Customer: &pb.Customer{Name: o.ReceiverName, Phone: o.ReceiverPhone, Address: JoinAddress(o.Province, o.City, o.Town, o.ReceiverAddress)}}
	if o.ConfirmTime != "" {
		paid, err := BeijingTime(at+"confirm_time", o.ConfirmTime)
		if err != nil {
			return nil, err
		}
		m.PaidAt = paid // confirm_time is 成交时间: when the buyer paid
		m.Extra["confirm_time"] = o.ConfirmTime
	}
	for _, f := range []struct {
		name string
		v    json.Number
	}{{"pay_amount", o.PayAmount}, {"goods_amount", o.GoodsAmount}, {"postage", o.Postage}} {
		if f.v != "" {
			v, err := Yuan(at+f.name, string(f.v))
			if err != nil {
				return nil, err
			}
			m.Extra[f.name] = v
		}
	}
	if v := m.Extra["postage"]; v != "" && v != "0.00" {
		m.Charges = append(m.Charges, Charge{Kind: "shipping", Amount: v, Line: -1, Title: "postage"})
	}
	for _, d := range []struct {
		name, by string
		v        json.Number
	}{{"platform_discount", "platform", o.PlatformDiscount}, {"seller_discount", "shop", o.SellerDiscount}} {
		if d.v == "" {
			continue
		}
		v, err := Yuan(at+d.name, string(d.v))
		if err != nil {
			return nil, err
		}
		if v != "0.00" {
			m.Discounts = append(m.Discounts, Discount{Line: -1, Amount: v, FundedBy: d.by, Kind: "discount"})
		}
	}
	if len(o.Items) == 0 {
		return nil, fieldErr(at+"item_list", "at least one item")
	}
	for i, it := range o.Items {
		f := fmt.Sprintf("%sitem_list[%d].", at, i)
		sku := it.OuterSkuID
		if sku == "" {
			sku = it.OuterID
		}
		if sku == "" {
			sku = string(it.SkuID)
		}
		if sku == "" {
			return nil, fieldErr(f+"outer_sku_id", "required (or outer_id, sku_id)")
		}
		qty, err := count(f+"goods_count", it.GoodsCount)
		if err != nil {
			return nil, err
		}
		price, err := Yuan(f+"goods_price", string(it.GoodsPrice))
		if err != nil {
			return nil, err
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
	}
	m.Request = req
	return m, nil
}
