package channels

import (
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// tmall is Tmall/Taobao: the trade of taobao.trade.fullinfo.get
// (trade_fullinfo_get_response.trade, or the trade itself) with its
// orders.order[] sub-orders. Money is yuan strings, times
// "yyyy-MM-dd HH:mm:ss" in Beijing time, tid and oid JSON numbers, the
// receiver masked or OAID-encrypted, the buyer buyer_open_uid. Line
// discount_fee is the shop's; coupon_fee (platform coupons, 天猫购物券) the
// platform's. Taobao does not push orders: a connector posts them with
// X-Ordergrid-Signature.
type tmall struct{}

func init() { register(tmall{}) }

func (tmall) Channel() string { return "tmall" }

func (tmall) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type tmallTrade struct {
	Tid             ID     `json:"tid"`
	Status          string `json:"status"`
	Created         string `json:"created"`
	PayTime         string `json:"pay_time"`
	Payment         string `json:"payment"`
	TotalFee        string `json:"total_fee"`
	PostFee         string `json:"post_fee"`
	CouponFee       string `json:"coupon_fee"`
	BuyerOpenUID    string `json:"buyer_open_uid"`
	ReceiverName    string `json:"receiver_name"`
	ReceiverMobile  string `json:"receiver_mobile"`
	ReceiverState   string `json:"receiver_state"`
	ReceiverCity    string `json:"receiver_city"`
	ReceiverDistict string `json:"receiver_district"`
	ReceiverTown    string `json:"receiver_town"`
	ReceiverAddress string `json:"receiver_address"`
	Orders          struct {
		Order []struct {
			Oid        ID     `json:"oid"`
			NumIid     ID     `json:"num_iid"`
			SkuID      ID     `json:"sku_id"`
			OuterSkuID string `json:"outer_sku_id"`
			Num        ID     `json:"num"`
			Price      string `json:"price"`
			Payment    string `json:"payment"`
			Discount   string `json:"discount_fee"`
		} `json:"order"`
	} `json:"orders"`
}

func (tmall) Map(body []byte) (*Mapped, error) {
	var wrapped struct {
		Response *struct {
			Trade *tmallTrade `json:"trade"`
		} `json:"trade_fullinfo_get_response"`
		Trade *tmallTrade `json:"trade"`
	}
	if err := decode(body, &wrapped); err != nil {
		return nil, err
	}
	t, at := wrapped.Trade, "trade."
	if wrapped.Response != nil && wrapped.Response.Trade != nil {
		t, at = wrapped.Response.Trade, "trade_fullinfo_get_response.trade."
	}
	if t == nil {
		return nil, fieldErr("trade", "required")
	}
	if t.Tid == "" {
		return nil, fieldErr(at+"tid", "required")
	}
	created, err := BeijingTime(at+"created", t.Created)
	if err != nil {
		return nil, err
	}
	m := &Mapped{PlacedAt: created, BuyerID: t.BuyerOpenUID, Province: t.ReceiverState, City: t.ReceiverCity, District: t.ReceiverDistict,
		Masked: Masked(t.ReceiverName) || Masked(t.ReceiverMobile) || Masked(t.ReceiverAddress), Extra: map[string]string{"status": t.Status}}
	req := &pb.CreateOrderRequest{Channel: "tmall", ChannelOrderId: string(t.Tid), Currency: "CNY", DeliveryRegion: ProvinceRegion(t.ReceiverState),
		Customer: &pb.Customer{Name: t.ReceiverName, Phone: t.ReceiverMobile,
			Address: joinAddress(t.ReceiverState, t.ReceiverCity, t.ReceiverDistict, t.ReceiverTown, t.ReceiverAddress)}}
	if t.PayTime != "" {
		if _, err := BeijingTime(at+"pay_time", t.PayTime); err != nil {
			return nil, err
		}
		m.Extra["pay_time"] = t.PayTime
	}
	for _, f := range [][2]string{{"payment", t.Payment}, {"total_fee", t.TotalFee}, {"post_fee", t.PostFee}} {
		if f[1] != "" {
			v, err := Yuan(at+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if t.CouponFee != "" {
		v, err := Yuan(at+"coupon_fee", t.CouponFee)
		if err != nil {
			return nil, err
		}
		if v != "0.00" {
			m.Discounts = append(m.Discounts, Discount{Line: -1, Amount: v, FundedBy: "platform", Kind: "coupon"})
		}
	}
	if len(t.Orders.Order) == 0 {
		return nil, fieldErr(at+"orders.order", "at least one sub-order")
	}
	for i, o := range t.Orders.Order {
		f := fmt.Sprintf("%sorders.order[%d].", at, i)
		sku := o.OuterSkuID
		if sku == "" {
			sku = string(o.SkuID)
		}
		if sku == "" {
			return nil, fieldErr(f+"outer_sku_id", "required (or sku_id)")
		}
		qty, err := count(f+"num", o.Num)
		if err != nil {
			return nil, err
		}
		price, err := Yuan(f+"price", o.Price)
		if err != nil {
			return nil, err
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
		if o.Discount != "" {
			d, err := Yuan(f+"discount_fee", o.Discount)
			if err != nil {
				return nil, err
			}
			if d != "0.00" {
				m.Discounts = append(m.Discounts, Discount{Line: i, Amount: d, FundedBy: "shop", Kind: "promotion"})
			}
		}
		m.Extra[fmt.Sprintf("orders.order[%d].oid", i)] = string(o.Oid)
	}
	m.Request = req
	return m, nil
}
