package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// A live-stream flash sale: one SKU with 1,000 on hand, 20,000 order requests
// from 64 concurrent clients, 10% of them retries of an earlier request.
// Exactly 1,000 orders are created, every retry gets its first answer, no key
// has two orders, and stock is conserved.
func TestFlashSaleExactlyOnce(t *testing.T) {
	const (
		onHand   = 1000
		requests = 20000
		clients  = 64
		sku      = "LIVE-DROP-1"
	)
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/"+sku+"/stock/WH-SH", map[string]any{"on_hand": onHand}, 200)

	seed := testSeed(t)
	rng := rand.New(rand.NewSource(seed))
	keys := make([]string, requests)
	unique := 0
	for i := range keys {
		if i > 100 && rng.Intn(10) == 0 {
			keys[i] = keys[rng.Intn(i)] // a retry of an earlier request
			continue
		}
		keys[i] = fmt.Sprintf("flash-%d", unique)
		unique++
	}

	type outcome struct {
		code int
		id   string
	}
	var mu sync.Mutex
	results := make(map[string][]outcome, unique)
	work := make(chan string)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				r, err := do(ctx, "POST", n.http+"/v1/orders", orderBody(key, sku, 1), "Idempotency-Key", key)
				if err != nil {
					errs <- err
					return
				}
				var o order
				if r.code == 201 || r.code == 200 {
					r.json(t, &o)
				}
				mu.Lock()
				results[key] = append(results[key], outcome{code: r.code, id: o.ID})
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatalf("request failed: %v", err)
	}
	t.Logf("%d requests in %s: %.0f requests/s", requests, elapsed.Round(time.Millisecond), float64(requests)/elapsed.Seconds())

	created := 0
	ids := map[string]string{}
	for key, outs := range results {
		var first string
		n201 := 0
		for _, o := range outs {
			switch o.code {
			case 201:
				n201++
				first = o.id
			case 200, 409:
			default:
				t.Fatalf("key %s: unexpected status %d", key, o.code)
			}
		}
		if n201 > 1 {
			t.Fatalf("key %s created %d orders", key, n201)
		}
		if n201 == 1 {
			created++
			if other, dup := ids[first]; dup {
				t.Fatalf("order %s created for two keys %s and %s", first, key, other)
			}
			ids[first] = key
			for _, o := range outs {
				if o.code == 200 && o.id != first {
					t.Fatalf("key %s: retry answered order %s, first was %s", key, o.id, first)
				}
				if o.code == 409 {
					t.Fatalf("key %s: a retry of a created order got 409", key)
				}
			}
		} else {
			for _, o := range outs {
				if o.code != 409 {
					t.Fatalf("key %s: %d without a creation", key, o.code)
				}
			}
		}
	}
	if created != onHand {
		t.Fatalf("%d orders created, want exactly %d", created, onHand)
	}
	s := n.checkConserved(sku)
	if s.Total.OnHand != onHand || s.Total.Pending != onHand || s.Total.Available != 0 || s.Total.Committed != 0 {
		t.Fatalf("stock after the sale: %+v", s.Total)
	}
	// Every created order is there, pending payment, holding its one unit.
	for id := range ids {
		var o order
		n.must("GET", "/v1/orders/"+id, nil, 200).json(t, &o)
		if o.Status != "pending_payment" || len(o.Lines) != 1 || o.Lines[0].Warehouse != "WH-SH" {
			t.Fatalf("order %s: %+v", id, o)
		}
	}
}
