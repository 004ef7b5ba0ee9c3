package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// The hot path's JSON, written by hand: new orders, batches of them and
// order events are read with jsonIn (no reflection, strings copied once
// out of a pooled body buffer), and orders are written by appendOrder into
// a pooled buffer, byte for byte what encoding/json writes for orderV.

// decodeOrder reads a CreateOrderRequest body.
func decodeOrder(raw []byte, dst *pb.CreateOrderRequest) *Problem {
	r := jsonIn{b: raw}
	if r.peek() != '{' {
		r.wrong("an object")
		return r.err
	}
	if !r.order(dst) || !r.end() {
		return r.err
	}
	return nil
}

// decodeBatch reads a BatchCreateOrdersRequest body. An order of the wrong
// shape (a wrong type, an unknown field, a duplicate key, invalid UTF-8)
// gets its own problem, in bad at its index (its place in dst.Orders holds
// an empty order), and does not fail the others; malformed JSON fails the
// whole body.
func decodeBatch(raw []byte, dst *pb.BatchCreateOrdersRequest) (bad map[int]*Problem, p *Problem) {
	r := jsonIn{b: raw}
	if p := r.batch(dst, &bad); p != nil {
		return nil, p
	}
	return bad, nil
}

func (r *jsonIn) batch(dst *pb.BatchCreateOrdersRequest, bad *map[int]*Problem) *Problem {
	if r.peek() != '{' {
		r.wrong("an object")
		return r.err
	}
	r.begin('{')
	var seen uint32
	for first := true; r.next('}', first); first = false {
		k, ok := r.key()
		if !ok {
			return r.err
		}
		if string(k) != "orders" {
			r.unknown(k)
			return r.err
		}
		if !r.seen(&seen, 1, "orders") {
			return r.err
		}
		r.push("orders")
		isNull, ok := r.begin('[')
		if !ok {
			return r.err
		}
		if !isNull {
			for first := true; r.next(']', first); first = false {
				depth := r.path.Depth()
				r.pushIndex(len(dst.Orders))
				start := r.peek()
				at := r.i
				o := &pb.CreateOrderRequest{}
				if start != '{' {
					r.wrong("an object")
				} else {
					r.order(o)
				}
				if r.err != nil {
					if r.syntactic {
						return r.err
					}
					// This order alone is refused: go on after it.
					if *bad == nil {
						*bad = map[int]*Problem{}
					}
					(*bad)[len(dst.Orders)] = r.err
					r.err, r.i = nil, at
					r.path.Truncate(depth + 1)
					if !r.skip(0) {
						return r.err
					}
					o = &pb.CreateOrderRequest{}
				}
				r.pop()
				dst.Orders = append(dst.Orders, o)
			}
			if r.err != nil {
				return r.err
			}
		}
		r.pop()
	}
	if r.err != nil || !r.end() {
		return r.err
	}
	return nil
}

// decodeEvent reads an OrderEventRequest body.
func decodeEvent(raw []byte, dst *pb.OrderEventRequest) *Problem {
	r := jsonIn{b: raw}
	if r.peek() != '{' {
		r.wrong("an object")
		return r.err
	}
	r.begin('{')
	var seen uint32
	for first := true; r.next('}', first); first = false {
		k, ok := r.key()
		if !ok {
			return r.err
		}
		var to *string
		var bit uint32
		var name string
		switch string(k) {
		case "id":
			to, bit, name = &dst.Id, 1, "id"
		case "type":
			to, bit, name = &dst.Type, 2, "type"
		case "carrier":
			to, bit, name = &dst.Carrier, 4, "carrier"
		case "tracking_number":
			to, bit, name = &dst.TrackingNumber, 8, "tracking_number"
		case "reason":
			to, bit, name = &dst.Reason, 16, "reason"
		default:
			r.unknown(k)
			return r.err
		}
		if !r.seen(&seen, bit, name) {
			return r.err
		}
		r.push(name)
		if !r.str(to) {
			return r.err
		}
		r.pop()
	}
	if r.err != nil || !r.end() {
		return r.err
	}
	return nil
}

// Member bits of an order object, for duplicate keys.
const (
	orderChannel uint32 = 1 << iota
	orderChannelOrderID
	orderCustomer
	orderLines
	orderCurrency
	orderIdempotencyKey
	orderDeliveryRegion
	orderCustomerTier
	orderPromisedBy
	orderCapabilities
	orderChannelFields
	orderAdjustments
	orderDeviceID
	orderPayerRegion
)

