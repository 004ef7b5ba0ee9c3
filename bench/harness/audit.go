package harness

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

// Check is one audit check.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// AuditResult is every check of a run.
type AuditResult struct {
	Passed  bool    `json:"passed"`
	Skipped bool    `json:"skipped,omitempty"`
	Checks  []Check `json:"checks"`
}

func (a *AuditResult) add(name string, passed bool, format string, args ...any) {
	detail := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(fmt.Sprintf(format, args...)), ";"))
	a.Checks = append(a.Checks, Check{Name: name, Passed: passed, Detail: detail})
	if !passed {
		a.Passed = false
	}
}

type stockLevel struct {
	Warehouse string `json:"warehouse"`
	OnHand    int64  `json:"on_hand"`
	Available int64  `json:"available"`
	Pending   int64  `json:"pending"`
	Committed int64  `json:"committed"`
}

// parallel runs f over items with n workers, stopping at the first error.
func parallel[T any](items []T, n int, f func(T) error) error {
	work := make(chan T)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := f(it); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range items {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop {
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
	return first
}

// audit checks the run's outcome against the node's state.
func audit(ctx context.Context, o *Options, sc *Scenario, h *httpTransport, t Transport, tr *tracker, progress io.Writer) AuditResult {
	a := AuditResult{Passed: true}
	say := func(s string) {
		if progress != nil {
			fmt.Fprintf(progress, "audit: %s\n", s)
		}
	}

	// One order per idempotency key: every answer to a key named the same
	// order, and a retry now still does.
	tr.mu.Lock()
	violations := append([]string{}, tr.violations...)
	keys := make([]string, 0, len(tr.ids))
	for k := range tr.ids {
		keys = append(keys, k)
	}
	tr.mu.Unlock()
	sort.Strings(keys)
	if len(keys) > replaySample {
		step := len(keys) / replaySample
		sample := keys[:0:0]
		for i := 0; i < len(keys); i += step {
			sample = append(sample, keys[i])
		}
		keys = sample
	}
	say(fmt.Sprintf("retrying %d acknowledged orders", len(keys)))
	var mu sync.Mutex
	_ = parallel(keys, setupWorkers, func(k string) error {
		tr.mu.Lock()
		req, want := tr.reqs[k], tr.ids[k]
		tr.mu.Unlock()
		out := t.Create(ctx, req)
		if out.Class != Replayed || out.ID != want {
			mu.Lock()
			if len(violations) < 20 {
				violations = append(violations, fmt.Sprintf("retry of %s answered %s %s, first %s", k, out.Class, out.ID, want))
			}
			mu.Unlock()
		}
		return nil
	})
	a.add("one order per idempotency key", len(violations) == 0, "%d keys acknowledged, %d retried now; %s", len(tr.ids), len(keys), strings.Join(violations, "; "))

	// Stock: conserved everywhere, nothing oversold.
	skus := make([]string, 0, len(sc.Stock))
	for s := range sc.Stock {
		skus = append(skus, s)
	}
	sort.Strings(skus)
	say(fmt.Sprintf("reading the stock of %d SKUs", len(skus)))
	var bad []string
	err := parallel(skus, setupWorkers, func(sku string) error {
		var s struct {
			Warehouses []stockLevel `json:"warehouses"`
			Total      stockLevel   `json:"total"`
		}
		if err := h.getJSON(ctx, "/v1/skus/"+url.PathEscape(sku), &s); err != nil {
			return err
		}
		var initial int64
		for _, q := range sc.Stock[sku] {
			initial += q
		}
		tr.mu.Lock()
		acked := tr.qty[sku]
		tr.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		for _, w := range append(s.Warehouses, s.Total) {
			if w.OnHand != w.Available+w.Pending+w.Committed || w.Available < 0 || w.Pending < 0 || w.Committed < 0 {
				bad = append(bad, fmt.Sprintf("%s@%s not conserved: %+v", sku, w.Warehouse, w))
			}
		}
		if acked > initial {
			bad = append(bad, fmt.Sprintf("%s oversold: %d acknowledged, %d on hand", sku, acked, initial))
		}
		if sc.Name != "lifecycle" && s.Total.Pending+s.Total.Committed < acked {
			bad = append(bad, fmt.Sprintf("%s: %d acknowledged, only %d reserved", sku, acked, s.Total.Pending+s.Total.Committed))
		}
		return nil
	})
	if err != nil {
		bad = append(bad, err.Error())
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	a.add("no oversell; on_hand = available + pending + committed", len(bad) == 0, "%d SKUs checked; %s", len(skus), strings.Join(bad, "; "))

	// Every acknowledged order is there, in the status it should have.
	tr.mu.Lock()
	ids := make([]string, 0, len(tr.ids))
	for _, id := range tr.ids {
		if ids = append(ids, id); len(ids) >= auditOrdersMax {
			break
		}
	}
	tr.mu.Unlock()
	say(fmt.Sprintf("reading %d acknowledged orders", len(ids)))
	var missing []string
	err = parallel(ids, setupWorkers, func(id string) error {
		var ord struct {
			Status string `json:"status"`
		}
		err := h.getJSON(ctx, "/v1/orders/"+id, &ord)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			missing = append(missing, err.Error())
		} else if want := sc.expected(id); ord.Status != want {
			missing = append(missing, fmt.Sprintf("%s is %s, expected %s", id, ord.Status, want))
		}
		return nil
	})
	if err != nil {
		missing = append(missing, err.Error())
	}
	n := len(missing)
	if n > 5 {
		missing = append(missing[:5], fmt.Sprintf("and %d more", n-5))
	}
	a.add("every acknowledged order present with its expected status", n == 0, "%d orders read; %s", len(ids), strings.Join(missing, "; "))

	if o.Ledger {
		skus := map[string]int{}
		tr.mu.Lock()
		for k, id := range tr.ids {
			distinct := map[string]bool{}
			for _, l := range tr.reqs[k].Lines {
				distinct[l.Sku] = true
			}
			skus[id] = len(distinct)
		}
		tr.mu.Unlock()
		auditLedger(ctx, &a, h, ids, skus, say)
	}
	return a
}

// auditLedger checks that every event of the run is in the audit log: for
// every acknowledged order, its proof bundle verifies against the log's key
// and holds all the order's lifecycle events and a reservation of each of
// its SKUs. It waits (bounded) for the ledger to catch up.
func auditLedger(ctx context.Context, a *AuditResult, h *httpTransport, ids []string, skus map[string]int, say func(string)) {
	code, _, raw, err := h.do(ctx, "GET", "/v1/ledger/key", nil)
	if err != nil || code != 200 {
		a.add("every event in the audit log", false, "GET /v1/ledger/key: %d %v", code, err)
		return
	}
	key := strings.TrimSpace(string(raw))
	v, err := checkpoint.NewVerifier(key)
	if err != nil {
		a.add("every event in the audit log", false, "key: %v", err)
		return
	}
	say(fmt.Sprintf("verifying the audit log's proofs of %d orders", len(ids)))
	var mu sync.Mutex
	var bad []string
	var events, done int
	deadline := time.Now().Add(ledgerCatchUpMax)
	_ = parallel(ids, ledgerAuditWorkers, func(id string) error {
		for {
			problem, n := checkOrderInLog(ctx, h, v, id, skus[id])
			if problem == "" || time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				if problem != "" {
					bad = append(bad, id+": "+problem)
				}
				events += n
				if done++; done%10_000 == 0 {
					say(fmt.Sprintf("%d of %d orders' proofs verified", done, len(ids)))
				}
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	n := len(bad)
	if n > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", n-5))
	}
	a.add("every event in the audit log", n == 0, "%d events of %d orders verified in proof bundles against %s; %s", events, len(ids), key, strings.Join(bad, "; "))
}

// checkOrderInLog checks one order's bundle; it answers what is wrong ("":
// nothing) and how many events the bundle proved.
func checkOrderInLog(ctx context.Context, h *httpTransport, v *checkpoint.Verifier, id string, skus int) (string, int) {
	var evs struct {
		Events []struct {
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	if err := h.getJSON(ctx, "/v1/orders/"+id+"/events", &evs); err != nil {
		return err.Error(), 0
	}
	code, _, raw, err := h.do(ctx, "GET", "/v1/orders/"+id+"/proof", nil)
	switch {
	case err != nil:
		return err.Error(), 0
	case code == 503:
		return "not in a checkpoint yet", 0
	case code != 200:
		return fmt.Sprintf("proof: %d %s", code, raw), 0
	}
	got, err := ledger.VerifyBundle(raw, v)
	if err != nil {
		return err.Error(), 0
	}
	orderEvents, reserved := 0, 0
	for _, e := range got.Entries {
		switch {
		case e.Event.Kind == ledger.KindOrder:
			orderEvents++
		case e.Event.Type == "reserved":
			reserved++
		}
	}
	if orderEvents != len(evs.Events) {
		return fmt.Sprintf("the log has %d of its %d events", orderEvents, len(evs.Events)), len(got.Entries)
	}
	if reserved < skus {
		return fmt.Sprintf("the log has %d reservations of its %d SKUs", reserved, skus), len(got.Entries)
	}
	return "", len(got.Entries)
}
