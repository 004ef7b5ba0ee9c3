package lifecycle

import (
	"slices"
	"testing"
)

func TestEventTypesComeFromTheTable(t *testing.T) {
	got := EventTypes()
	if len(got) != len(table) {
		t.Fatalf("EventTypes has %d events, the table %d", len(got), len(table))
	}
	for _, e := range got {
		if !IsEventType(e) {
			t.Errorf("EventTypes lists %q, which IsEventType refuses", e)
		}
	}
	got[0] = "mutated"
	if EventTypes()[0] == "mutated" {
		t.Fatal("EventTypes returned the table's own slice")
	}
	if IsEventType(StatusExpired) {
		t.Error("a client may not expire an order: only the sweeper does")
	}
}

func TestTransitions(t *testing.T) {
	for _, c := range []struct {
		from, event string
		ok          bool
	}{
		{StatusPendingPayment, StatusPaid, true},
		{StatusOnHold, StatusPaid, false},
		{StatusOnHold, StatusPendingPayment, true},
		{StatusPaid, StatusPaid, false},
		{StatusShipped, StatusCancelled, false},
		{StatusPacked, StatusCancelled, true},
		{StatusDelivered, StatusReturnRequested, true},
		{StatusCancelled, StatusRefunded, true},
		{StatusPendingPayment, "teleported", false},
	} {
		if got := CanTransition(c.from, c.event); got != c.ok {
			t.Errorf("CanTransition(%s, %s) = %v, want %v", c.from, c.event, got, c.ok)
		}
	}
}

func TestStockActions(t *testing.T) {
	want := map[string]string{StatusPaid: ActionCommit, StatusCancelled: ActionRelease, StatusExpired: ActionRelease,
		StatusMerged: ActionRelease, StatusShipped: ActionShip, StatusReturned: ActionRestock}
	for _, e := range append(EventTypes(), StatusExpired) {
		if got := StockAction(e); got != want[e] {
			t.Errorf("StockAction(%s) = %q, want %q", e, got, want[e])
		}
	}
	// Every action is owed by some event: none is dead.
	for _, a := range []string{ActionCommit, ActionRelease, ActionShip, ActionRestock} {
		if !slices.ContainsFunc(table, func(tr transition) bool { return tr.action == a }) {
			t.Errorf("no event owes %s", a)
		}
	}
}

// An order holds live stock from its creation until the event that
// releases or ships it, and never after.
func TestHoldsStock(t *testing.T) {
	if !HoldsStock(StatusPendingPayment) {
		t.Fatal("a new order holds its stock")
	}
	for _, e := range append(EventTypes(), StatusExpired) {
		switch StockAction(e) {
		case ActionRelease, ActionShip:
			if HoldsStock(e) {
				t.Errorf("an order %s still holds stock", e)
			}
		case ActionCommit:
			if !HoldsStock(e) {
				t.Errorf("an order %s holds its committed stock", e)
			}
		}
	}
	// Every status after shipping, and a refund (of a cancelled or a
	// returned order), holds none.
	for _, s := range []string{StatusInTransit, StatusOutForDelivery, StatusDelivered, StatusReturnRequested, StatusReturned, StatusRefunded} {
		if HoldsStock(s) {
			t.Errorf("an order %s holds stock", s)
		}
	}
}