// order reads an order object (the caller checked it is one).
func (r *jsonIn) order(dst *pb.CreateOrderRequest) bool {
	r.begin('{')
	var seen uint32
	for first := true; r.next('}', first); first = false {
		k, ok := r.key()
		if !ok {
			return false
		}
		var to *string
		var bit uint32
		var name string
		switch string(k) {
		case "channel":
			to, bit, name = &dst.Channel, orderChannel, "channel"
		case "channel_order_id":
			to, bit, name = &dst.ChannelOrderId, orderChannelOrderID, "channel_order_id"
		case "currency":
			to, bit, name = &dst.Currency, orderCurrency, "currency"
		case "idempotency_key":
			to, bit, name = &dst.IdempotencyKey, orderIdempotencyKey, "idempotency_key"
		case "delivery_region":
			to, bit, name = &dst.DeliveryRegion, orderDeliveryRegion, "delivery_region"
		case "device_id":
			to, bit, name = &dst.DeviceId, orderDeviceID, "device_id"
		case "payer_region":
			to, bit, name = &dst.PayerRegion, orderPayerRegion, "payer_region"
		case "customer_tier":
			to, bit, name = &dst.CustomerTier, orderCustomerTier, "customer_tier"
		case "promised_by":
			to, bit, name = &dst.PromisedBy, orderPromisedBy, "promised_by"
		case "customer":
			bit, name = orderCustomer, "customer"
		case "lines":
			bit, name = orderLines, "lines"
		case "required_capabilities":
			bit, name = orderCapabilities, "required_capabilities"
		case "channel_fields":
			bit, name = orderChannelFields, "channel_fields"
		case "adjustments":
			bit, name = orderAdjustments, "adjustments"
		default:
			return r.unknown(k)
		}
		if !r.seen(&seen, bit, name) {
			return false
		}
		r.push(name)
		switch {
		case to != nil:
			ok = r.str(to)
		case bit == orderCustomer:
			ok = r.customer(&dst.Customer)
		case bit == orderLines:
			ok = r.lines(&dst.Lines)
		case bit == orderCapabilities:
			ok = r.stringList(&dst.RequiredCapabilities)
		case bit == orderAdjustments:
			ok = r.adjustments(&dst.Adjustments)
		default:
			ok = r.stringMap(&dst.ChannelFields)
		}
		if !ok {
			return false
		}
		r.pop()
	}
	return r.err == nil
}

// customer reads an order's customer (null: none).
func (r *jsonIn) customer(dst **pb.Customer) bool {
	isNull, ok := r.begin('{')
	if !ok || isNull {
		return ok
	}
	c := &pb.Customer{}
	*dst = c
	var seen uint32
	for first := true; r.next('}', first); first = false {
		k, ok := r.key()
		if !ok {
			return false
		}
		var to *string
		var flag *bool
		var bit uint32
		var name string
		switch string(k) {
		case "id":
			to, bit, name = &c.Id, 1, "id"
		case "name":
			to, bit, name = &c.Name, 2, "name"
		case "phone":
			to, bit, name = &c.Phone, 4, "phone"
		case "address":
			to, bit, name = &c.Address, 8, "address"
		case "id_number":
			to, bit, name = &c.IdNumber, 16, "id_number"
		case "email":
			to, bit, name = &c.Email, 32, "email"
		case "erased":
			flag, bit, name = &c.Erased, 64, "erased"
		case "withheld":
			flag, bit, name = &c.Withheld, 128, "withheld"
		default:
			return r.unknown(k)
		}
		if !r.seen(&seen, bit, name) {
			return false
		}
		r.push(name)
		if to != nil {
			ok = r.str(to)
		} else {
			ok = r.boolean(flag)
		}
		if !ok {
			return false
		}
		r.pop()
	}
	return r.err == nil
}

// lines reads an order's lines.
func (r *jsonIn) lines(dst *[]*pb.OrderLineInput) bool {
	isNull, ok := r.begin('[')
	if !ok || isNull {
		return ok
	}
	for first := true; r.next(']', first); first = false {
		r.pushIndex(len(*dst))
		if r.peek() != '{' {
			return r.wrong("an object")
		}
		r.begin('{')
		l := &pb.OrderLineInput{}
		var seen uint32
		for first := true; r.next('}', first); first = false {
			k, ok := r.key()
			if !ok {
				return false
			}
			switch string(k) {
			case "sku":
				ok = r.seen(&seen, 1, "sku")
				r.push("sku")
				ok = ok && r.str(&l.Sku)
			case "qty":
				ok = r.seen(&seen, 2, "qty")
				r.push("qty")
				ok = ok && r.int64(&l.Qty)
			case "unit_price":
				ok = r.seen(&seen, 4, "unit_price")
				r.push("unit_price")
				ok = ok && r.str(&l.UnitPrice)
			default:
				return r.unknown(k)
			}
			if !ok {
				return false
			}
			r.pop()
		}
		if r.err != nil {
			return false
		}
		r.pop()
		*dst = append(*dst, l)
	}
	return r.err == nil
}

