package gateway

import (
	"fmt"
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
	return v
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
