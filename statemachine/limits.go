package statemachine

import (
	"fmt"
	"strconv"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/limits"
)

// Purchase limits. The rules (package limits' JSON documents) live with
// the routing catalog, in its partition: g/l\x00{rule}, and bump the
// catalog's generation, so a node's cache of both follows one number. The
// counters live in each SKU's partition, beside its reservations:
// L/{sku}\x00{rule}\x00{scope}\x00{key} holds the qty a buyer's
// reservations not released hold under the rule. A reservation names the
// counters it was added to (ReservationRecord.limit_keys), so its release
// gives the qty back to exactly those.

func limitKey(prefix []byte, id string) []byte { return key(prefix, spaceCatalog, "l", id) }

func limitCounterKey(prefix []byte, sku, counter string) []byte {
	return key(prefix, spaceLimitCounter, sku, counter)
}

func counterName(c *gridpb.LimitCheck) string { return c.Rule + "\x00" + c.Scope + "\x00" + c.Key }

func (t *txn) putLimit(c *gridpb.PutLimitCommand) *Result {
	r, err := limits.Parse(c.Document, "")
	if err != nil {
		return refused(err)
	}
	var prev limits.Rule
	had := t.getJSON(limitKey(t.m.prefix, r.ID), &prev)
	if c.ExpectedVersion != 0 && c.ExpectedVersion != prev.Version {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION,
			Detail: fmt.Sprintf("limit %s is at version %d, not %d", r.ID, prev.Version, c.ExpectedVersion)}
	}
	if !had {
		if n := t.count(key(t.m.prefix, spaceCatalog, "l"), limits.RulesMax); n >= limits.RulesMax {
			return &Result{Detail: fmt.Sprintf("at most %d limits", limits.RulesMax)}
		}
	}
	r.Version = prev.Version + 1
	doc := t.putJSON(limitKey(t.m.prefix, r.ID), r)
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "limit_put",
		Details: map[string]string{"limit": r.ID, "version": strconv.FormatUint(r.Version, 10), "document": string(doc)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: doc}
}

func (t *txn) deleteLimit(c *gridpb.DeleteLimitCommand) *Result {
	var prev limits.Rule
	if !t.getJSON(limitKey(t.m.prefix, c.Id), &prev) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: "no limit " + c.Id}
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != prev.Version {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION,
			Detail: fmt.Sprintf("limit %s is at version %d, not %d", c.Id, prev.Version, c.ExpectedVersion)}
	}
	t.del(limitKey(t.m.prefix, c.Id))
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "limit_deleted",
		Details: map[string]string{"limit": c.Id, "version": strconv.FormatUint(prev.Version, 10)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// ReadLimits reads the purchase-limit rules from the catalog's partition,
// as of the catalog's generation.
func ReadLimits(r Reader, prefix []byte) (*limits.Set, error) {
	gen, err := ReadCatalogGeneration(r, prefix)
	if err != nil {
		return nil, err
	}
	var rules []*limits.Rule
	p := append(key(prefix, spaceCatalog, "l"), 0)
	err = r.Scan(p, prefixEnd(p), limits.RulesMax, func(_, v []byte) error {
		rule, err := limits.Decode(v)
		if err != nil {
			return err
		}
		rules = append(rules, rule)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("statemachine: limits: %w", err)
	}
	return limits.NewSet(gen, rules), nil
}

// overLimit judges a reservation of qty against its limit checks: the
// first check the qty would take past its maximum, or nil.
func (t *txn) overLimit(sku string, qty int64, checks []*gridpb.LimitCheck) (*gridpb.LimitCheck, int64) {
	for _, c := range checks {
		var n gridpb.LimitCounterRecord
		t.get(limitCounterKey(t.m.prefix, sku, counterName(c)), &n)
		if n.Qty+qty > c.MaxQty {
			return c, n.Qty
		}
	}
	return nil, 0
}

// countLimits adds delta to each counter (a counter back at zero is deleted).
func (t *txn) countLimits(sku string, counters []string, delta int64) {
	for _, name := range counters {
		k := limitCounterKey(t.m.prefix, sku, name)
		var n gridpb.LimitCounterRecord
		t.get(k, &n)
		n.Qty += delta
		if n.Qty < 0 {
			panic(fmt.Sprintf("statemachine: limit counter %q of %s below zero", name, sku))
		}
		if n.Qty == 0 {
			t.del(k)
			continue
		}
		t.put(k, &n)
	}
}

// ReadLimitCounter returns the qty a buyer holds of sku under a rule.
func ReadLimitCounter(r Reader, prefix []byte, sku, rule, scope, buyer string) (int64, error) {
	var n gridpb.LimitCounterRecord
	if _, err := getProto(r, limitCounterKey(prefix, sku, rule+"\x00"+scope+"\x00"+buyer), &n); err != nil {
		return 0, fmt.Errorf("read limit counter: %w", err)
	}
	return n.Qty, nil
}

// limitDetail says why a reservation went past a limit.
func limitDetail(c *gridpb.LimitCheck, sku string, held, qty int64) string {
	return fmt.Sprintf("purchase limit %s: at most %d of %s per %s; this %s holds %d, the order asks %d more",
		c.Rule, c.MaxQty, sku, c.Scope, c.Scope, held, qty)
}