// adjustments reads an order's adjustments.
func (r *jsonIn) adjustments(dst *[]*pb.Adjustment) bool {
	isNull, ok := r.begin('[')
	if !ok || isNull {
		return ok
	}
	for first := true; r.next(']', first); first = false {
		r.pushIndex(len(*dst))
		if r.peek() != '{' {
			return r.wrong("an object")
		}
		r.begin('{')
		a := &pb.Adjustment{}
		var seen uint32
		for first := true; r.next('}', first); first = false {
			k, ok := r.key()
			if !ok {
				return false
			}
			var to *string
			var bit uint32
			name := string(k)
			switch name {
			case "kind":
				to, bit = &a.Kind, 1
			case "amount":
				to, bit = &a.Amount, 2
			case "line":
				bit = 4
			case "funded_by":
				to, bit = &a.FundedBy, 8
			case "detail":
				to, bit = &a.Detail, 16
			default:
				return r.unknown(k)
			}
			if !r.seen(&seen, bit, name) {
				return false
			}
			r.push(name)
			if to != nil {
				ok = r.str(to)
			} else {
				ok = r.int32(&a.Line)
			}
			if !ok {
				return false
			}
			r.pop()
		}
		if r.err != nil {
			return false
		}
		r.pop()
		*dst = append(*dst, a)
	}
	return r.err == nil
}

// ---- pooled buffers ----

// bodyPool holds request body buffers; bodies larger than bodyPooledMax
// bytes are not kept.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const bodyPooledMax = 1 << 20

// readPooledBody reads a JSON body of at most limit bytes into a pooled
// buffer; done gives it back (after which raw must not be used).
func (g *Gateway) readPooledBody(w http.ResponseWriter, r *http.Request, limit int64) (raw []byte, done func(), p *Problem) {
	bp := bodyPool.Get().(*[]byte)
	done = func() {
		if cap(*bp) <= bodyPooledMax {
			*bp = (*bp)[:0]
			bodyPool.Put(bp)
		}
	}
	raw, p = g.jsonBodyInto(w, r, limit, (*bp)[:0])
	if raw != nil {
		*bp = raw
	}
	return raw, done, p
}

// outPool holds answer buffers.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// writeOrder writes an order as the JSON answer, from a pooled buffer.
func writeOrder(w http.ResponseWriter, code int, o *pb.Order) {
	writePooled(w, code, func(b []byte) []byte { return append(appendOrder(b, o), '\n') })
}

// writeBatch writes a batch's answer, from a pooled buffer: what
// encoding/json writes for batchJSON.
func writeBatch(w http.ResponseWriter, resp *pb.BatchCreateOrdersResponse) {
	writePooled(w, http.StatusOK, func(b []byte) []byte { return appendBatch(b, resp) })
}

// writePooled writes the JSON answer that appendTo appends, through a
// buffer of outPool (kept unless it grew past bodyPooledMax).
func writePooled(w http.ResponseWriter, code int, appendTo func([]byte) []byte) {
	bp := outPool.Get().(*[]byte)
	buf := appendTo((*bp)[:0])
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf)
	if cap(buf) <= bodyPooledMax {
		*bp = buf[:0]
		outPool.Put(bp)
	}
}

