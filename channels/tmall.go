package channels

import (
	"fmt"
	"math/big"
	"strings"

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
// Who funds what (taobao.trade.fullinfo.get's Trade, Order and
// PromotionDetail field lists, open.taobao.com, and its 常用订单金额说明
// docId=108471): a sub-order's discount_fee (子订单级订单优惠) is the shop's
// item-level promotions, itemised by the promotion_details entries whose id
// is the sub-order's oid; a shop coupon (店铺优惠券: promotion_id
// "shopbonus-…", "Tmall$shopbonus-…") is the shop's, and so is a
// sub-order's part_mjz_discount, its share of the shop's order-level
// promotions (满减, the shop coupon); the red packet (tmall_coupon_fee on
// Tmall, coupon_fee on Taobao; 天猫红包/购物券) is the platform's. So:
//
//   - an item-level promotion detail is a line discount of its kind
//     ("coupon" for a shop coupon, else "promotion"), and whatever of the
//     sub-order's discount_fee the details do not itemise is a "promotion";
//   - part_mjz_discount, where sent, is a line discount funded by the shop
//     ("coupon" when the order's only order-level promotions are shop
//     coupons, else "order_promotion"), and then the order-level details
//     are not counted again;
//   - without part_mjz_discount, an order-level shop coupon is a discount
//     on the whole order; other order-level promotions (跨店满减 and the
//     like, whose funding the API does not say) stay in Extra.
//
// post_fee is the shipping the buyer pays. The trade's discount_fee stays
// in Extra.
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
		Detail []tmallPromotion `json:"promotion_detail"`
	} `json:"promotion_details"`
}

// tmallPromotion is one promotion_details.promotion_detail[] entry.
type tmallPromotion struct {
	// ID is the sub-order's oid for an item-level promotion, the trade's
	// tid for an order-level one.
	ID            ID     `json:"id"`
	PromotionName string `json:"promotion_name"`
	DiscountFee   string `json:"discount_fee"`
	PromotionID   string `json:"promotion_id"`
	KdDiscountFee string `json:"kd_discount_fee"`
}

// shopCoupon reports whether a promotion is a shop coupon (店铺优惠券): its
// promotion_id names the shopbonus tool ("shopbonus-44012345_60981234-…",
// with Tmall's "Tmall$" in front), or its name says so.
func (p *tmallPromotion) shopCoupon() bool {
	return strings.Contains(strings.ToLower(p.PromotionID), "shopbonus") || strings.Contains(p.PromotionName, "店铺优惠券") ||
		strings.Contains(p.PromotionName, "店铺券")
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
	inner, at, err := unwrapTmall(body)
	if err != nil {
		return nil, err
	}
	t := &tmallTrade{}
	if err := decodeAt(inner, at, t); err != nil {
		return nil, err
	}
	at += "."
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
		Masked: Masked(t.ReceiverName) || Masked(phone) || Masked(t.ReceiverAddress), Extra: map[string]string{"status": t.Status},
		Cancelled: t.Status == "TRADE_CLOSED" || t.Status == "TRADE_CLOSED_BY_TAOBAO"}
	if t.OAID != "" {
		m.Ciphertexts = map[string]string{"oaid": t.OAID}
	}
	req := &pb.CreateOrderRequest{Channel: "tmall", ChannelOrderId: string(t.Tid), Currency: "CNY", DeliveryRegion: ProvinceRegion(t.ReceiverState),
		Customer: &pb.Customer{Name: t.ReceiverName, Phone: phone,
			Address: JoinAddress(t.ReceiverState, t.ReceiverCity, t.ReceiverDistrict, t.ReceiverTown, t.ReceiverAddress)}}
	if t.PayTime != "" {
		paid, err := BeijingTime(at+"pay_time", t.PayTime)
		if err != nil {
			return nil, err
		}
		m.PaidAt = paid
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
	if v := m.Extra["post_fee"]; v != "" && v != "0.00" {
		m.Charges = append(m.Charges, Charge{Kind: "shipping", Amount: v, Line: -1, Title: "post_fee"})
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
	lineOf := map[ID]int{}
	itemFee := make([]string, len(t.Orders.Order))
	partMjz := make([]string, len(t.Orders.Order))
	for i, o := range t.Orders.Order {
		if _, dup := lineOf[o.Oid]; !dup && o.Oid != "" && o.Oid != t.Tid {
			lineOf[o.Oid] = i
		}
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
			itemFee[i] = d
		}
		if o.PartMjzDiscount != "" {
			partMjz[i] = m.Extra[x+"part_mjz_discount"]
		}
		m.Extra[x+"oid"] = string(o.Oid)
		if o.NumIid != "" {
			m.Extra[x+"num_iid"] = string(o.NumIid)
		}
	}
	if err := tmallDiscounts(m, t, at, lineOf, itemFee, partMjz); err != nil {
		return nil, err
	}
	m.Request = req
	return m, nil
}

