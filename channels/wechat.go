package channels

import (
	"fmt"
	"math"
	"strconv"
	"time"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// wechat is the WeChat Channels shop (视频号小店 / 微信小店): the order of
// the order detail API (/channels/ec/order/get: order.order_detail with
// product_infos, price_info, delivery_info). Amounts are integer fen, times
// epoch seconds, order ids JSON numbers beyond 2^53, the receiver masked,
// the buyer the openid. Pushed in WeChat's encrypted mode (msg_signature
// over token, timestamp, nonce and the encrypted body; the message opened
// with the connection's EncodingAESKey and checked against its appid), in
// plain mode (signature over token, timestamp and nonce only) where the
// connection allows it, or posted by a connector with X-Ordergrid-Signature.
type wechat struct{}

func init() { register(wechat{}) }

func (wechat) Channel() string { return "wechat" }

func (w wechat) Verify(req *Request, conn *Connection) error {
	_, err := w.Open(req, conn)
	return err
}

// wechatWindow bounds how far a signed WeChat push's timestamp may be from
// now: outside it the push is refused, inside it the replay cache refuses
// the same timestamp and nonce a second time.
const wechatWindow = 5 * time.Minute

// Open verifies a push (encrypted, or plain where allowed) and returns its
// message with the timestamp and nonce as the replay key, or a connector's
// post as it came.
func (wechat) Open(req *Request, conn *Connection) (*Opened, error) {
	q := req.Query
	encrypted := q.Has("msg_signature") || q.Has("encrypt_type")
	if !encrypted && !q.Has("signature") {
		if err := VerifyConnector(req, conn); err != nil {
			return nil, err
		}
		return &Opened{Body: req.Body}, nil
	}
	if !encrypted && !conn.AllowPlainPush {
		return nil, fmt.Errorf("%w: the push is in plain mode (its signature does not cover the body); send it encrypted "+
			"(encrypt_type=aes, msg_signature) or set allow_plain_push on the connection", ErrPlainPush)
	}
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if ts == "" || nonce == "" {
		return nil, fmt.Errorf("%w: timestamp and nonce are required query parameters", ErrBadSignature)
	}
	body := req.Body
	if encrypted {
		msg, err := openWeChatPush(req, conn, ts, nonce)
		if err != nil {
			return nil, err
		}
		body = msg
	} else if sig := q.Get("signature"); !equal(sig, SignWeChat(conn.Token, ts, nonce)) {
		return nil, fmt.Errorf("%w: signature does not match token, timestamp and nonce", ErrBadSignature)
	}
	at, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(req.Now.Sub(time.Unix(at, 0)).Seconds()) > wechatWindow.Seconds() {
		return nil, fmt.Errorf("%w: timestamp %s is more than %s from now", ErrBadSignature, ts, wechatWindow)
	}
	return &Opened{Body: body, Replay: &Replay{Field: "nonce", Key: ts + "/" + nonce, Expires: time.Unix(at, 0).Add(wechatWindow)}}, nil
}

// wechatOrder is the order of /channels/ec/order/get ({errcode, errmsg, order}).
type wechatOrder struct {
	OrderID    ID     `json:"order_id"`
	Status     ID     `json:"status"`
	CreateTime ID     `json:"create_time"`
	OpenID     string `json:"openid"`
	Detail     struct {
		Products []struct {
			ProductID ID     `json:"product_id"`
			SkuID     ID     `json:"sku_id"`
			SkuCode   string `json:"sku_code"`
			SkuCnt    ID     `json:"sku_cnt"`
			SalePrice ID     `json:"sale_price"`
			RealPrice ID     `json:"real_price"`
		} `json:"product_infos"`
		Price struct {
			OrderPrice         ID `json:"order_price"`
			Freight            ID `json:"freight"`
			DiscountedPrice    ID `json:"discounted_price"`
			MerchantDiscounted ID `json:"merchant_discounted_price"`
			FinderDiscounted   ID `json:"finder_discounted_price"`
		} `json:"price_info"`
		Delivery struct {
			Address struct {
				UserName string `json:"user_name"`
				Tel      string `json:"tel_number"`
				Province string `json:"province_name"`
				City     string `json:"city_name"`
				County   string `json:"county_name"`
				Detail   string `json:"detail_info"`
			} `json:"address_info"`
		} `json:"delivery_info"`
		Pay struct {
			PayTime ID `json:"pay_time"`
		} `json:"pay_info"`
	} `json:"order_detail"`
}

// wechatPaid are the order statuses after payment: 20 待发货, 21 部分发货,
// 30 待收货, 100 完成 (10 is 待付款, 250 cancelled).
var wechatPaid = map[string]bool{"20": true, "21": true, "30": true, "100": true}

func (wechat) Map(body []byte) (*Mapped, error) {
	inner, at, err := unwrapWeChat(body)
	if err != nil {
		return nil, err
	}
	o := &wechatOrder{}
	if err := decodeAt(inner, at, o); err != nil {
		return nil, err
	}
	if o.OrderID == "" {
		return nil, fieldErr("order.order_id", "required")
	}
	created, err := EpochSeconds("order.create_time", string(o.CreateTime))
	if err != nil {
		return nil, err
	}
	a := o.Detail.Delivery.Address
	m := &Mapped{PlacedAt: created, BuyerID: o.OpenID, Province: a.Province, City: a.City, District: a.County,
		Masked: Masked(a.UserName) || Masked(a.Tel) || Masked(a.Detail), Extra: map[string]string{"status": string(o.Status)},
		Cancelled: o.Status == "200" || o.Status == "250"} // cancelled after after-sales, or unpaid and cancelled
	req := &pb.CreateOrderRequest{Channel: "wechat", ChannelOrderId: string(o.OrderID), Currency: "CNY",
		DeliveryRegion: ProvinceRegion(a.Province),
		Customer:       &pb.Customer{Name: a.UserName, Phone: a.Tel, Address: JoinAddress(a.Province, a.City, a.County, a.Detail)}}
	if pt := string(o.Detail.Pay.PayTime); pt != "" && pt != "0" {
		if m.PaidAt, err = EpochSeconds("order.order_detail.pay_info.pay_time", pt); err != nil {
			return nil, err
		}
	} else if wechatPaid[string(o.Status)] {
		m.PaidAt = created // paid, its time not sent
	}
	pi := o.Detail.Price
	for _, f := range [][2]string{{"order_price", string(pi.OrderPrice)}, {"freight", string(pi.Freight)}} {
		if f[1] != "" {
			v, err := fen("order.order_detail.price_info."+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if v := m.Extra["freight"]; v != "" && v != "0.00" {
		m.Charges = append(m.Charges, Charge{Kind: "shipping", Amount: v, Line: -1, Title: "freight"})
	}
	for _, d := range []struct {
		v        ID
		name, by string
	}{{pi.MerchantDiscounted, "merchant_discounted_price", "shop"}, {pi.FinderDiscounted, "finder_discounted_price", "platform"}} {
		if d.v == "" || d.v == "0" {
			continue
		}
		v, err := fen("order.order_detail.price_info."+d.name, string(d.v))
		if err != nil {
			return nil, err
		}
		m.Discounts = append(m.Discounts, Discount{Line: -1, Amount: v, FundedBy: d.by, Kind: "discount"})
	}
	if len(o.Detail.Products) == 0 {
		return nil, fieldErr("order.order_detail.product_infos", "at least one product")
	}
	for i, pr := range o.Detail.Products {
		f := fmt.Sprintf("order.order_detail.product_infos[%d].", i)
		sku := pr.SkuCode
		if sku == "" {
			sku = string(pr.SkuID)
		}
		if sku == "" {
			return nil, fieldErr(f+"sku_code", "required (or sku_id)")
		}
		qty, err := count(f+"sku_cnt", pr.SkuCnt)
		if err != nil {
			return nil, err
		}
		price, err := fen(f+"sale_price", string(pr.SalePrice))
		if err != nil {
			return nil, err
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
	}
	m.Request = req
	return m, nil
}