// appendBatch appends a batch's answer and a newline.
func appendBatch(b []byte, resp *pb.BatchCreateOrdersResponse) []byte {
	b = append(b, `{"results":[`...)
	for i, res := range resp.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(res.Status), 10)
		if res.Order != nil {
			b = append(b, `,"order":`...)
			b = appendOrder(b, res.Order)
		}
		if res.Problem != nil {
			pj, err := json.Marshal(problemProtoJSON(res.Problem))
			if err != nil {
				panic(fmt.Sprintf("gateway: encoding a problem: %v", err)) // strings and ints only
			}
			b = append(b, `,"problem":`...)
			b = append(b, pj...)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// readAllInto reads r to its end, appending to buf.
func readAllInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(512, cap(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// ---- the order answer ----

// appendOrder appends o as encoding/json writes orderJSON(o): the same
// members in the same order, the same omissions, the same escaping.
func appendOrder(b []byte, o *pb.Order) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, o.Id)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, o.Status)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, o.Channel)
	b = append(b, `,"channel_order_id":`...)
	b = appendJSONString(b, o.ChannelOrderId)
	b = append(b, `,"customer":`...)
	if c := o.Customer; c == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = appendJSONString(b, c.Id)
		b = appendOmitEmpty(b, "name", c.Name)
		b = appendOmitEmpty(b, "phone", c.Phone)
		b = appendOmitEmpty(b, "address", c.Address)
		b = appendOmitEmpty(b, "id_number", c.IdNumber)
		b = appendOmitEmpty(b, "email", c.Email)
		if c.Erased {
			b = append(b, `,"erased":true`...)
		}
		if c.Withheld {
			b = append(b, `,"withheld":true`...)
		}
		b = append(b, '}')
	}
	b = append(b, `,"lines":[`...)
	for i, l := range o.Lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sku":`...)
		b = appendJSONString(b, l.Sku)
		b = append(b, `,"qty":`...)
		b = strconv.AppendInt(b, l.Qty, 10)
		b = append(b, `,"unit_price":`...)
		b = appendJSONString(b, l.UnitPrice)
		b = append(b, `,"warehouse":`...)
		b = appendJSONString(b, l.Warehouse)
		b = append(b, '}')
	}
	b = append(b, `],"currency":`...)
	b = appendJSONString(b, o.Currency)
	b = append(b, `,"total":`...)
	b = appendJSONString(b, o.Total)
	b = appendOmitEmpty(b, "amount_due", o.AmountDue)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, o.Version, 10)
	b = append(b, `,"created_at":`...)
	b = appendJSONString(b, o.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONString(b, o.UpdatedAt)
	b = append(b, `,"pay_by":`...)
	b = appendJSONString(b, o.PayBy)
	b = appendOmitEmpty(b, "idempotency_key", o.IdempotencyKey)
	b = appendOmitEmpty(b, "shipment_carrier", o.ShipmentCarrier)
	b = appendOmitEmpty(b, "shipment_tracking", o.ShipmentTracking)
	b = appendOmitEmpty(b, "delivery_region", o.DeliveryRegion)
	b = appendOmitEmpty(b, "customer_tier", o.CustomerTier)
	b = appendOmitEmpty(b, "promised_by", o.PromisedBy)
	if len(o.RequiredCapabilities) > 0 {
		b = append(b, `,"required_capabilities":[`...)
		for i, s := range o.RequiredCapabilities {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, ']')
	}
	b = appendOmitEmpty(b, "routing_strategy", o.RoutingStrategy)
	if len(o.ChannelFields) > 0 {
		b = append(b, `,"channel_fields":{`...)
		keys := make([]string, 0, len(o.ChannelFields))
		for k := range o.ChannelFields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, o.ChannelFields[k])
		}
		b = append(b, '}')
	}
	if len(o.Adjustments) > 0 {
		b = append(b, `,"adjustments":[`...)
		for i, a := range o.Adjustments {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"kind":`...)
			b = appendJSONString(b, a.Kind)
			b = append(b, `,"amount":`...)
			b = appendJSONString(b, a.Amount)
			b = append(b, `,"line":`...)
			b = strconv.AppendInt(b, int64(a.Line), 10)
			b = appendOmitEmpty(b, "funded_by", a.FundedBy)
			b = appendOmitEmpty(b, "detail", a.Detail)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if h := o.Hold; h != nil {
		b = append(b, `,"hold":{"reason":`...)
		b = appendJSONString(b, h.Reason)
		b = append(b, `,"findings":[`...)
		for i, f := range h.Findings {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"code":`...)
			b = appendJSONString(b, f.Code)
			b = append(b, `,"detail":`...)
			b = appendJSONString(b, f.Detail)
			b = append(b, '}')
		}
		b = append(b, `],"held_at":`...)
		b = appendJSONString(b, h.HeldAt)
		b = append(b, `,"until":`...)
		b = appendJSONString(b, h.Until)
		b = appendOmitEmpty(b, "decision", h.Decision)
		b = appendOmitEmpty(b, "decided_by", h.DecidedBy)
		b = appendOmitEmpty(b, "decision_reason", h.DecisionReason)
		b = appendOmitEmpty(b, "decided_at", h.DecidedAt)
		b = append(b, '}')
	}
	if o.RiskVerdict != "" {
		b = append(b, `,"risk_score":`...)
		b = appendJSONFloat(b, o.RiskScore)
		b = appendOmitEmpty(b, "risk_verdict", o.RiskVerdict)
	}
	return append(b, '}')
}

// appendJSONFloat appends f as encoding/json writes a float64 (f is finite).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendOmitEmpty appends ,"name":"v" unless v is empty.
func appendOmitEmpty(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes it (HTML-safe:
// <, > and & escaped; U+2028 and U+2029 escaped; invalid UTF-8 as U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		rn, size := utf8.DecodeRuneInString(s[i:])
		if rn == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if rn == '\u2028' || rn == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[rn&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
