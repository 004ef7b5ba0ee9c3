package e2e

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Reads are linearizable: a leader frozen (SIGSTOP) long enough for the
// others to elect a new one still believes it leads when it thaws. Reads
// that reach it right then (they queued on its sockets while it was frozen)
// must see what the new leader committed meanwhile, never the thawed
// node's older state: it confirms its leadership with a quorum before it
// answers (a read index), learns it was deposed, and asks the new leader.
// The reads are of an order's events, which a node reads from the order's
// partition itself (no grain, no cache in between).
func TestClusterFrozenLeaderServesNoStaleRead(t *testing.T) {
	c := newCluster(t, clusterArgs)
	n1 := c.node(1)
	n1.eventually("PUT", "/v1/skus/RI-1/stock/WH1", map[string]any{"on_hand": 100}, 200)
	var ids []string
	for i := 0; i < 6; i++ {
		var o order
		n1.eventually("POST", "/v1/orders", orderBody(fmt.Sprintf("ri-%d", i), "RI-1", 1), 201, "Idempotency-Key", fmt.Sprintf("ri-%d", i)).json(t, &o)
		ids = append(ids, o.ID)
	}
	frozen := c.leaderOf("order/"+ids[0], 1)
	other := frozen%3 + 1
	var mine []string // the orders whose partition the frozen node leads
	for _, id := range ids {
		if c.leaderOf("order/"+id, 1) == frozen {
			mine = append(mine, id)
		}
	}
	c.signal(frozen, syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			c.signal(frozen, syscall.SIGCONT)
		}
	}()
	t.Logf("node%d (leader of %d orders' partition) frozen", frozen, len(mine))
	deadline := time.Now().Add(60 * time.Second)
	for c.leaderOf("order/"+mine[0], other) == frozen {
		if time.Now().After(deadline) {
			t.Fatal("no new leader within 60s of the freeze")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The new leader commits a payment of every order.
	for _, id := range mine {
		c.node(other).eventually("POST", "/v1/orders/"+id+"/pay", nil, 200)
	}
	// Reads sent to the frozen node, waiting on its sockets when it thaws.
	type answer struct {
		id   string
		code int
		body string
		err  error
	}
	answers := make(chan answer, len(mine)*4)
	var wg sync.WaitGroup
	for round := 0; round < 4; round++ {
		for _, id := range mine {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				r, err := do(ctx, "GET", c.urls[frozen-1]+"/v1/orders/"+id+"/events", nil)
				answers <- answer{id: id, code: r.code, body: string(r.body), err: err}
			}(id)
		}
	}
	time.Sleep(300 * time.Millisecond)
	c.signal(frozen, syscall.SIGCONT)
	thawed = true
	wg.Wait()
	close(answers)
	served := 0
	for a := range answers {
		if a.err != nil || a.code != 200 {
			t.Logf("read of %s on the thawed node: %d %v (not served: allowed)", a.id, a.code, a.err)
			continue
		}
		served++
		var evs struct {
			Events []struct{ Type, Status string }
		}
		response{code: a.code, body: []byte(a.body)}.json(t, &evs)
		paid := false
		for _, e := range evs.Events {
			paid = paid || e.Status == "paid"
		}
		if !paid {
			t.Errorf("stale read on the thawed node: order %s's events %+v lack the payment the new leader committed", a.id, evs.Events)
		}
	}
	t.Logf("%d reads served by the thawed node, all fresh", served)
	if served == 0 {
		t.Fatal("the thawed node served no read at all")
	}
}
