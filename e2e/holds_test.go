package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A flash sale with a purchase limit of two per buyer, on a three-node
// cluster: buyers order from two channels at once, retry (and repeat keys),
// and the leader of the SKU's partition is killed with kill -9 in the middle.
// No buyer ever holds more than two; every buyer ends with exactly two
// (every attempt answered 503 is retried with its key until it is
// answered); the stock is conserved and the restarted node agrees. Then the
// rule is changed to hold: a third order is held for review, a reviewer on
// another node cancels it, its stock comes back, and the decision is in the
// order's events.
func TestPurchaseLimitSurvivesKill9(t *testing.T) {
	const sku, onHand, buyers, tries = "LIMIT-KILL", 5000, 40, 6
	c := newCluster(t, clusterArgs)
	c.node(1).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
	c.node(1).eventually("PUT", "/v1/limits/two-each", map[string]any{"skus": []string{sku}, "per": "customer", "max_qty": 2,
		"action": "refuse", "note": "live-stream drop: two per buyer"}, 201)

	type attempt struct {
		buyer, key, channel string
	}
	body := func(a attempt) map[string]any {
		return map[string]any{"channel": a.channel, "channel_order_id": a.key, "currency": "CNY",
			"customer": map[string]any{"id": a.buyer, "address": "浙江省 杭州市 西湖区 文三路 90号"},
			"lines":    []map[string]any{{"sku": sku, "qty": 1, "unit_price": "99.00"}}}
	}
	var mu sync.Mutex
	acked := map[string]map[string]string{} // buyer -> key -> order id
	refused := map[string]int{}
	// send answers one attempt definitely: a 201/200 or a 422, retrying
	// anything else (a dead node, 503) on the next node with the same key.
	send := func(a attempt, target int) {
		for try := 0; try < 200; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			r, err := do(ctx, "POST", c.urls[target]+"/v1/orders", body(a), "Idempotency-Key", a.key)
			cancel()
			if err != nil || r.code >= 500 || r.code == 429 {
				target = (target + 1) % 3
				time.Sleep(50 * time.Millisecond)
				continue
			}
			mu.Lock()
			defer mu.Unlock()
			switch r.code {
			case 201, 200:
				var o order
				r.json(t, &o)
				if prev, ok := acked[a.buyer][a.key]; ok && prev != o.ID {
					t.Errorf("key %s answered %s and %s", a.key, prev, o.ID)
				}
				if acked[a.buyer] == nil {
					acked[a.buyer] = map[string]string{}
				}
				acked[a.buyer][a.key] = o.ID
				if n := len(acked[a.buyer]); n > 2 {
					t.Errorf("buyer %s holds %d orders under a limit of 2: %v", a.buyer, n, acked[a.buyer])
				}
			case 422:
				refused[a.buyer]++
			default:
				t.Errorf("key %s: %d %s", a.key, r.code, r.body)
			}
			return
		}
		t.Errorf("key %s: no answer after 200 tries", a.key)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	half := make(chan struct{}, buyers*tries)
	for b := 0; b < buyers; b++ {
		for i := 0; i < tries; i++ {
			wg.Add(1)
			go func(b, i int) {
				defer wg.Done()
				<-start
				a := attempt{buyer: fmt.Sprintf("cu_limit_%d", b), key: fmt.Sprintf("lk-%d-%d", b, i), channel: []string{"douyin", "tmall"}[i%2]}
				send(a, (b+i)%3)
				if i%3 == 0 {
					send(a, (b+i+1)%3) // a client that retries after it was answered
				}
				half <- struct{}{}
			}(b, i)
		}
	}
	close(start)
	for n := 0; n < buyers*tries/3; n++ {
		<-half
	}
	victim := c.leaderOf("sku/"+sku, 1)
	t.Logf("kill -9 node%d, the leader of %s's partition, with %d of %d attempts answered", victim, sku, buyers*tries/3, buyers*tries)
	c.kill9(victim)
	wg.Wait()
	survivor := victim%3 + 1

	held := 0
	for b := 0; b < buyers; b++ {
		buyer := fmt.Sprintf("cu_limit_%d", b)
		if n := len(acked[buyer]); n != 2 {
			t.Errorf("buyer %s ended with %d orders (%d refused), want exactly 2", buyer, n, refused[buyer])
		}
		held += len(acked[buyer])
		for key, id := range acked[buyer] {
			var o order
			c.node(survivor).eventually("GET", "/v1/orders/"+id, nil, 200).json(t, &o)
			if o.Status != "pending_payment" {
				t.Errorf("order %s of %s is %s", id, key, o.Status)
			}
		}
	}
	if s := c.node(survivor).checkConserved(sku); s.Total.Pending != int64(held) {
		t.Fatalf("pending %d, want the %d acknowledged orders' units", s.Total.Pending, held)
	}
	catchUp := c.up()
	t.Logf("node%d restarted and caught up in %s", victim, catchUp.Round(time.Millisecond))
	c.waitAgree(victim, 30*time.Second)

	// The same rule, now holding: a buyer's third order waits for review.
	c.node(victim).eventually("PUT", "/v1/limits/two-each", map[string]any{"skus": []string{sku}, "per": "customer", "max_qty": 2,
		"action": "hold"}, 200, "If-Match", `"1"`)
	var o struct {
		order
		Hold struct {
			Reason   string `json:"reason"`
			Findings []struct {
				Code string `json:"code"`
			} `json:"findings"`
		} `json:"hold"`
	}
	third := attempt{buyer: "cu_limit_0", key: "lk-0-third", channel: "douyin"}
	c.node(victim).eventually("POST", "/v1/orders", body(third), 201, "Idempotency-Key", third.key).json(t, &o)
	if o.Status != "on_hold" || o.Hold.Reason != "limit" || len(o.Hold.Findings) == 0 || o.Hold.Findings[0].Code != "limit_exceeded" {
		t.Fatalf("third order: %+v", o)
	}
	var queue struct {
		Holds []struct {
			Order  string `json:"order"`
			Reason string `json:"reason"`
		} `json:"holds"`
	}
	// The queue is read from the node's replicas: the survivor's follow within moments.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.node(survivor).eventually("GET", "/v1/holds?reason=limit", nil, 200).json(t, &queue)
		if len(queue.Holds) == 1 && queue.Holds[0].Order == o.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("review queue on node%d: %+v", survivor, queue)
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := c.node(survivor).checkConserved(sku)
	c.node(survivor).eventually("POST", "/v1/holds/"+o.ID+"/decide", map[string]any{"decision": "cancel", "reason": "third unit for one buyer"}, 200)
	for deadline := time.Now().Add(20 * time.Second); ; {
		s := c.node(survivor).checkConserved(sku)
		if s.Total.Pending == before.Total.Pending-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled hold's unit was not released: pending %d, was %d", s.Total.Pending, before.Total.Pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var evs struct {
		Events []struct {
			Type    string            `json:"type"`
			Details map[string]string `json:"details"`
		} `json:"events"`
	}
	c.node(victim).eventually("GET", "/v1/orders/"+o.ID+"/events", nil, 200).json(t, &evs)
	var types []string
	for _, e := range evs.Events {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[created hold_decided cancelled]" || evs.Events[1].Details["reason"] != "third unit for one buyer" {
		t.Fatalf("events: %+v", evs.Events)
	}
	// A cancelled order gives its unit back to the buyer's limit: with one
	// of the first two cancelled, the next order is taken, not held.
	for _, id := range acked["cu_limit_0"] {
		c.node(survivor).eventually("POST", "/v1/orders/"+id+"/cancel", map[string]any{"reason": "changed my mind"}, 200)
		break
	}
	again := attempt{buyer: "cu_limit_0", key: "lk-0-again", channel: "tmall"}
	c.node(1).eventually("POST", "/v1/orders", body(again), 201, "Idempotency-Key", again.key).json(t, &o)
	if o.Status != "pending_payment" {
		t.Fatalf("the buyer's next order after a cancel is %s, want pending_payment", o.Status)
	}
	next := attempt{buyer: "cu_limit_0", key: "lk-0-next", channel: "douyin"}
	c.node(2).eventually("POST", "/v1/orders", body(next), 201, "Idempotency-Key", next.key).json(t, &o)
	if o.Status != "on_hold" {
		t.Fatalf("the buyer's order past the limit again is %s, want on_hold", o.Status)
	}
	c.waitAgree(1, 30*time.Second)
}
