package channels

import (
	"cmp"
	"fmt"
	"math/big"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// xiaohongshu is Xiaohongshu (小红书): the order of the order detail API
// (order.getOrderDetail: {success, code, msg, data}, or the bare data
// object) with its skuList. Money is integer fen, times epoch
// milliseconds, the receiver masked, the buyer openId (or userId).
//
// The fields, as the order detail answer documents them (Xiaohongshu ark
// open platform 订单详情; the field list as republished by agiso's
// aldsXhs order detail page, open.agiso.com/document/#/aldsXhs/api/orderDetail):
//
//	skuList[]                    what the buyer bought: skuId, erpcode (商家编码; none for a
//	                             combined SKU), skuQuantity; no price of its own
//	skuList[].skuDetailList[]    its single SKUs (one for an ordinary SKU; each component of a
//	                             combined SKU 组合品, or the single of a multi-pack 多包组): skuId,
//	                             erpCode, quantity, pricePerSku (unit price), paidAmountPerSku,
//	                             taxPerSku, merchantDiscountPerSku, redDiscountPerSku, rawPricePerSku
//	skuList[].totalMerchantDiscount  the line's discounts funded by the merchant (商家承担): shop
//	skuList[].totalRedDiscount       the line's discounts funded by Xiaohongshu (平台承担): platform
//	skuList[].totalTaxAmount         the line's tax (cross-border orders)
//	totalShippingFree            the shipping the buyer pays
//
// A skuList entry with one detail is one line: the entry's code and
// quantity at the detail's pricePerSku. A combined SKU (several details)
// has no code of its own and is priced by its components, so each detail
// is a line of its own (the component's erpCode, its quantity, its
// pricePerSku): what the warehouse ships, priced exactly whatever the
// quantities. The entry's discounts and tax then go to its component lines
// as the details say (merchantDiscountPerSku, redDiscountPerSku, taxPerSku
// times the quantity) when those add up to the entry's totals, else in
// proportion to the lines' value, in whole fen (the remainder fen by fen):
// either way they add up to the entry's totals.
// The order-level totalMerchantDiscount and totalRedDiscount sum the
// lines' and stay in Extra only.
type xiaohongshu struct{}

func init() { register(xiaohongshu{}) }

func (xiaohongshu) Channel() string { return "xiaohongshu" }

func (xiaohongshu) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type xhsOrder struct {
	OrderID               string `json:"orderId"`
	OrderStatus           ID     `json:"orderStatus"`
	CreatedTime           ID     `json:"createdTime"`
	PaidTime              ID     `json:"paidTime"`
	TotalPayAmount        ID     `json:"totalPayAmount"`
	TotalShippingFree     ID     `json:"totalShippingFree"`
	TotalMerchantDiscount ID     `json:"totalMerchantDiscount"`
	TotalRedDiscount      ID     `json:"totalRedDiscount"`
	OpenID                string `json:"openId"`
	UserID                string `json:"userId"`
	ReceiverName          string `json:"receiverName"`
	ReceiverPhone         string `json:"receiverPhone"`
	ReceiverProvince      string `json:"receiverProvinceName"`
	ReceiverCity          string `json:"receiverCityName"`
	ReceiverDistrict      string `json:"receiverDistrictName"`
	ReceiverAddress       string `json:"receiverAddress"`
	SkuList               []struct {
		SkuID            string `json:"skuId"`
		Erpcode          string `json:"erpcode"`
		Quantity         ID     `json:"skuQuantity"`
		TotalPaid        ID     `json:"totalPaidAmount"`
		MerchantDiscount ID     `json:"totalMerchantDiscount"`
		RedDiscount      ID     `json:"totalRedDiscount"`
		TaxAmount        ID     `json:"totalTaxAmount"`
		Details          []struct {
			SkuID            string `json:"skuId"`
			ErpCode          string `json:"erpCode"`
			Quantity         ID     `json:"quantity"`
			PricePerSku      ID     `json:"pricePerSku"`
			MerchantDiscount ID     `json:"merchantDiscountPerSku"`
			RedDiscount      ID     `json:"redDiscountPerSku"`
			Tax              ID     `json:"taxPerSku"`
		} `json:"skuDetailList"`
	} `json:"skuList"`
}

func (xiaohongshu) Map(body []byte) (*Mapped, error) {
	inner, at, err := unwrapXiaohongshu(body)
	if err != nil {
		return nil, err
	}
	var o xhsOrder
	if err := decodeAt(inner, at, &o); err != nil {
		return nil, err
	}
	if at != "" {
		at += "."
	}
	if o.OrderID == "" {
		return nil, fieldErr(at+"orderId", "required")
	}
	created, err := EpochMillis(at+"createdTime", string(o.CreatedTime))
	if err != nil {
		return nil, err
	}
	buyer := o.OpenID
	if buyer == "" {
		buyer = o.UserID
	}
	m := &Mapped{PlacedAt: created, BuyerID: buyer, Province: o.ReceiverProvince, City: o.ReceiverCity, District: o.ReceiverDistrict,
		Masked: Masked(o.ReceiverName) || Masked(o.ReceiverPhone) || Masked(o.ReceiverAddress), Extra: map[string]string{"orderStatus": string(o.OrderStatus)},
		Cancelled: o.OrderStatus == "8" || o.OrderStatus == "9"} // 已关闭, 已取消
	req := &pb.CreateOrderRequest{Channel: "xiaohongshu", ChannelOrderId: o.OrderID, Currency: "CNY", DeliveryRegion: ProvinceRegion(o.ReceiverProvince),
		Customer: &pb.Customer{Name: o.ReceiverName, Phone: o.ReceiverPhone,
			Address: JoinAddress(o.ReceiverProvince, o.ReceiverCity, o.ReceiverDistrict, o.ReceiverAddress)}}
	if o.PaidTime != "" && o.PaidTime != "0" {
		paid, err := EpochMillis(at+"paidTime", string(o.PaidTime))
		if err != nil {
			return nil, err
		}
		m.PaidAt = paid
		m.Extra["paidTime"] = string(o.PaidTime)
	}
	for _, f := range [][2]string{{"totalPayAmount", string(o.TotalPayAmount)}, {"totalShippingFree", string(o.TotalShippingFree)},
		{"totalMerchantDiscount", string(o.TotalMerchantDiscount)}, {"totalRedDiscount", string(o.TotalRedDiscount)}} {
		if f[1] != "" {
			v, err := fen(at+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if v := m.Extra["totalShippingFree"]; v != "" && v != "0.00" {
		m.Charges = append(m.Charges, Charge{Kind: "shipping", Amount: v, Line: -1, Title: "totalShippingFree"})
	}
	if len(o.SkuList) == 0 {
		return nil, fieldErr(at+"skuList", "at least one SKU")
	}
	for i, s := range o.SkuList {
		f := fmt.Sprintf("%sskuList[%d].", at, i)
		qty, err := count(f+"skuQuantity", s.Quantity)
		if err != nil {
			return nil, err
		}
		if len(s.Details) == 0 {
			return nil, fieldErr(f+"skuDetailList", "at least one SKU detail (the unit price is there)")
		}
		first := len(req.Lines)
		var values []int64     // each line's qty × unit price, fen
		perSku := [3][]int64{} // each line's qty × merchant discount, red discount, tax per SKU
		for k, d := range s.Details {
			df := fmt.Sprintf("%sskuDetailList[%d].", f, k)
			if d.PricePerSku == "" {
				return nil, fieldErr(df+"pricePerSku", "required")
			}
			unit, err := fenInt(df+"pricePerSku", string(d.PricePerSku))
			if err != nil {
				return nil, err
			}
			line := &pb.OrderLineInput{Qty: qty, UnitPrice: Fen(unit)}
			if len(s.Details) == 1 {
				line.Sku = cmp.Or(s.Erpcode, d.ErpCode, s.SkuID, d.SkuID)
				if line.Sku == "" {
					return nil, fieldErr(f+"erpcode", "required (or skuId)")
				}
			} else {
				// A component of a combined SKU: its own code and count.
				line.Sku = cmp.Or(d.ErpCode, d.SkuID)
				if line.Sku == "" {
					return nil, fieldErr(df+"erpCode", "required (or skuId)")
				}
				if line.Qty, err = count(df+"quantity", d.Quantity); err != nil {
					return nil, err
				}
			}
			if unit > 0 && line.Qty > 1e15/unit {
				return nil, fieldErr(df+"pricePerSku", "%d fen × %d is beyond any order", unit, line.Qty)
			}
			req.Lines = append(req.Lines, line)
			values = append(values, unit*line.Qty)
			for j, a := range [3][2]string{{"merchantDiscountPerSku", string(d.MerchantDiscount)}, {"redDiscountPerSku", string(d.RedDiscount)},
				{"taxPerSku", string(d.Tax)}} {
				v, err := fenInt(df+a[0], a[1])
				if err != nil {
					return nil, err
				}
				if v > 0 && line.Qty > 1e15/v {
					return nil, fieldErr(df+a[0], "%d fen × %d is beyond any order", v, line.Qty)
				}
				perSku[j] = append(perSku[j], v*line.Qty)
			}
		}
		for j, a := range []struct {
			field, by string
			v         ID
		}{{"totalMerchantDiscount", "shop", s.MerchantDiscount}, {"totalRedDiscount", "platform", s.RedDiscount}, {"totalTaxAmount", "", s.TaxAmount}} {
			total, err := fenInt(f+a.field, string(a.v))
			if err != nil {
				return nil, err
			}
			shares := perSku[j]
			if sum := sumFen(shares); sum != total || len(shares) == 1 {
				shares = shareFen(total, values) // the details do not add up to the line's total: by value
			}
			for k, share := range shares {
				if share == 0 {
					continue
				}
				if a.by == "" {
					m.Charges = append(m.Charges, Charge{Kind: "tax", Amount: Fen(share), Line: first + k, Title: a.field})
				} else {
					m.Discounts = append(m.Discounts, Discount{Line: first + k, Amount: Fen(share), FundedBy: a.by, Kind: "discount"})
				}
			}
		}
		if s.TotalPaid != "" {
			v, err := fen(f+"totalPaidAmount", string(s.TotalPaid))
			if err != nil {
				return nil, err
			}
			m.Extra[fmt.Sprintf("skuList[%d].totalPaidAmount", i)] = v
		}
	}
	m.Request = req
	return m, nil
}

func sumFen(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// shareFen splits total fen among lines in proportion to their values,
// exactly: each line its floor share, then the fen left over one by one to
// the lines in order (never above a line's value while the total is not
// above their sum). One line takes it all.
func shareFen(total int64, values []int64) []int64 {
	out := make([]int64, len(values))
	if total == 0 || len(values) == 0 {
		return out
	}
	if len(values) == 1 {
		out[0] = total
		return out
	}
	sum := new(big.Int)
	for _, v := range values {
		sum.Add(sum, big.NewInt(v))
	}
	left := total
	if sum.Sign() > 0 {
		for i, v := range values {
			share := new(big.Int).Mul(big.NewInt(total), big.NewInt(v))
			out[i] = share.Quo(share, sum).Int64()
			left -= out[i]
		}
	}
	for i := 0; left > 0; i = (i + 1) % len(values) {
		if out[i] < values[i] || sum.Cmp(big.NewInt(total)) < 0 || sum.Sign() == 0 {
			out[i]++
			left--
		}
	}
	return out
}
