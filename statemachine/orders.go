package statemachine

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Orders: each order's record and events, and the orders whose
// reservations owe the stock action of their last transition. The
// lifecycle they follow is package lifecycle's table; the unpaid ones'
// deadlines, each subject's orders and the orders' counts are kept in
// memory (due.go, subject_index.go, counts.go). Key layouts: keySpaces (keys.go).

func orderKey(prefix []byte, order string) []byte { return key(prefix, spaceOrder, order) }

func eventKey(prefix []byte, order string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(key(prefix, spaceOrderEvent, order), 0), seq)
}

func eventPrefix(prefix []byte, order string) []byte {
	return append(key(prefix, spaceOrderEvent, order), 0)
}

func stockActionKey(prefix []byte, order string) []byte { return key(prefix, spaceStockAction, order) }

func (t *txn) order(id string) (*gridpb.OrderRecord, bool) {
	o := &gridpb.OrderRecord{}
	if !t.get(orderKey(t.m.prefix, id), o) {
		return o, false
	}
	// A record written before stages were kept: its stage is its status
	// since its last change (stageOf), written with its next change.
	o.StageStatus, o.StageSinceUnixNano = stageOf(o)
	return o, true
}

func (t *txn) addEvent(o *gridpb.OrderRecord, typ string, details map[string]string) {
	t.addEventRouted(o, typ, details, nil)
}

// addEventRouted adds an event that carries a routing decision (the
// "created" event). An event that changed the order's status starts its
// stage, and clears its open alert (alerts.go).
func (t *txn) addEventRouted(o *gridpb.OrderRecord, typ string, details map[string]string, routed *gridpb.RoutingRecord) {
	moved := t.noteStage(o)
	o.Version++
	o.UpdatedUnixNano = t.at
	t.put(orderKey(t.m.prefix, o.Id), o)
	t.put(eventKey(t.m.prefix, o.Id, o.Version), &gridpb.EventRecord{
		Seq: o.Version, Type: typ, AtUnixNano: t.at, Principal: t.principal, Status: o.Status, Details: details, Routing: routed,
	})
	e := &ledger.Event{Kind: ledger.KindOrder, Type: typ, Order: o.Id, Seq: o.Version, Status: o.Status, Details: details}
	if typ == "created" {
		// Customer fields are personal data and stay out of the permanent
		// log until they can enter it encrypted.
		e.Details = map[string]string{"channel": o.Channel, "channel_order_id": o.ChannelOrderId, "currency": o.Currency, "total": o.Total,
			"routing_strategy": o.RoutingStrategy}
		heldDetails(o, e.Details)
		for k, v := range e.Details {
			if v == "" {
				delete(e.Details, k)
			}
		}
		for _, l := range o.Lines {
			e.Lines = append(e.Lines, ledger.Line{SKU: l.Sku, Qty: l.Qty, UnitPrice: l.UnitPrice, Warehouse: l.Warehouse})
		}
	}
	t.record(e)
	if moved && o.Alert != nil {
		t.clearAlert(o)
	}
}

