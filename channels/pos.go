package channels

import (
	"cmp"
	"fmt"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// pos is a store point-of-sale system posting its sales through a
// connector, in ordergrid's own format (there is no platform to model):
//
//	store_id      string, required: the store ("SH-001")
//	receipt_no    string, required: the receipt; the channel order id is store_id/receipt_no
//	device_id     string: the till (a raw field only: a till is shared by every buyer,
//	              so it is no customer fingerprint)
//	sold_at       ISO 8601 with an offset, required
//	currency      ISO 4217, required
//	store_region  the routing region of the store, for a sale without delivery
//	member        optional {id, phone, name}: the loyalty member, unmasked; id is the buyer id
//	delivery      optional {province, city, district, address}: home delivery
//	lines         [{sku, qty, price}], required; price a decimal string per unit
//	discounts     [{line (-1: the sale), amount (decimal), kind}], all funded by the shop
//
// Signed with the connector HMAC (X-Ordergrid-Signature).
type pos struct{}

func init() { register(pos{}) }

func (pos) Channel() string { return "pos" }

func (pos) Verify(req *Request, conn *Connection) error { return VerifyConnector(req, conn) }

type posSale struct {
	StoreID     string `json:"store_id"`
	ReceiptNo   string `json:"receipt_no"`
	DeviceID    string `json:"device_id"`
	SoldAt      string `json:"sold_at"`
	Currency    string `json:"currency"`
	StoreRegion string `json:"store_region"`
	Member      *struct {
		ID    ID     `json:"id"`
		Phone string `json:"phone"`
		Name  string `json:"name"`
	} `json:"member"`
	Delivery *struct {
		Province string `json:"province"`
		City     string `json:"city"`
		District string `json:"district"`
		Address  string `json:"address"`
	} `json:"delivery"`
	Lines []struct {
		SKU   string `json:"sku"`
		Qty   ID     `json:"qty"`
		Price string `json:"price"`
	} `json:"lines"`
	Discounts []struct {
		Line   *int   `json:"line"`
		Amount string `json:"amount"`
		Kind   string `json:"kind"`
	} `json:"discounts"`
}

func (pos) Map(body []byte) (*Mapped, error) {
	var s posSale
	if err := decode(body, &s); err != nil {
		return nil, err
	}
	switch {
	case s.StoreID == "":
		return nil, fieldErr("store_id", "required")
	case s.ReceiptNo == "":
		return nil, fieldErr("receipt_no", "required")
	case len(s.Currency) != 3:
		return nil, fieldErr("currency", "%q: want an ISO 4217 code such as CNY", s.Currency)
	case len(s.Lines) == 0:
		return nil, fieldErr("lines", "at least one line")
	}
	sold, err := ISOTime("sold_at", s.SoldAt)
	if err != nil {
		return nil, err
	}
	// A sale at the till is paid there.
	m := &Mapped{PlacedAt: sold, PaidAt: sold, Extra: map[string]string{"store_id": s.StoreID, "receipt_no": s.ReceiptNo}}
	if s.DeviceID != "" {
		m.Extra["device_id"] = s.DeviceID
	}
	req := &pb.CreateOrderRequest{Channel: "pos", ChannelOrderId: s.StoreID + "/" + s.ReceiptNo, Currency: s.Currency,
		DeliveryRegion: s.StoreRegion, Customer: &pb.Customer{}}
	if mb := s.Member; mb != nil {
		m.BuyerID = string(mb.ID)
		req.Customer.Name, req.Customer.Phone = mb.Name, mb.Phone
	}
	if d := s.Delivery; d != nil {
		m.Province, m.City, m.District = d.Province, d.City, d.District
		req.Customer.Address = JoinAddress(d.Province, d.City, d.District, d.Address)
		if r := ProvinceRegion(d.Province); r != "" {
			req.DeliveryRegion = r
		}
	}
	for i, l := range s.Lines {
		f := fmt.Sprintf("lines[%d].", i)
		if l.SKU == "" {
			return nil, fieldErr(f+"sku", "required")
		}
		qty, err := count(f+"qty", l.Qty)
		if err != nil {
			return nil, err
		}
		price, err := Yuan(f+"price", l.Price)
		if err != nil {
			return nil, err
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: l.SKU, Qty: qty, UnitPrice: price})
	}
	for i, d := range s.Discounts {
		f := fmt.Sprintf("discounts[%d].", i)
		line := -1
		if d.Line != nil {
			line = *d.Line
		}
		if line < -1 || line >= len(s.Lines) {
			return nil, fieldErr(f+"line", "%d is not -1 (the sale) or a line index", line)
		}
		amount, err := Yuan(f+"amount", d.Amount)
		if err != nil {
			return nil, err
		}
		m.Discounts = append(m.Discounts, Discount{Line: line, Amount: amount, FundedBy: "shop", Kind: cmp.Or(d.Kind, "discount")})
	}
	m.Request = req
	return m, nil
}
