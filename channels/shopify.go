package channels

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// shopify is a Shopify store: the orders/create webhook payload (the REST
// Order resource; {"order": …} as the REST API answers is taken too), with
// its line_items, shipping_lines, shipping_address and customer. Amounts
// are decimal strings in the order's currency, times ISO 8601 with an
// offset, ids JSON numbers. Nothing is masked. Every discount is the shop's
// own. Signed with X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw
// body with the webhook secret), or posted by a connector with
// X-Ordergrid-Signature.
//
// Money besides the lines (the REST Order resource's fields, shopify.dev
// docs/api/admin-rest Order; DiscountApplication in the GraphQL reference,
// shopify.dev/docs/api/admin-graphql/latest/interfaces/DiscountApplication):
//
//	discount_applications[]              why a discount was given: type (discount_code, manual,
//	                                     script, automatic), title or code, value, value_type
//	                                     (fixed_amount, percentage), target_type (line_item,
//	                                     shipping_line), allocation_method, target_selection
//	line_items[].discount_allocations[]  the amount a line got: amount and
//	                                     discount_application_index into discount_applications;
//	                                     the discount's kind is its application's type
//	shipping_lines[]                     title, price (before discounts), discounted_price,
//	                                     tax_lines, discount_allocations (a shipping discount)
//	line_items[].tax_lines[], shipping_lines[].tax_lines[]
//	                                     title, price, rate: each a tax charge on its line (or the order)
//	tax_lines[], total_tax               the order's taxes, the sum of the above: used only when no
//	                                     line or shipping line carries its own
//	taxes_included                       true: the prices already hold the tax, so it is not
//	                                     charged again (total_tax stays in Extra)
//
// A shipping line's discount without discount_allocations is the
// difference of its price and discounted_price.
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

type shopifyMoney struct {
	Title string `json:"title"`
	Price string `json:"price"`
}

type shopifyAllocation struct {
	Amount string `json:"amount"`
	Index  *ID    `json:"discount_application_index"`
}

type shopifyOrder struct {
	ID              ID     `json:"id"`
	Name            string `json:"name"`
	CreatedAt       string `json:"created_at"`
	Currency        string `json:"currency"`
	FinancialStatus string `json:"financial_status"`
	ProcessedAt     string `json:"processed_at"`
	CancelledAt     string `json:"cancelled_at"`
	TotalPrice      string `json:"total_price"`
	SubtotalPrice   string `json:"subtotal_price"`
	TotalDiscounts  string `json:"total_discounts"`
	TotalTax        string `json:"total_tax"`
	TaxesIncluded   bool   `json:"taxes_included"`
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
		ID                  ID                  `json:"id"`
		VariantID           ID                  `json:"variant_id"`
		SKU                 string              `json:"sku"`
		Quantity            ID                  `json:"quantity"`
		Price               string              `json:"price"`
		DiscountAllocations []shopifyAllocation `json:"discount_allocations"`
		TaxLines            []shopifyMoney      `json:"tax_lines"`
	} `json:"line_items"`
	ShippingLines []struct {
		Title               string              `json:"title"`
		Price               string              `json:"price"`
		DiscountedPrice     string              `json:"discounted_price"`
		DiscountAllocations []shopifyAllocation `json:"discount_allocations"`
		TaxLines            []shopifyMoney      `json:"tax_lines"`
	} `json:"shipping_lines"`
	TaxLines             []shopifyMoney `json:"tax_lines"`
	DiscountApplications []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Code       string `json:"code"`
		ValueType  string `json:"value_type"`
		TargetType string `json:"target_type"`
	} `json:"discount_applications"`
}

