package channels

import (
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// tmall is Tmall/Taobao: the trade of taobao.trade.fullinfo.get
// (trade_fullinfo_get_response.trade, or {"trade": …}) with its
// orders.order[] sub-orders and promotion_details.promotion_detail[].
// Money is yuan strings ("200.07"), except the red-packet amounts
// tmall_coupon_fee and coupon_fee, which the API documents as Numbers
// (whole fen); times are "yyyy-MM-dd HH:mm:ss" Beijing time; tid, oid and
// num_iid JSON numbers (beyond 2^53: kept as text); the receiver masked
// ("张**", "138****5678") or OAID-encrypted; the buyer buyer_open_uid.
//
// Who funds what: a sub-order's discount_fee (子订单级订单优惠) is the
// shop's; the red packet (tmall_coupon_fee on Tmall, coupon_fee on Taobao;
// 天猫红包/购物券) the platform's. The trade's discount_fee and a
// sub-order's part_mjz_discount (its share of order-level promotions) are
// kept in Extra only: the API does not say who funds them.
//
// Taobao does not push orders: a connector that pulled the trade posts it
// with X-Ordergrid-Signature.
type tmall struct{}

func init() { register(tmall{}) }

func (tmall) Channel() string { return "tmall" }

func (tmall) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type tmallTrade struct {
	Tid              ID     `json:"tid"`
	Status           string `json:"status"`
	Created          string `json:"created"`
	PayTime          string `json:"pay_time"`
	Payment          string `json:"payment"`
	TotalFee         string `json:"total_fee"`
	PostFee          string `json:"post_fee"`
	DiscountFee      string `json:"discount_fee"`
	CouponFee        ID     `json:"coupon_fee"`
	TmallCouponFee   ID     `json:"tmall_coupon_fee"`
	BuyerOpenUID     string `json:"buyer_open_uid"`
	ReceiverName     string `json:"receiver_name"`
	ReceiverMobile   string `json:"receiver_mobile"`
	ReceiverPhone    string `json:"receiver_phone"`
	ReceiverState    string `json:"receiver_state"`
	ReceiverCity     string `json:"receiver_city"`
	ReceiverDistrict string `json:"receiver_district"`
	ReceiverTown     string `json:"receiver_town"`
	ReceiverAddress  string `json:"receiver_address"`
	OAID             string `json:"oaid"`
	Orders           struct {
		Order []tmallOrder `json:"order"`
	} `json:"orders"`
	Promotions struct {
		Detail []struct {
			ID          ID     `json:"id"`
			PromotionID string `json:"promotion_id"`
		} `json:"promotion_detail"`
	} `json:"promotion_details"`
}

type tmallOrder struct {
	Oid             ID     `json:"oid"`
	NumIid          ID     `json:"num_iid"`
	SkuID           ID     `json:"sku_id"`
	OuterSkuID      string `json:"outer_sku_id"`
	Num             ID     `json:"num"`
	Price           string `json:"price"`
	TotalFee        string `json:"total_fee"`
	Payment         string `json:"payment"`
	DiscountFee     string `json:"discount_fee"`
	PartMjzDiscount string `json:"part_mjz_discount"`
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
	phone := t.ReceiverMobile
	if phone == "" {
		phone = t.ReceiverPhone // a landline only
	}
	m := &Mapped{PlacedAt: created, BuyerID: t.BuyerOpenUID, Province: t.ReceiverState, City: t.ReceiverCity, District: t.ReceiverDistrict,
		Masked: Masked(t.ReceiverName) || Masked(phone) || Masked(t.ReceiverAddress), Extra: map[string]string{"status": t.Status}}
	if t.OAID != "" {
		m.Ciphertexts = map[string]string{"oaid": t.OAID}
	}
	req := &pb.CreateOrderRequest{Channel: "tmall", ChannelOrderId: string(t.Tid), Currency: "CNY", DeliveryRegion: ProvinceRegion(t.ReceiverState),
		Customer: &pb.Customer{Name: t.ReceiverName, Phone: phone,
			Address: joinAddress(t.ReceiverState, t.ReceiverCity, t.ReceiverDistrict, t.ReceiverTown, t.ReceiverAddress)}}
	if t.PayTime != "" {
		if _, err := BeijingTime(at+"pay_time", t.PayTime); err != nil {
			return nil, err
		}
		m.Extra["pay_time"] = t.PayTime
	}
	for _, f := range [][2]string{{"payment", t.Payment}, {"total_fee", t.TotalFee}, {"post_fee", t.PostFee}, {"discount_fee", t.DiscountFee}} {
		if f[1] != "" {
			v, err := Yuan(at+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	// The red packet: Tmall's own field first (the API's advice for Tmall
	// shops), else Taobao's coupon_fee; never both, they are the same money.
	packet, packetField := t.TmallCouponFee, "tmall_coupon_fee"
	if packet == "" || packet == "0" {
		packet, packetField = t.CouponFee, "coupon_fee"
	}
	if packet != "" && packet != "0" {
		v, err := fen(at+packetField, string(packet))
		if err != nil {
			return nil, err
		}
		m.Discounts = append(m.Discounts, Discount{Line: -1, Amount: v, FundedBy: "platform", Kind: "red_packet"})
	}
	if len(t.Orders.Order) == 0 {
		return nil, fieldErr(at+"orders.order", "at least one sub-order")
	}
	for i, o := range t.Orders.Order {
		f := fmt.Sprintf("%sorders.order[%d].", at, i)
		x := fmt.Sprintf("orders.order[%d].", i)
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
		for _, a := range [][2]string{{"payment", o.Payment}, {"total_fee", o.TotalFee}, {"part_mjz_discount", o.PartMjzDiscount}} {
			if a[1] != "" {
				v, err := Yuan(f+a[0], a[1])
				if err != nil {
					return nil, err
				}
				m.Extra[x+a[0]] = v
			}
		}
		if o.DiscountFee != "" {
			d, err := Yuan(f+"discount_fee", o.DiscountFee)
			if err != nil {
				return nil, err
			}
			if d != "0.00" {
				m.Discounts = append(m.Discounts, Discount{Line: i, Amount: d, FundedBy: "shop", Kind: "promotion"})
			}
		}
		m.Extra[x+"oid"] = string(o.Oid)
		if o.NumIid != "" {
			m.Extra[x+"num_iid"] = string(o.NumIid)
		}
	}
	for i, p := range t.Promotions.Detail {
		x := fmt.Sprintf("promotion_details[%d].", i)
		if p.PromotionID != "" {
			m.Extra[x+"promotion_id"] = p.PromotionID
		}
		if p.ID != "" {
			m.Extra[x+"id"] = string(p.ID)
		}
	}
	m.Request = req
	return m, nil
}
