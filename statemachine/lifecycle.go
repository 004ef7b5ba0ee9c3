package statemachine

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

// transitions maps an event type to the statuses it may follow. The event
// type is also the status it leads to.
var transitions = map[string][]string{
	StatusPaid:            {StatusPendingPayment},
	StatusCancelled:       {StatusPendingPayment, StatusPaid, StatusPicked, StatusPacked, StatusOnHold},
	StatusOnHold:          {StatusPendingPayment},
	StatusPendingPayment:  {StatusOnHold}, // lifting a hold
	StatusMerged:          {StatusPendingPayment, StatusOnHold},
	StatusPicked:          {StatusPaid},
	StatusPacked:          {StatusPicked},
	StatusShipped:         {StatusPacked},
	StatusInTransit:       {StatusShipped},
	StatusOutForDelivery:  {StatusShipped, StatusInTransit},
	StatusDelivered:       {StatusShipped, StatusInTransit, StatusOutForDelivery},
	StatusReturnRequested: {StatusDelivered},
	StatusReturned:        {StatusReturnRequested},
	StatusRefunded:        {StatusReturned, StatusCancelled},
}

// stockActions maps an event type to the reservation action it owes.
var stockActions = map[string]string{
	StatusPaid:      ActionCommit,
	StatusCancelled: ActionRelease,
	StatusExpired:   ActionRelease,
	StatusMerged:    ActionRelease,
	StatusShipped:   ActionShip,
	StatusReturned:  ActionRestock,
}

// IsEventType reports whether t is an event a client may add to an order.
func IsEventType(t string) bool {
	_, ok := transitions[t]
	return ok
}

// EventTypes lists the events a client may add, for error messages.
func EventTypes() []string {
	return []string{StatusPaid, StatusCancelled, StatusPicked, StatusPacked, StatusShipped, StatusInTransit,
		StatusOutForDelivery, StatusDelivered, StatusReturnRequested, StatusReturned, StatusRefunded,
		StatusOnHold, StatusPendingPayment, StatusMerged}
}

func canTransition(from, event string) bool {
	for _, s := range transitions[event] {
		if s == from {
			return true
		}
	}
	return false
}

// StockAction returns the reservation action that event owes, or "".
func StockAction(event string) string { return stockActions[event] }