func (shopify) Map(body []byte) (*Mapped, error) {
	var wrapped struct {
		Order json.RawMessage `json:"order"`
	}
	if err := decode(body, &wrapped); err != nil {
		return nil, err
	}
	var o shopifyOrder
	at := ""
	if present(wrapped.Order) {
		body, at = wrapped.Order, "order"
	}
	if err := decodeAt(body, at, &o); err != nil {
		return nil, err
	}
	if at != "" {
		at += "."
	}
	switch {
	case o.ID == "":
		return nil, fieldErr(at+"id", "required")
	case len(o.Currency) != 3:
		return nil, fieldErr(at+"currency", "%q: want an ISO 4217 code", o.Currency)
	case len(o.LineItems) == 0:
		return nil, fieldErr(at+"line_items", "at least one line item")
	}
	created, err := ISOTime(at+"created_at", o.CreatedAt)
	if err != nil {
		return nil, err
	}
	m := &Mapped{PlacedAt: created, Extra: map[string]string{"name": o.Name, "financial_status": o.FinancialStatus}}
	m.Cancelled = o.CancelledAt != ""
	if o.FinancialStatus == "paid" {
		m.PaidAt = created
		if o.ProcessedAt != "" {
			if m.PaidAt, err = ISOTime(at+"processed_at", o.ProcessedAt); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range [][2]string{{"total_price", o.TotalPrice}, {"subtotal_price", o.SubtotalPrice}, {"total_discounts", o.TotalDiscounts},
		{"total_tax", o.TotalTax}} {
		if f[1] != "" {
			v, err := Yuan(at+f[0], f[1])
			if err != nil {
				return nil, err
			}
			m.Extra[f[0]] = v
		}
	}
	if o.TaxesIncluded {
		m.Extra["taxes_included"] = "true"
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
		req.Customer.Address = JoinAddress(a.Address1, a.Address2, a.City, a.Province, a.Zip, a.CountryCode)
		if strings.EqualFold(a.CountryCode, "CN") {
			// A Chinese address reads from the province down (the address
			// checks and the couriers read it so).
			req.Customer.Address = JoinAddress(a.Province, a.City, a.Address1, a.Address2, a.Zip)
		}
		m.Province, m.City = a.Province, a.City
		req.DeliveryRegion = strings.ToLower(a.CountryCode)
		if r := ProvinceRegion(a.Province); r != "" {
			req.DeliveryRegion = r // a Chinese address: the routing region of its province
		}
	}
	// discount records a line's (or, line -1, a shipping line's) allocations
	// as discounts of their applications' kinds.
	discount := func(f string, line int, allocs []shopifyAllocation) error {
		for k, d := range allocs {
			af := fmt.Sprintf("%sdiscount_allocations[%d].", f, k)
			amount, err := Yuan(af+"amount", d.Amount)
			if err != nil {
				return err
			}
			kind := "discount"
			if d.Index != nil {
				i, err := strconv.Atoi(string(*d.Index))
				if err != nil || i < 0 || i >= len(o.DiscountApplications) {
					return fieldErr(af+"discount_application_index", "%s is not an index into discount_applications (%d of them)", *d.Index, len(o.DiscountApplications))
				}
				kind = cmp.Or(o.DiscountApplications[i].Type, kind)
			}
			if amount != "0.00" {
				m.Discounts = append(m.Discounts, Discount{Line: line, Amount: amount, FundedBy: "shop", Kind: kind})
			}
		}
		return nil
	}
	// tax records tax lines as tax charges, unless the prices include them.
	taxed := false
	tax := func(f string, line int, lines []shopifyMoney) error {
		for k, t := range lines {
			amount, err := Yuan(fmt.Sprintf("%stax_lines[%d].price", f, k), t.Price)
			if err != nil {
				return err
			}
			taxed = true
			if amount != "0.00" && !o.TaxesIncluded {
				m.Charges = append(m.Charges, Charge{Kind: "tax", Amount: amount, Line: line, Title: t.Title})
			}
		}
		return nil
	}
	for i, l := range o.LineItems {
		f := fmt.Sprintf("%sline_items[%d].", at, i)
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
		if err := discount(f, i, l.DiscountAllocations); err != nil {
			return nil, err
		}
		if err := tax(f, i, l.TaxLines); err != nil {
			return nil, err
		}
	}
	for i, s := range o.ShippingLines {
		f := fmt.Sprintf("%sshipping_lines[%d].", at, i)
		price, err := Yuan(f+"price", s.Price)
		if err != nil {
			return nil, err
		}
		if price != "0.00" {
			m.Charges = append(m.Charges, Charge{Kind: "shipping", Amount: price, Line: -1, Title: s.Title})
		}
		if len(s.DiscountAllocations) > 0 {
			if err := discount(f, -1, s.DiscountAllocations); err != nil {
				return nil, err
			}
		} else if s.DiscountedPrice != "" {
			discounted, err := Yuan(f+"discounted_price", s.DiscountedPrice)
			if err != nil {
				return nil, err
			}
			p, _ := new(big.Rat).SetString(price)
			d, _ := new(big.Rat).SetString(discounted)
			if p.Sub(p, d).Sign() > 0 {
				m.Discounts = append(m.Discounts, Discount{Line: -1, Amount: p.FloatString(2), FundedBy: "shop", Kind: "shipping"})
			}
		}
		if err := tax(f, -1, s.TaxLines); err != nil {
			return nil, err
		}
	}
	if !taxed {
		// Only the order's own tax lines (or, without them, total_tax).
		if err := tax(at, -1, o.TaxLines); err != nil {
			return nil, err
		}
		if v := m.Extra["total_tax"]; !taxed && v != "" && v != "0.00" && !o.TaxesIncluded {
			m.Charges = append(m.Charges, Charge{Kind: "tax", Amount: v, Line: -1, Title: "total_tax"})
		}
	}
	m.Request = req
	return m, nil
}
