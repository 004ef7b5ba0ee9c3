package channels

import (
	"fmt"
	"strings"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// shopify is a Shopify store: the orders/create webhook payload, with its
// line_items, shipping_address and customer. Amounts are decimal strings
// in the order's currency, times ISO 8601 with an offset, ids JSON numbers.
// Nothing is masked. Every discount is the shop's own. Signed with
// X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body with the
// webhook secret), or posted by a connector with X-Ordergrid-Signature.
type shopify struct{}

func init() { register(shopify{}) }

func (shopify) Channel() string { return "shopify" }

func (shopify) Verify(req *Request, conn *Connection) error {
	if sig := req.Header.Get("X-Shopify-Hmac-Sha256"); sig != "" {
		if !equal(sig, SignShopify(conn.Secret, req.Body)) {
			return fmt.Errorf("%w: X-Shopify-Hmac-Sha256 does not match the body", ErrBadSignature)
		}
		return nil
	}
	return VerifyConnector(req, conn)
}

type shopifyOrder struct {
	ID              ID     `json:"id"`
	Name            string `json:"name"`
	CreatedAt       string `json:"created_at"`
	Currency        string `json:"currency"`
	FinancialStatus string `json:"financial_status"`
	TotalPrice      string `json:"total_price"`
	SubtotalPrice   string `json:"subtotal_price"`
	TotalDiscounts  string `json:"total_discounts"`
	Customer        *struct {
		ID    ID     `json:"id"`
		Phone string `json:"phone"`
	} `json:"customer"`
	ShippingAddress *struct {
		Name        string `json:"name"`
		Phone       string `json:"phone"`
		Address1    string `json:"address1"`
		Address2    string `json:"address2"`
		City        string `json:"city"`
		Province    string `json:"province"`
		CountryCode string `json:"country_code"`
		Zip         string `json:"zip"`
	} `json:"shipping_address"`
	LineItems []struct {
		ID                  ID     `json:"id"`
		VariantID           ID     `json:"variant_id"`
		SKU                 string `json:"sku"`
		Quantity            ID     `json:"quantity"`
		Price               string `json:"price"`
		DiscountAllocations []struct {
			Amount string `json:"amount"`
		} `json:"discount_allocations"`
	} `json:"line_items"`
}

func (shopify) Map(body []byte) (*Mapped, error) {
	var o shopifyOrder
	if err := decode(body, &o); err != nil {
		return nil, err
	}
	switch {
	case o.ID == "":
		return nil, fieldErr("id", "required")
	case len(o.Currency) != 3:
		return nil, fieldErr("currency", "%q: want an ISO 4217 code", o.Currency)
	case len(o.LineItems) == 0:
		return nil, fieldErr("line_items", "at least one line item")
	}
	created, err := ISOTime("created_at", o.CreatedAt)
	if err != nil {
		return nil, err
	}
	m := &Mapped{PlacedAt: created, Extra: map[string]string{"name": o.Name, "financial_status": o.FinancialStatus}}
	for _, f := range [][2]string{{"total_price", o.TotalPrice}, {"subtotal_price", o.SubtotalPrice}, {"total_discounts", o.TotalDiscounts}} {
		if f[1] != "" {
			v, err := Yuan(f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	req := &pb.CreateOrderRequest{Channel: "shopify", ChannelOrderId: string(o.ID), Currency: strings.ToUpper(o.Currency), Customer: &pb.Customer{}}
	if c := o.Customer; c != nil {
		m.BuyerID = string(c.ID)
		req.Customer.Phone = c.Phone
	}
	if a := o.ShippingAddress; a != nil {
		req.Customer.Name = a.Name
		if a.Phone != "" {
			req.Customer.Phone = a.Phone
		}
		req.Customer.Address = joinAddress(a.Address1, a.Address2, a.City, a.Province, a.Zip, a.CountryCode)
		m.Province, m.City = a.Province, a.City
		req.DeliveryRegion = strings.ToLower(a.CountryCode)
		if r := ProvinceRegion(a.Province); r != "" {
			req.DeliveryRegion = r // a Chinese address: the routing region of its province
		}
	}
	for i, l := range o.LineItems {
		f := fmt.Sprintf("line_items[%d].", i)
		sku := l.SKU
		if sku == "" {
			sku = string(l.VariantID)
		}
		if sku == "" {
			return nil, fieldErr(f+"sku", "required (or variant_id)")
		}
		qty, err := count(f+"quantity", l.Quantity)
		if err != nil {
			return nil, err
		}
		price, err := Yuan(f+"price", l.Price)
		if err != nil {
			return nil, err
		}
		req.Lines = append(req.Lines, &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: price})
		for k, d := range l.DiscountAllocations {
			amount, err := Yuan(fmt.Sprintf("%sdiscount_allocations[%d].amount", f, k), d.Amount)
			if err != nil {
				return nil, err
			}
			if amount != "0.00" {
				m.Discounts = append(m.Discounts, Discount{Line: i, Amount: amount, FundedBy: "shop", Kind: "discount"})
			}
		}
	}
	m.Request = req
	return m, nil
}
