package gateway

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordergrid/ordergrid/lifecycle"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/routing"
)

// Limits bound what one request may carry.
type Limits struct {
	LinesMax int
	QtyMax   int64
	BatchMax int
}

const (
	// idempotencyKeyBytesMax follows common practice (Stripe: 255).
	idempotencyKeyBytesMax = 255
	textBytesMax           = 256
	addressBytesMax        = 1024
	channelFieldsMax       = 256
	// adjustmentsMax bounds an order's discounts, tax and shipping amounts.
	adjustmentsMax = 64
)

var (
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$`)
	pricePattern   = regexp.MustCompile(`^(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?$`)
	currencyRegexp = regexp.MustCompile(`^[A-Z]{3}$`)
	orderIDPattern = regexp.MustCompile(`^o_[0-9a-f]{32}$`)
)

type violations []*pb.FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, &pb.FieldViolation{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (v *violations) text(field, s string, required bool, maxBytes int) {
	switch {
	case s == "" && required:
		v.add(field, "is required")
	case len(s) > maxBytes:
		v.add(field, "is %d bytes, at most %d allowed", len(s), maxBytes)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		v.add(field, "must be UTF-8 text without control characters")
	}
}

func (v *violations) name(field, s string) {
	if s == "" {
		v.add(field, "is required")
	} else if !namePattern.MatchString(s) {
		v.add(field, "must be 1-64 of A-Z a-z 0-9 . _ : - starting with a letter or digit")
	}
}

// validateCreateOrder checks one order; prefix names it inside a batch ("orders[3].").
func validateCreateOrder(r *pb.CreateOrderRequest, lim Limits, prefix string) violations {
	var v violations
	v.name(prefix+"channel", r.Channel)
	v.text(prefix+"channel_order_id", r.ChannelOrderId, r.IdempotencyKey == "", 128)
	v.text(prefix+"idempotency_key", r.IdempotencyKey, false, idempotencyKeyBytesMax)
	if r.Customer == nil {
		v.add(prefix+"customer", "is required")
	} else {
		v.text(prefix+"customer.id", r.Customer.Id, true, 128)
		v.text(prefix+"customer.name", r.Customer.Name, false, textBytesMax)
		v.text(prefix+"customer.phone", r.Customer.Phone, false, textBytesMax) // platforms send encrypted phones
		v.text(prefix+"customer.address", r.Customer.Address, false, addressBytesMax)
		v.text(prefix+"customer.id_number", r.Customer.IdNumber, false, 64)
		v.text(prefix+"customer.email", r.Customer.Email, false, 254)
		if r.Customer.Email != "" && !strings.Contains(r.Customer.Email, "@") {
			v.add(prefix+"customer.email", "must be an e-mail address")
		}
		if r.Customer.Erased || r.Customer.Withheld {
			v.add(prefix+"customer", "erased and withheld are set in answers only")
		}
	}
	if !currencyRegexp.MatchString(r.Currency) {
		v.add(prefix+"currency", "must be an ISO 4217 code such as CNY")
	}
	if r.DeliveryRegion != "" {
		v.name(prefix+"delivery_region", r.DeliveryRegion)
	}
	if r.CustomerTier != "" {
		v.name(prefix+"customer_tier", r.CustomerTier)
	}
	if r.PayerRegion != "" {
		v.name(prefix+"payer_region", r.PayerRegion)
	}
	v.text(prefix+"device_id", r.DeviceId, false, 256)
	if r.PromisedBy != "" {
		if _, err := time.Parse(time.RFC3339, r.PromisedBy); err != nil {
			v.add(prefix+"promised_by", "must be an RFC 3339 time such as 2026-11-12T18:00:00+08:00")
		}
	}
	if len(r.RequiredCapabilities) > routing.CapabilitiesMax {
		v.add(prefix+"required_capabilities", "has %d, at most %d allowed", len(r.RequiredCapabilities), routing.CapabilitiesMax)
	} else {
		for i, c := range r.RequiredCapabilities {
			v.name(fmt.Sprintf("%srequired_capabilities[%d]", prefix, i), c)
		}
	}
	if len(r.ChannelFields) > channelFieldsMax {
		v.add(prefix+"channel_fields", "has %d fields, at most %d allowed", len(r.ChannelFields), channelFieldsMax)
	}
	for k, val := range r.ChannelFields {
		if k == "" || len(k) > 128 {
			v.add(prefix+"channel_fields", "a field name must be 1-128 bytes")
		}
		v.text(prefix+"channel_fields."+k, val, false, 1024)
	}
	before := len(v)
	switch {
	case len(r.Lines) == 0:
		v.add(prefix+"lines", "must have at least one line")
	case len(r.Lines) > lim.LinesMax:
		v.add(prefix+"lines", "has %d lines, at most %d allowed", len(r.Lines), lim.LinesMax)
	default:
		for i, l := range r.Lines {
			f := fmt.Sprintf("%slines[%d].", prefix, i)
			if l == nil {
				v.add(f[:len(f)-1], "must be an object")
				continue
			}
			v.name(f+"sku", l.Sku)
			if l.Qty <= 0 || l.Qty > lim.QtyMax {
				v.add(f+"qty", "must be 1..%d, got %d", lim.QtyMax, l.Qty)
			}
			if !pricePattern.MatchString(l.UnitPrice) {
				v.add(f+"unit_price", "must be a decimal string such as \"19.90\" (up to 15 digits, 6 decimals)")
			}
		}
	}
	v.adjustments(r, prefix, len(v) == before)
	return v
}

// adjustments checks an order's discounts, tax and shipping: a known kind,
// a non-negative decimal amount, a line the order has (1-based, 0 the
// whole order), who funds a discount, and (when the lines are valid, so
// their amounts are known) no discount above what it reduces: a line's
// discounts not above the line's amount, all of them not above the lines
// and the shipping together.
func (v *violations) adjustments(r *pb.CreateOrderRequest, prefix string, linesValid bool) {
	if len(r.Adjustments) > adjustmentsMax {
		v.add(prefix+"adjustments", "has %d, at most %d allowed", len(r.Adjustments), adjustmentsMax)
		return
	}
	lineAmount := make([]*big.Rat, len(r.Lines))
	limit := new(big.Rat) // what discounts may reduce: the lines and the shipping
	if linesValid {
		for i, l := range r.Lines {
			p, _ := new(big.Rat).SetString(l.UnitPrice)
			lineAmount[i] = p.Mul(p, new(big.Rat).SetInt64(l.Qty))
			limit.Add(limit, lineAmount[i])
		}
	}
	discounted := make([]*big.Rat, len(r.Lines)+1) // by line, 0 the order
	all := new(big.Rat)
	ok := linesValid
	for i, a := range r.Adjustments {
		f := fmt.Sprintf("%sadjustments[%d].", prefix, i)
		if a == nil {
			v.add(f[:len(f)-1], "must be an object")
			ok = false
			continue
		}
		switch a.Kind {
		case "discount":
			if a.FundedBy != "shop" && a.FundedBy != "platform" {
				v.add(f+"funded_by", "a discount must say who funds it: shop or platform")
			}
		case "tax", "shipping":
			if a.FundedBy != "" {
				v.add(f+"funded_by", "only a discount is funded; leave it empty for %s", a.Kind)
			}
		default:
			v.add(f+"kind", "must be discount, tax or shipping")
			ok = false
		}
		amount, parsed := new(big.Rat), pricePattern.MatchString(a.Amount)
		if parsed {
			amount.SetString(a.Amount)
		} else {
			v.add(f+"amount", "must be a non-negative decimal string such as \"5.00\" (up to 15 digits, 6 decimals)")
			ok = false
		}
		if a.Line < 0 || int(a.Line) > len(r.Lines) {
			v.add(f+"line", "must be a line of the order (1..%d) or 0 for the whole order, got %d", len(r.Lines), a.Line)
			ok = false
		}
		v.text(f+"detail", a.Detail, false, 128)
		if !ok || !parsed {
			continue
		}
		switch a.Kind {
		case "shipping":
			limit.Add(limit, amount)
		case "discount":
			all.Add(all, amount)
			if a.Line > 0 {
				if discounted[a.Line] == nil {
					discounted[a.Line] = new(big.Rat)
				}
				discounted[a.Line].Add(discounted[a.Line], amount)
				if discounted[a.Line].Cmp(lineAmount[a.Line-1]) > 0 {
					v.add(f+"amount", "the discounts on line %d come to %s, more than the line's %s", a.Line,
						discounted[a.Line].FloatString(2), lineAmount[a.Line-1].FloatString(2))
					discounted[a.Line].Sub(discounted[a.Line], amount)
				}
			}
		}
	}
	if ok && all.Cmp(limit) > 0 {
		v.add(prefix+"adjustments", "the discounts come to %s, more than the lines and the shipping (%s)", all.FloatString(2), limit.FloatString(2))
	}
}

func validateEvent(r *pb.OrderEventRequest) violations {
	var v violations
	if !lifecycle.IsEventType(r.Type) {
		v.add("type", "must be one of %s", strings.Join(lifecycle.EventTypes(), ", "))
	}
	if r.Type == lifecycle.StatusShipped {
		v.text("carrier", r.Carrier, true, 64)
		v.text("tracking_number", r.TrackingNumber, true, 128)
	} else {
		v.text("carrier", r.Carrier, false, 64)
		v.text("tracking_number", r.TrackingNumber, false, 128)
	}
	v.text("reason", r.Reason, false, textBytesMax)
	return v
}

func validOrderID(id string) bool { return orderIDPattern.MatchString(id) }
