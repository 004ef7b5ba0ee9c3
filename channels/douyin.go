package channels

import (
	"fmt"
	"strconv"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// douyin is the Douyin shop (抖店): the order detail of order.orderDetail
// (data.shop_order_detail) with its sku_order_list. Amounts are integer
// fen, times epoch seconds, the receiver masked (mask_post_*) or encrypted
// (encrypt_post_*), the buyer doudian_open_id. Pushed with Douyin's
// message-push event-sign, or posted by a connector with X-Ordergrid-Signature.
type douyin struct{}

func init() { register(douyin{}) }

func (douyin) Channel() string { return "douyin" }

func (douyin) Verify(req *Request, conn *Connection) error {
	if sign := req.Header.Get("event-sign"); sign != "" {
		if !equal(sign, SignDouyin(conn.AppKey, conn.Secret, req.Header.Get("sign-method"), req.Body)) {
			return fmt.Errorf("%w: event-sign does not match app key, body and app secret", ErrBadSignature)
		}
		return nil
	}
	return VerifyConnector(req, conn)
}

type douyinName struct {
	Name string `json:"name"`
}

type douyinOrder struct {
	Detail *struct {
		OrderID         ID     `json:"order_id"`
		OrderStatus     ID     `json:"order_status"`
		OrderStatusDesc string `json:"order_status_desc"`
		CreateTime      ID     `json:"create_time"`
		PayTime         ID     `json:"pay_time"`
		OrderAmount     ID     `json:"order_amount"`
		PayAmount       ID     `json:"pay_amount"`
		PostAmount      ID     `json:"post_amount"`
		OpenID          string `json:"doudian_open_id"`
		MaskReceiver    string `json:"mask_post_receiver"`
		MaskTel         string `json:"mask_post_tel"`
		EncryptReceiver string `json:"encrypt_post_receiver"`
		EncryptTel      string `json:"encrypt_post_tel"`
		PostAddr        struct {
			Province      douyinName `json:"province"`
			City          douyinName `json:"city"`
			Town          douyinName `json:"town"`
			Street        douyinName `json:"street"`
			Detail        string     `json:"detail"`
			EncryptDetail string     `json:"encrypt_detail"`
		} `json:"post_addr"`
		BuyerWords string `json:"buyer_words"`
		SkuOrders  []struct {
			OrderID           ID     `json:"order_id"`
			SkuID             ID     `json:"sku_id"`
			Code              string `json:"code"`
			ProductName       string `json:"product_name"`
			ItemNum           ID     `json:"item_num"`
			OriginAmount      ID     `json:"origin_amount"`
			PayAmount         ID     `json:"pay_amount"`
			ShopDiscount      ID     `json:"promotion_shop_amount"`
			PlatformDiscount  ID     `json:"promotion_platform_amount"`
			CouponAmount      ID     `json:"coupon_amount"`
			PlatformCouponAmt ID     `json:"promotion_pay_amount"`
		} `json:"sku_order_list"`
	} `json:"shop_order_detail"`
}

func (douyin) Map(body []byte) (*Mapped, error) {
	var p douyinOrder
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	d := p.Detail
	if d == nil {
		return nil, fieldErr("shop_order_detail", "required")
	}
	if d.OrderID == "" {
		return nil, fieldErr("shop_order_detail.order_id", "required")
	}
	placed, err := EpochSeconds("shop_order_detail.create_time", string(d.CreateTime))
	if err != nil {
		return nil, err
	}
	addr := d.PostAddr
	m := &Mapped{PlacedAt: placed, BuyerID: d.OpenID,
		Province: addr.Province.Name, City: addr.City.Name, District: addr.Town.Name,
		Extra: map[string]string{"order_status": string(d.OrderStatus), "order_status_desc": d.OrderStatusDesc}}
	name, tel, detail := d.MaskReceiver, d.MaskTel, addr.Detail
	if d.EncryptReceiver != "" {
		name, tel, detail = d.EncryptReceiver, d.EncryptTel, addr.EncryptDetail
		m.Ciphertexts = map[string]string{"name": name, "phone": tel, "address_detail": detail}
	}
	m.Masked = Masked(name) || Masked(tel) || Masked(detail)
	req := &pb.CreateOrderRequest{Channel: "douyin", ChannelOrderId: string(d.OrderID), Currency: "CNY",
		DeliveryRegion: ProvinceRegion(addr.Province.Name),
		Customer:       &pb.Customer{Name: name, Phone: tel, Address: joinAddress(addr.Province.Name, addr.City.Name, addr.Town.Name, addr.Street.Name, detail)}}
	for _, f := range [][2]string{{"pay_amount", string(d.PayAmount)}, {"order_amount", string(d.OrderAmount)}, {"post_amount", string(d.PostAmount)}} {
		if f[1] != "" {
			v, err := fen("shop_order_detail."+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if d.PayTime != "" && d.PayTime != "0" {
		if _, err := EpochSeconds("shop_order_detail.pay_time", string(d.PayTime)); err != nil {
			return nil, err
		}
		m.Extra["pay_time"] = string(d.PayTime)
	}
	if len(d.SkuOrders) == 0 {
		return nil, fieldErr("shop_order_detail.sku_order_list", "at least one SKU order")
	}
	for i, s := range d.SkuOrders {
		f := fmt.Sprintf("shop_order_detail.sku_order_list[%d].", i)
		sku := s.Code
		if sku == "" {
			sku = string(s.SkuID)
		}
		if sku == "" {
			return nil, fieldErr(f+"code", "required (or sku_id)")
		}
		qty, err := count(f+"item_num", s.ItemNum)
		if err != nil {
			return nil, err
		}
		origin, err := strconv.ParseInt(string(s.OriginAmount), 10, 64)
		if err != nil || origin < 0 {
			return nil, fieldErr(f+"origin_amount", "%q is not a whole number of fen", s.OriginAmount)
		}
		if origin%qty != 0 {
			return nil, fieldErr(f+"origin_amount", "%d fen does not divide into %d items", origin, qty)
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: Fen(origin / qty)})
		for _, dc := range []struct {
			v              ID
			by, kind, name string
		}{{s.ShopDiscount, "shop", "promotion", "promotion_shop_amount"}, {s.PlatformDiscount, "platform", "promotion", "promotion_platform_amount"}} {
			if dc.v == "" || dc.v == "0" {
				continue
			}
			v, err := fen(f+dc.name, string(dc.v))
			if err != nil {
				return nil, err
			}
			m.Discounts = append(m.Discounts, Discount{Line: i, Amount: v, FundedBy: dc.by, Kind: dc.kind})
		}
		m.Extra[fmt.Sprintf("sku_order_list[%d].order_id", i)] = string(s.OrderID)
	}
	m.Request = req
	return m, nil
}