func (t *txn) createOrder(o *gridpb.OrderRecord, routed *gridpb.RoutingRecord) *Result {
	if c := o.GetCustomer(); c.GetName() != "" || c.GetPhone() != "" || c.GetAddress() != "" || c.GetIdNumber() != "" || c.GetEmail() != "" {
		// Personal fields enter the log sealed (OrderRecord.personal), never plain.
		return &Result{Detail: "create_order: personal fields must be sealed, not plain"}
	}
	var archived gridpb.ArchivedOrderRecord
	if t.get(archivedKey(t.m.prefix, o.Id), &archived) {
		// Recorded long ago and archived: a retry is answered with what is left.
		prev := &gridpb.OrderRecord{Id: archived.Id, Status: archived.Status, Channel: archived.Channel, RequestHash: archived.RequestHash}
		if string(archived.RequestHash) == string(o.RequestHash) {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: prev}
		}
		return &Result{Outcome: gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: prev}
	}
	if prev, ok := t.order(o.Id); ok {
		if string(prev.RequestHash) == string(o.RequestHash) {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: prev}
		}
		return &Result{Outcome: gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: prev}
	}
	o.Status = lifecycle.StatusPendingPayment
	if o.Hold != nil {
		// Held at intake: its pay-by time is the hold's timeout.
		o.Status = lifecycle.StatusOnHold
		o.Hold.Decision, o.Hold.DecidedBy, o.Hold.DecisionReason, o.Hold.DecidedUnixNano = "", "", "", 0
		o.Hold.HeldUnixNano = t.at
	}
	o.Version = 0
	o.CreatedUnixNano = t.at
	o.StockAction = ""
	t.addEventRouted(o, "created", nil, routed)
	t.addLoad(o.Shipments, 1)
	t.m.due.set(o.Id, o.PayByUnixNano)
	t.m.subjects.add(o.GetCustomer().GetId(), o.Id)
	t.m.counts.add(o, 1)
	if o.Hold != nil {
		t.m.holds.add(o)
	}
	t.m.history.add(o)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}
}

// createOrders records the new orders of one intake batch, each judged as
// a create_order of its own (a retry answered with the order it has, an
// idempotency conflict refused), with its caller as principal.
func (t *txn) createOrders(c *gridpb.CreateOrdersCommand) *Result {
	return each("create_orders", c.Orders, func(o *gridpb.CreateOrderCommand) *Result {
		if o.GetOrder().GetId() == "" {
			return &Result{Detail: "create_order: no order id"}
		}
		return t.as(o.Principal, func() *Result { return t.createOrder(o.Order, o.Routing) })
	})
}

// transitions applies the events of one batch (an order's later event sees
// its earlier one).
func (t *txn) transitions(c *gridpb.TransitionsCommand) *Result {
	return each("transitions", c.Transitions, func(tr *gridpb.TransitionCommand) *Result {
		return t.as(tr.Principal, func() *Result { return t.transition(tr) })
	})
}

// stockSyncedBatch records stock actions as carried out.
func (t *txn) stockSyncedBatch(c *gridpb.StockSyncedBatchCommand) *Result {
	return each("stock_synced_batch", c.Orders, t.stockSynced)
}

func (t *txn) transition(c *gridpb.TransitionCommand) *Result {
	o, ok := t.order(c.OrderId)
	if !ok {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	if o.Status == c.Type {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: o}
	}
	if !lifecycle.CanTransition(o.Status, c.Type) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Order: o,
			Detail: fmt.Sprintf("cannot go from %s to %s", o.Status, c.Type)}
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != o.Version {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Order: o, Detail: "order changed concurrently"}
	}
	if c.Type == lifecycle.StatusPendingPayment && undecided(o) && o.Hold.Reason != HoldDuplicate {
		// A hold of intake's checks is lifted by a reviewer's decision
		// (an event of its own, an override the model learns from).
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Order: o,
			Detail: fmt.Sprintf("held for %s review: decide it with POST /v1/holds/%s/decide", o.Hold.Reason, o.Id)}
	}
	if c.Type == lifecycle.StatusPaid && t.at >= o.PayByUnixNano {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_EXPIRED, Order: o, Detail: "the payment window has closed"}
	}
	t.moveTo(o, c.Type, c.Details)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}
}

