package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type acked struct {
	key     string
	id      string
	status  string // last acknowledged status
	payPend bool   // a pay request was sent and not answered
	qty     map[string]int64
}

// Orders acknowledged before a kill -9 are all there after the restart, with
// the status they were acknowledged with; retries still find them; stock is
// conserved. The same after a clean restart.
func TestCrashKeepsAcknowledgedOrders(t *testing.T) {
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/CRASH-A/stock/WH1", map[string]any{"on_hand": 1_000_000}, 200)
	n.must("PUT", "/v1/skus/CRASH-B/stock/WH2", map[string]any{"on_hand": 1_000_000}, 200)

	var mu sync.Mutex
	var orders []*acked
	var seq atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := seq.Add(1)
				key := fmt.Sprintf("crash-%d", i)
				body := orderBody(key, "CRASH-A", 1+i%3)
				qty := map[string]int64{"CRASH-A": 1 + i%3}
				if i%2 == 0 {
					body["lines"] = append(body["lines"].([]map[string]any), map[string]any{"sku": "CRASH-B", "qty": 2, "unit_price": "5.5"})
					qty["CRASH-B"] = 2
				}
				r, err := do(ctx, "POST", n.http+"/v1/orders", body, "Idempotency-Key", key)
				if err != nil || r.code != 201 {
					return // the node is gone
				}
				var o order
				r.json(t, &o)
				a := &acked{key: key, id: o.ID, status: o.Status, qty: qty}
				mu.Lock()
				orders = append(orders, a)
				mu.Unlock()
				if i%3 == 0 {
					mu.Lock()
					a.payPend = true
					mu.Unlock()
					r, err := do(ctx, "POST", n.http+"/v1/orders/"+o.ID+"/pay", nil)
					if err != nil || r.code != 200 {
						return
					}
					mu.Lock()
					a.status, a.payPend = "paid", false
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	n.kill()
	cancel()
	wg.Wait()
	if len(orders) < 100 {
		t.Fatalf("only %d orders acknowledged before the kill", len(orders))
	}
	t.Logf("%d orders acknowledged before kill -9", len(orders))

	start := time.Now()
	n.start()
	t.Logf("restart to ready after kill -9: %s", time.Since(start).Round(time.Millisecond))
	audit(t, n, orders)

	n.stop()
	n.start()
	audit(t, n, orders)
}

func audit(t *testing.T, n *node, orders []*acked) {
	t.Helper()
	var paid, all map[string]int64 = map[string]int64{}, map[string]int64{}
	for _, a := range orders {
		var o order
		n.must("GET", "/v1/orders/"+a.id, nil, 200).json(t, &o)
		ok := o.Status == a.status || (a.payPend && o.Status == "paid")
		if !ok {
			t.Fatalf("order %s acknowledged as %s (pay in flight: %v) is %s", a.id, a.status, a.payPend, o.Status)
		}
		for sku, q := range a.qty {
			all[sku] += q
			if o.Status == "paid" {
				paid[sku] += q
			}
		}
		// A retry finds the same order and changes nothing.
		body := orderBody(a.key, "CRASH-A", a.qty["CRASH-A"])
		if q, ok := a.qty["CRASH-B"]; ok {
			body["lines"] = append(body["lines"].([]map[string]any), map[string]any{"sku": "CRASH-B", "qty": q, "unit_price": "5.5"})
		}
		var again order
		n.must("POST", "/v1/orders", body, 200, "Idempotency-Key", a.key).json(t, &again)
		if again.ID != a.id || again.Version != o.Version {
			t.Fatalf("retry of %s answered %s v%d, want %s v%d", a.key, again.ID, again.Version, a.id, o.Version)
		}
	}
	for _, sku := range []string{"CRASH-A", "CRASH-B"} {
		// A pay cut off by the kill may owe its stock commit: the node
		// finishes owed actions right after it starts.
		s := n.checkConserved(sku)
		for deadline := time.Now().Add(10 * time.Second); s.Total.Committed < paid[sku] && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			s = n.checkConserved(sku)
		}
		if s.Total.OnHand != 1_000_000 {
			t.Fatalf("%s on_hand %d", sku, s.Total.OnHand)
		}
		// Reservations of acknowledged orders are all held; orders cut off
		// by the kill may hold more until the orphan sweep.
		if s.Total.Pending+s.Total.Committed < all[sku] || s.Total.Committed < paid[sku] {
			t.Fatalf("%s: pending %d + committed %d, acknowledged %d (paid %d)", sku, s.Total.Pending, s.Total.Committed, all[sku], paid[sku])
		}
	}
}
