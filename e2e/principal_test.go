package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

// Every event names the principal that caused it, batched or not: two
// intake tokens create orders of one hot SKU at once, so their
// reservations share SKU-grain proposals (and their orders share
// create_orders entries), and two ops tokens pay them at once (shared
// transitions and settle_batch entries); the audit export names, on each
// order's created and reserved events, the token that created it, and on
// its paid and committed events, the token that paid it.
func TestAuditNamesEachBatchedCallersPrincipal(t *testing.T) {
	file, tok := makeTokens(t,
		tokenSpec{name: "dy-intake", role: "intake", channels: "douyin"},
		tokenSpec{name: "tm-intake", role: "intake", channels: "tmall"},
		tokenSpec{name: "wms-a", role: "ops"},
		tokenSpec{name: "wms-b", role: "ops"},
		tokenSpec{name: "dpo", role: "compliance"},
	)
	n := newNode(t, "--auth-tokens-file", file, "--ledger-checkpoint-interval", "100ms")
	n.start()
	as := func(name string) []string { return bearerHeader(tok[name]) }
	const sku = "HOT-PR-1"
	n.must("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": 100000}, 200, as("wms-a")...)

	// post sends one request until it is answered wantCode; 429 and 503
	// are retried (with the same Idempotency-Key, if any).
	post := func(path string, body any, wantCode int, headers ...string) (response, error) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			r, err := do(context.Background(), "POST", n.http+path, body, headers...)
			if err == nil && r.code == wantCode {
				return r, nil
			}
			if time.Now().After(deadline) || (err == nil && r.code != 429 && r.code != 503) {
				if err != nil {
					return r, fmt.Errorf("POST %s: %w", path, err)
				}
				return r, fmt.Errorf("POST %s: status %d, want %d: %s", path, r.code, wantCode, r.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// concurrently runs fn for 0..count-1 at once and fails on the first error.
	concurrently := func(count int, fn func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, count)
		start := make(chan struct{})
		for i := 0; i < count; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = fn(i)
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	creator := map[string]string{} // order id -> the token that created it
	payer := map[string]string{}   // order id -> the token that paid it
	var mu sync.Mutex
	var ids []string
	const perToken = 50
	events := uint64(1) // the stock set
	var all *ledger.VerifiedExport
	for round := 0; ; round++ {
		concurrently(2*perToken, func(i int) error {
			who, channel := "dy-intake", "douyin"
			if i%2 == 1 {
				who, channel = "tm-intake", "tmall"
			}
			key := fmt.Sprintf("pr-%d-%d", round, i)
			body := orderBody(key, sku, 1)
			body["channel"] = channel
			body["customer"] = map[string]any{"id": "cust-" + key}
			r, err := post("/v1/orders", body, 201, append(as(who), "Idempotency-Key", key)...)
			if err != nil {
				return err
			}
			var o order
			if err := json.Unmarshal(r.body, &o); err != nil || o.ID == "" {
				return fmt.Errorf("created order %s: %v", r.body, err)
			}
			mu.Lock()
			defer mu.Unlock()
			creator[o.ID] = who
			ids = append(ids, o.ID)
			return nil
		})
		events += 2 * 2 * perToken // created and reserved
		all = waitForExport(t, n, tok["dpo"], events)
		mixed := mixedEntries(all, "stock/reserved", creator)
		t.Logf("round %d: %d reserve_batch entries of both intake tokens' orders, %d create_orders entries",
			round, mixed, mixedEntries(all, "order/created", creator))
		if mixed > 0 {
			break
		}
		if round == 4 {
			t.Fatalf("no SKU-grain proposal held both tokens' reservations in %d rounds: nothing was proven", round+1)
		}
	}

	// Pay every order, each by one of two ops tokens, all at once.
	concurrently(len(ids), func(i int) error {
		who := "wms-a"
		if (i/3)%2 == 1 {
			who = "wms-b"
		}
		if _, err := post("/v1/orders/"+ids[i]+"/pay", nil, 200, as(who)...); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		payer[ids[i]] = who
		return nil
	})
	events += uint64(2 * len(ids)) // paid and committed
	all = waitForExport(t, n, tok["dpo"], events)
	t.Logf("%d transitions entries and %d settle_batch entries of both ops tokens' orders",
		mixedEntries(all, "order/paid", payer), mixedEntries(all, "stock/committed", payer))

	want := map[string]map[string]string{
		"order/created": creator, "stock/reserved": creator,
		"order/paid": payer, "stock/committed": payer,
	}
	seen := map[string]int{}
	for _, e := range all.Events {
		kt := e.Kind + "/" + e.Type
		if e.Order == "" || want[kt] == nil {
			continue
		}
		w, ok := want[kt][e.Order]
		if !ok {
			t.Errorf("%s event of an order not created here: %s", kt, e.Order)
			continue
		}
		seen[kt+"/"+e.Order]++
		if e.Principal != w {
			t.Errorf("%s event of order %s (partition %d, raft index %d) names %q, want %q", kt, e.Order, e.Partition, e.RaftIndex, e.Principal, w)
		}
	}
	for kt := range want {
		for _, id := range ids {
			if c := seen[kt+"/"+id]; c != 1 {
				t.Errorf("order %s: %d %s events, want 1", id, c, kt)
			}
		}
	}
}

// waitForExport waits until the log holds at least size events, all in a
// checkpoint, and returns the whole log's export, verified.
func waitForExport(t *testing.T, n *node, token string, size uint64) *ledger.VerifiedExport {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var lg struct {
			Size           uint64 `json:"size"`
			CheckpointSize uint64 `json:"checkpoint_size"`
		}
		n.must("GET", "/v1/ledger", nil, 200, bearerHeader(token)...).json(t, &lg)
		if lg.Size >= size && lg.CheckpointSize == lg.Size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log holds %+v, want %d events in a checkpoint", lg, size)
		}
		time.Sleep(100 * time.Millisecond)
	}
	v, err := checkpoint.NewVerifier(ledgerKey(t, n))
	if err != nil {
		t.Fatal(err)
	}
	r := n.must("GET", "/v1/audit/export", nil, 200, bearerHeader(token)...)
	got, _, err := ledger.VerifyExport(bytes.NewReader(r.body), v, 1000)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return got
}

// mixedEntries counts the Raft entries (partition and index) whose events
// of kind/type belong to orders of different callers, by callerOf.
func mixedEntries(x *ledger.VerifiedExport, kindType string, callerOf map[string]string) int {
	type entry struct {
		partition uint32
		index     uint64
	}
	callers := map[entry]map[string]bool{}
	for _, e := range x.Events {
		c, ok := callerOf[e.Order]
		if e.Kind+"/"+e.Type != kindType || !ok {
			continue
		}
		k := entry{e.Partition, e.RaftIndex}
		if callers[k] == nil {
			callers[k] = map[string]bool{}
		}
		callers[k][c] = true
	}
	mixed := 0
	for _, cs := range callers {
		if len(cs) > 1 {
			mixed++
		}
	}
	return mixed
}