func (t *txn) moveTo(o *gridpb.OrderRecord, status string, details map[string]string) {
	oldStatus, oldAt := o.Status, o.UpdatedUnixNano
	defer t.indexClosed(o, oldStatus, oldAt)
	if oldStatus == lifecycle.StatusOnHold {
		t.m.holds.remove(o.Id)
	}
	if status == lifecycle.StatusOnHold {
		if !undecided(&gridpb.OrderRecord{Status: status, Hold: o.Hold}) {
			// Held after intake (a cross-channel duplicate under a "hold"
			// policy): the review queue has it too, until its pay-by time.
			o.Hold = &gridpb.OrderHoldRecord{Reason: HoldDuplicate, HeldUnixNano: t.at, UntilUnixNano: o.PayByUnixNano,
				Findings: []*pb.HoldFinding{{Code: HoldDuplicate, Detail: details["reason"]}}}
		}
		// Either way the order is on hold with an undecided hold: indexed,
		// as Load would index it (an intake hold lifted by a transition and
		// held again keeps its hold, and is back in the queue).
		defer t.m.holds.add(o)
	}
	o.Status = status
	t.m.counts.move(oldStatus, status)
	// The pay-by deadline holds while the order is unpaid: pending or on hold.
	if unpaid(status) {
		t.m.due.set(o.Id, o.PayByUnixNano)
	} else {
		t.m.due.remove(o.Id)
	}
	if status == lifecycle.StatusShipped {
		o.ShipmentCarrier = details["carrier"]
		o.ShipmentTracking = details["tracking_number"]
	}
	if status == lifecycle.StatusCancelled || status == lifecycle.StatusExpired || status == lifecycle.StatusMerged {
		// Not shipping after all: its parcels leave the ship days' load.
		t.addLoad(o.Shipments, -1)
	}
	if a := lifecycle.StockAction(status); a != "" {
		o.StockAction = a
		t.put(stockActionKey(t.m.prefix, o.Id), &gridpb.StockSyncedCommand{OrderId: o.Id})
	}
	t.addEvent(o, status, details)
}

func (t *txn) stockSynced(c *gridpb.StockSyncedCommand) *Result {
	o, ok := t.order(c.OrderId)
	if !ok {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	done := o.Version == c.Version
	if c.Action != "" {
		done = o.StockAction == c.Action
	}
	if !done || o.StockAction == "" {
		// A later transition owes another action: keep it owed.
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: o}
	}
	o.StockAction = ""
	t.put(orderKey(t.m.prefix, o.Id), o)
	t.del(stockActionKey(t.m.prefix, o.Id))
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}
}

func (t *txn) expireOrders(ids []string) *Result {
	for _, id := range ids {
		o, ok := t.order(id)
		if !ok || (o.Status != lifecycle.StatusPendingPayment && o.Status != lifecycle.StatusOnHold) || o.PayByUnixNano > t.at {
			continue
		}
		t.moveTo(o, lifecycle.StatusExpired, map[string]string{"reason": "payment window closed"})
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// ReadOrder returns an order.
func ReadOrder(r Reader, prefix []byte, id string) (*gridpb.OrderRecord, bool, error) {
	o := &gridpb.OrderRecord{}
	ok, err := getProto(r, orderKey(prefix, id), o)
	if err != nil {
		return nil, false, fmt.Errorf("read order %s: %w", id, err)
	}
	return o, ok, nil
}

// ReadEvents returns an order's events in order.
func ReadEvents(r Reader, prefix []byte, id string) ([]*gridpb.EventRecord, error) {
	evs, err := readEvents(r, eventPrefix(prefix, id), 0)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return evs, nil
}

// OwedStockActions returns up to limit orders whose reservations still owe
// the stock action of their last transition.
func OwedStockActions(r Reader, prefix []byte, limit int) ([]string, error) {
	start := spaceStart(prefix, spaceStockAction)
	var ids []string
	err := r.Scan(start, prefixEnd(start), limit, func(k, _ []byte) error {
		ids = append(ids, string(k[len(start):]))
		return nil
	})
	return ids, err
}

// ScanOrders calls fn for every order of a partition, in id order.
func ScanOrders(r Reader, prefix []byte, fn func(o *gridpb.OrderRecord) error) error {
	space := key(prefix, spaceOrder)
	return r.Scan(space, prefixEnd(space), 0, func(_, v []byte) error {
		o := &gridpb.OrderRecord{}
		if err := proto.Unmarshal(v, o); err != nil {
			return fmt.Errorf("decode order: %w", err)
		}
		return fn(o)
	})
}
