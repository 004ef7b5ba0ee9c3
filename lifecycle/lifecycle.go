// Package lifecycle is the order vocabulary every room shares: the statuses an
// order moves through, the events that move it, which event may follow which
// status, and the stock action each event owes its reservations.
//
// It is a leaf: it imports nothing of ordergrid, so the transport (gateway),
// the workflows (intake), the grains (actors) and the judge (statemachine)
// speak the same words without importing one another. The judge enforces the
// table; everyone else only names things from it.
package lifecycle

import "slices"

// Order statuses.
const (
	StatusPendingPayment  = "pending_payment"
	StatusPaid            = "paid"
	StatusPicked          = "picked"
	StatusPacked          = "packed"
	StatusShipped         = "shipped"
	StatusInTransit       = "in_transit"
	StatusOutForDelivery  = "out_for_delivery"
	StatusDelivered       = "delivered"
	StatusReturnRequested = "return_requested"
	StatusReturned        = "returned"
	StatusRefunded        = "refunded"
	StatusCancelled       = "cancelled"
	StatusExpired         = "expired"
	// StatusOnHold is an unpaid order held for review (a cross-channel
	// duplicate under a "hold" policy): its stock stays pending, it cannot be
	// paid, "pending_payment" lifts the hold, and it expires like an unpaid order.
	StatusOnHold = "on_hold"
	// StatusMerged is an order merged into another one of the same customer
	// (a cross-channel duplicate under a "merge" policy): it ships nothing,
	// its stock is released, its discounts are not granted.
	StatusMerged = "merged"
)

// Stock actions owed by an order's reservations after a transition.
const (
	ActionCommit  = "commit"  // pending -> committed (paid)
	ActionRelease = "release" // pending or committed -> available (cancelled, expired)
	ActionShip    = "ship"    // committed -> gone from on_hand (shipped)
	ActionRestock = "restock" // shipped -> back in on_hand and available (returned)
)

// transition is one row of the table: an event a client may add, the
// statuses it may follow, and the stock action it owes. The event type is
// also the status it leads to.
type transition struct {
	event  string
	from   []string
	action string
}

// table is the order lifecycle, in the order error messages list the events.
// "expired" is not in it: only the sweeper expires an order (see
// ExpiryAction).
var table = []transition{
	{StatusPaid, []string{StatusPendingPayment}, ActionCommit},
	{StatusCancelled, []string{StatusPendingPayment, StatusPaid, StatusPicked, StatusPacked, StatusOnHold}, ActionRelease},
	{StatusPicked, []string{StatusPaid}, ""},
	{StatusPacked, []string{StatusPicked}, ""},
	{StatusShipped, []string{StatusPacked}, ActionShip},
	{StatusInTransit, []string{StatusShipped}, ""},
	{StatusOutForDelivery, []string{StatusShipped, StatusInTransit}, ""},
	{StatusDelivered, []string{StatusShipped, StatusInTransit, StatusOutForDelivery}, ""},
	{StatusReturnRequested, []string{StatusDelivered}, ""},
	{StatusReturned, []string{StatusReturnRequested}, ActionRestock},
	{StatusRefunded, []string{StatusReturned, StatusCancelled}, ""},
	{StatusOnHold, []string{StatusPendingPayment}, ""},
	{StatusPendingPayment, []string{StatusOnHold}, ""}, // lifting a hold
	{StatusMerged, []string{StatusPendingPayment, StatusOnHold}, ActionRelease},
}

// ExpiryAction is the stock action an expired order owes.
const ExpiryAction = ActionRelease

// byEvent indexes table by event type.
var byEvent = func() map[string]*transition {
	m := make(map[string]*transition, len(table))
	for i := range table {
		t := &table[i]
		if _, dup := m[t.event]; dup {
			panic("lifecycle: event " + t.event + " twice in the table")
		}
		m[t.event] = t
	}
	return m
}()

// IsEventType reports whether t is an event a client may add to an order.
func IsEventType(t string) bool {
	_, ok := byEvent[t]
	return ok
}

// EventTypes lists the events a client may add, in the table's order (for
// error messages and documentation). The caller owns the slice.
func EventTypes() []string {
	out := make([]string, len(table))
	for i, t := range table {
		out[i] = t.event
	}
	return out
}

// CanTransition reports whether event may follow status from.
func CanTransition(from, event string) bool {
	t, ok := byEvent[event]
	return ok && slices.Contains(t.from, from)
}

// HoldsStock reports whether an order in status holds its reservations
// live (pending or committed): unpaid, held, or paid and not yet shipped.
// An order in any other status has released its stock (cancelled, expired,
// merged, refunded after a cancel) or shipped it; a reservation made for it
// now, by a retry of its create, is not its own.
func HoldsStock(status string) bool {
	switch status {
	case StatusPendingPayment, StatusOnHold, StatusPaid, StatusPicked, StatusPacked:
		return true
	}
	return false
}

// IsClosed reports whether an order in status is closed: nothing more is
// expected of it (retention may archive it).
func IsClosed(status string) bool {
	switch status {
	case StatusDelivered, StatusCancelled, StatusExpired, StatusRefunded, StatusMerged:
		return true
	}
	return false
}

// HasStageLimit reports whether an order in status may be held to a stage
// limit (a stuck-order alert): a status of the table that is neither
// closed nor pending payment (the pay-by expiry governs that one).
func HasStageLimit(status string) bool {
	return IsEventType(status) && status != StatusPendingPayment && !IsClosed(status)
}

// StockAction returns the reservation action event owes, or "".
func StockAction(event string) string {
	if event == StatusExpired {
		return ExpiryAction
	}
	if t, ok := byEvent[event]; ok {
		return t.action
	}
	return ""
}

// statuses are every status an order can be in, in lifecycle order.
var statuses = []string{StatusPendingPayment, StatusOnHold, StatusPaid, StatusPicked, StatusPacked, StatusShipped,
	StatusInTransit, StatusOutForDelivery, StatusDelivered, StatusReturnRequested, StatusReturned, StatusRefunded,
	StatusCancelled, StatusExpired, StatusMerged}

// Statuses lists every order status in lifecycle order (for validation and
// documentation). The caller owns the slice.
func Statuses() []string { return slices.Clone(statuses) }

// IsStatus reports whether s is an order status.
func IsStatus(s string) bool { return slices.Contains(statuses, s) }
