package actors

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/screening"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Screening at intake. Before an order's stock is reserved, its address
// and risk are judged (package screening), and its buyer (customer,
// address and device keys, channel) goes with each reservation: each
// SKU's state machine judges it against the SKU's purchase limits,
// exactly once, with the reservation. A refusal reserves nothing; a hold
// reserves with the hold's longer expiry and records the order on_hold
// (OrderRecord.hold), its pay-by time the hold's timeout. A reservation
// past a limit whose rule holds holds the order too; one past a limit
// whose rule refuses refuses it, what it reserved released.

// screened is what intake judged of one order before reserving it.
type screened struct {
	// buyer is who the SKUs' purchase limits count.
	buyer *gridpb.LimitBuyer
	// held are the hold's findings so far, reason its first reason.
	held   []*pb.HoldFinding
	reason string
	// refused answers the order at once: nothing is reserved.
	refused *gridpb.OrderGrainResponse
	risk    *gridpb.RiskRecord
	// holdExpires is the expiry of a held order's reservations; preHeld:
	// held before reserving (every reservation made with that expiry).
	holdExpires           int64
	preHeld               bool
	addressKey, deviceKey string
}

// limitBuyer is who the SKUs' purchase limits count.
func (s *screened) limitBuyer() *gridpb.LimitBuyer {
	if s == nil {
		return nil
	}
	return s.buyer
}

// holdExpiry is the expiry of a reservation past a limit whose rule holds.
func (s *screened) holdExpiry() int64 {
	if s == nil {
		return 0
	}
	return s.holdExpires
}

// expiry is the expiry of the order's reservations.
func (s *screened) expiry(expires int64) int64 {
	if s != nil && s.preHeld {
		return max(expires, s.holdExpires)
	}
	return expires
}

// extendHeld makes every reservation of a held order last as long as the
// hold: one extend per line made with a shorter expiry (a line reserved
// before a limit of another line held the order, or by an earlier attempt:
// REPLAYED). A failure is logged: the order is held all the same, and
// such a line's stock may be released by the orphan sweep before the hold
// ends.
func (n *Node) extendHeld(id string, s *screened, skus []skuQty, results []*gridpb.ReserveResponse, principal string) {
	if s == nil || len(s.held) == 0 {
		return
	}
	fanOut(len(skus), linesFanOutMax, func(i int) {
		res := results[i]
		if res == nil || res.LimitHeld != "" || (res.Outcome != gridpb.Outcome_OUTCOME_OK && res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED) {
			return
		}
		if s.preHeld && res.Outcome == gridpb.Outcome_OUTCOME_OK {
			return // made now, for the hold
		}
		err := retrySku(func() error {
			_, err := n.grains.reserve(&gridpb.ReserveRequest{Sku: skus[i].sku, OrderId: id, Extend: true,
				HoldExpiresUnixNano: s.holdExpires, Warehouse: res.Warehouse, Principal: principal})
			return err
		})
		if err != nil {
			n.opts.Logger.Warn("extending a held order's reservation", slog.String("order", id), slog.String("sku", skus[i].sku), slog.Any("error", err))
		}
	})
}

func (s *screened) hold(reason string, f *pb.HoldFinding) {
	if s.reason == "" {
		s.reason = reason
	}
	s.held = append(s.held, f)
}

// keyed is the keyed hash of a normalised address or device id (the
// channels' fingerprint of it, shortened): what limits and risk features
// name it by.
func (n *Node) keyed(kind, value string) string {
	if value == "" || len(n.opts.IdentityKey) == 0 {
		return ""
	}
	// One HMAC per goroutine at a time, reset rather than made: the key's
	// pads are set up once per pooled HMAC, not once per order.
	h, _ := n.keyedHMAC.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, n.opts.IdentityKey)
	}
	h.Reset()
	var buf [sha256.Size]byte
	io.WriteString(h, kind)
	h.Write([]byte{0})
	io.WriteString(h, value)
	sum := h.Sum(buf[:0])
	n.keyedHMAC.Put(h)
	return hex.EncodeToString(sum[:16])
}

// buyerKeys are the keyed hashes of an order's address and device.
func (n *Node) buyerKeys(rq *pb.CreateOrderRequest) (addressKey, deviceKey string) {
	if a := channels.NormaliseAddress(rq.GetCustomer().GetAddress()); len([]rune(a)) >= 8 {
		addressKey = n.keyed("address", a)
	}
	return addressKey, n.keyed("device", strings.TrimSpace(rq.GetDeviceId()))
}

// screenInput is one order's inputs to screen: its buyer's keys, where it
// is routed, its batch's pressure on its hottest SKU (how much of the free
// stock the batch takes) and, when the caller read it for the whole batch,
// its history.
type screenInput struct {
	rq                    *pb.CreateOrderRequest
	addressKey, deviceKey string
	warehouses            []string
	pressure              float64
	history               *screening.History
}