// tmallDiscounts records the shop's discounts: item-level promotion
// details and what of each sub-order's discount_fee they leave, the
// part_mjz_discount shares, or order-level shop coupons (see tmall).
func tmallDiscounts(m *Mapped, t *tmallTrade, at string, lineOf map[ID]int, itemFee, partMjz []string) error {
	itemised := make([]*big.Rat, len(itemFee))
	orderLevelCoupons, orderLevelOther := []Discount{}, 0
	for i := range t.Promotions.Detail {
		p := &t.Promotions.Detail[i]
		f := fmt.Sprintf("%spromotion_details.promotion_detail[%d].", at, i)
		x := fmt.Sprintf("promotion_details[%d].", i)
		if p.PromotionID != "" {
			m.Extra[x+"promotion_id"] = p.PromotionID
		}
		if p.PromotionName != "" {
			m.Extra[x+"promotion_name"] = p.PromotionName
		}
		if p.ID != "" {
			m.Extra[x+"id"] = string(p.ID)
		}
		if p.DiscountFee == "" {
			continue
		}
		v, err := Yuan(f+"discount_fee", p.DiscountFee)
		if err != nil {
			return err
		}
		m.Extra[x+"discount_fee"] = v
		if v == "0.00" {
			continue
		}
		kind := "promotion"
		if p.shopCoupon() {
			kind = "coupon"
		}
		if line, ok := lineOf[p.ID]; ok {
			m.Discounts = append(m.Discounts, Discount{Line: line, Amount: v, FundedBy: "shop", Kind: kind})
			r, _ := new(big.Rat).SetString(v)
			if itemised[line] == nil {
				itemised[line] = new(big.Rat)
			}
			itemised[line].Add(itemised[line], r)
			continue
		}
		if kind == "coupon" {
			orderLevelCoupons = append(orderLevelCoupons, Discount{Line: -1, Amount: v, FundedBy: "shop", Kind: "coupon"})
		} else {
			orderLevelOther++
		}
	}
	for i, fee := range itemFee {
		if fee == "" {
			continue
		}
		left, _ := new(big.Rat).SetString(fee)
		if itemised[i] != nil {
			left.Sub(left, itemised[i])
		}
		if left.Sign() > 0 {
			m.Discounts = append(m.Discounts, Discount{Line: i, Amount: left.FloatString(2), FundedBy: "shop", Kind: "promotion"})
		}
	}
	shares := false
	for _, p := range partMjz {
		shares = shares || (p != "" && p != "0.00")
	}
	if !shares {
		m.Discounts = append(m.Discounts, orderLevelCoupons...)
		return nil
	}
	kind := "order_promotion"
	if len(orderLevelCoupons) > 0 && orderLevelOther == 0 {
		kind = "coupon"
	}
	for i, p := range partMjz {
		if p != "" && p != "0.00" {
			m.Discounts = append(m.Discounts, Discount{Line: i, Amount: p, FundedBy: "shop", Kind: kind})
		}
	}
	return nil
}
