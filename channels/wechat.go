package channels

import (
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// wechat is the WeChat Channels shop (视频号小店 / 微信小店): the order of
// the order detail API (/channels/ec/order/get: order.order_detail with
// product_infos, price_info, delivery_info). Amounts are integer fen, times
// epoch seconds, order ids JSON numbers beyond 2^53, the receiver masked,
// the buyer the openid. Pushed with WeChat's message-push signature (query
// signature, timestamp, nonce with the connection's token), or posted by a
// connector with X-Ordergrid-Signature.
type wechat struct{}

func init() { register(wechat{}) }

func (wechat) Channel() string { return "wechat" }

func (wechat) Verify(req *Request, conn *Connection) error {
	if req.Query.Get("signature") != "" {
		return verifyWeChat(req, conn)
	}
	return VerifyConnector(req, conn)
}

type wechatOrder struct {
	Order *struct {
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
		} `json:"order_detail"`
	} `json:"order"`
}

func (wechat) Map(body []byte) (*Mapped, error) {
	var p wechatOrder
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	o := p.Order
	if o == nil {
		return nil, fieldErr("order", "required")
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
		Masked: Masked(a.UserName) || Masked(a.Tel) || Masked(a.Detail), Extra: map[string]string{"status": string(o.Status)}}
	req := &pb.CreateOrderRequest{Channel: "wechat", ChannelOrderId: string(o.OrderID), Currency: "CNY",
		DeliveryRegion: ProvinceRegion(a.Province),
		Customer:       &pb.Customer{Name: a.UserName, Phone: a.Tel, Address: joinAddress(a.Province, a.City, a.County, a.Detail)}}
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