// screenOf starts an order's screening inputs: its buyer's keys.
func (n *Node) screenOf(rq *pb.CreateOrderRequest, warehouses []string, pressure float64) *screenInput {
	in := &screenInput{rq: rq, warehouses: warehouses, pressure: pressure}
	in.addressKey, in.deviceKey = n.buyerKeys(rq)
	return in
}

// screen judges an order routed to warehouses before it is reserved.
func (n *Node) screen(in *screenInput, now time.Time) *screened {
	rq := in.rq
	s := &screened{holdExpires: now.Add(n.opts.HoldTimeout + n.opts.PendingTimeout + n.opts.OrphanGrace).UnixNano()}
	s.addressKey, s.deviceKey = in.addressKey, in.deviceKey
	customer := rq.GetCustomer().GetId()
	s.buyer = &gridpb.LimitBuyer{Customer: customer, Address: s.addressKey, Device: s.deviceKey, Channel: rq.GetChannel()}
	sc := n.opts.Screen
	if sc == nil {
		return s
	}
	judged := &screening.Input{Request: rq, Now: now, Warehouses: in.warehouses, Catalog: n.Catalog(), SKUPressure: in.pressure}
	if sc.Model() != nil {
		if in.history != nil {
			judged.History = *in.history
		} else {
			judged.History = n.histories([]statemachine.HistoryQuery{{Customer: customer, AddressKey: s.addressKey, DeviceKey: s.deviceKey}}, now)[0]
		}
	}
	v := sc.Judge(judged)
	if r := v.Risk; r != nil {
		features, contributions := r.Columns()
		s.risk = &gridpb.RiskRecord{Score: r.Score, Model: r.Model, Verdict: r.Verdict, Base: r.Base,
			Features: features, Contributions: contributions}
	}
	var findings []*pb.HoldFinding
	for _, f := range v.Findings {
		findings = append(findings, &pb.HoldFinding{Code: f.Code, Detail: f.Detail})
	}
	switch v.Action {
	case screening.Refuse:
		detail := fmt.Sprintf("refused at intake (%s)", v.Reason)
		if len(findings) > 0 {
			detail += ": " + findings[0].Detail
		}
		s.refused = &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_REFUSED, Detail: detail, Findings: findings}
	case screening.Hold:
		for _, f := range findings {
			s.hold(v.Reason, f)
		}
		s.preHeld = true
	}
	return s
}

// limitAnswers reads the limits' verdicts off an order's reservations:
// a refusal (the caller releases what was reserved), or the findings of
// the limits that hold it.
func (s *screened) limitAnswers(skus []skuQty, results []*gridpb.ReserveResponse) *gridpb.OrderGrainResponse {
	for i, res := range results {
		if res == nil {
			continue
		}
		switch {
		case res.Outcome == gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED:
			return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED, Sku: skus[i].sku, Detail: res.Detail,
				Findings: []*pb.HoldFinding{{Code: cmp.Or(res.LimitCode, statemachine.CodeLimitExceeded), Detail: res.Detail}}}
		case res.LimitHeld != "" && s != nil:
			s.hold(statemachine.HoldLimit, &pb.HoldFinding{Code: cmp.Or(res.LimitCode, statemachine.CodeLimitExceeded), Detail: res.Detail})
		}
	}
	return nil
}

// mark records the screening on a new order's record: its risk, its
// buyer keys and, when held, its hold (its pay-by time the hold's timeout).
func (n *Node) mark(rec *gridpb.OrderRecord, s *screened, now time.Time) {
	if s == nil {
		return
	}
	rec.Risk, rec.AddressKey, rec.DeviceKey = s.risk, s.addressKey, s.deviceKey
	if len(s.held) == 0 {
		return
	}
	n.metrics.screened.WithLabelValues("hold", s.reason).Inc()
	until := now.Add(n.opts.HoldTimeout).UnixNano()
	rec.Hold = &gridpb.OrderHoldRecord{Reason: s.reason, Findings: s.held, UntilUnixNano: until}
	rec.PayByUnixNano = until
}

// histories sums, for each query, what the local replicas know of its
// customer, address and device: one lock per replica for all of them.
func (n *Node) histories(qs []statemachine.HistoryQuery, now time.Time) []screening.History {
	hs := make([]statemachine.History, len(qs))
	for _, m := range n.parts.machines() {
		m.AddHistories(hs, qs, now.UnixNano())
	}
	out := make([]screening.History, len(qs))
	for i, h := range hs {
		out[i] = screening.History{FirstUnixNano: h.FirstUnixNano, Orders: h.Orders, Orders1h: h.Orders1h, Orders24h: h.Orders24h,
			AmountSum: h.AmountSum, AddressCustomers: len(h.AddressCustomers), DeviceCustomers: len(h.DeviceCustomers)}
	}
	return out
}
