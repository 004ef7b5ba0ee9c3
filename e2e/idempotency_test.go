package e2e

import (
	"testing"
)

// A key's first recorded request is its order: a retry gets that order back
// (even after the order was cancelled and its stock released), a different
// request under the same key gets 409 idempotency-conflict, and neither takes
// stock.
func TestIdempotencyReplayAndConflict(t *testing.T) {
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/IDEM-A/stock/WH-1", map[string]any{"on_hand": 10}, 200)
	n.must("PUT", "/v1/skus/IDEM-B/stock/WH-1", map[string]any{"on_hand": 10}, 200)
	stockIs := func(sku string, available, pending int64) {
		t.Helper()
		s := n.checkConserved(sku)
		if s.Total.Available != available || s.Total.Pending != pending {
			t.Fatalf("%s: available %d pending %d, want %d and %d", sku, s.Total.Available, s.Total.Pending, available, pending)
		}
	}

	var first order
	n.must("POST", "/v1/orders", orderBody("idem-1", "IDEM-A", 1), 201, "Idempotency-Key", "idem-key-1").json(t, &first)
	var again order
	n.must("POST", "/v1/orders", orderBody("idem-1", "IDEM-A", 1), 200, "Idempotency-Key", "idem-key-1").json(t, &again)
	if again.ID != first.ID || again.Version != first.Version {
		t.Fatalf("replay answered %+v, first %+v", again, first)
	}
	stockIs("IDEM-A", 9, 1)

	conflict := func(body map[string]any) {
		t.Helper()
		var p problem
		n.must("POST", "/v1/orders", body, 409, "Idempotency-Key", "idem-key-1").json(t, &p)
		if p.Type == "" || len(p.Errors) != 1 || p.Errors[0].Field != "idempotency_key" {
			t.Fatalf("conflict problem %+v", p)
		}
	}
	conflict(orderBody("idem-1", "IDEM-B", 1)) // another SKU
	conflict(orderBody("idem-1", "IDEM-A", 2)) // another quantity of the same SKU
	stockIs("IDEM-A", 9, 1)
	stockIs("IDEM-B", 10, 0)

	// Cancelled: its stock is back; a retry answers the cancelled order and
	// takes nothing.
	n.must("POST", "/v1/orders/"+first.ID+"/cancel", map[string]any{"reason": "test"}, 200)
	stockIs("IDEM-A", 10, 0)
	var replay order
	n.must("POST", "/v1/orders", orderBody("idem-1", "IDEM-A", 1), 200, "Idempotency-Key", "idem-key-1").json(t, &replay)
	if replay.ID != first.ID || replay.Status != "cancelled" {
		t.Fatalf("replay after cancel answered %+v", replay)
	}
	stockIs("IDEM-A", 10, 0)

	// Sold out: a retry of a recorded order still gets its order, a new one 409.
	n.must("PUT", "/v1/skus/IDEM-B/stock/WH-1", map[string]any{"on_hand": 1}, 200)
	var last order
	n.must("POST", "/v1/orders", orderBody("idem-2", "IDEM-B", 1), 201, "Idempotency-Key", "idem-key-2").json(t, &last)
	n.must("POST", "/v1/orders", orderBody("idem-2", "IDEM-B", 1), 200, "Idempotency-Key", "idem-key-2")
	n.must("POST", "/v1/orders", orderBody("idem-3", "IDEM-B", 1), 409, "Idempotency-Key", "idem-key-3")
	stockIs("IDEM-B", 0, 1)
}
