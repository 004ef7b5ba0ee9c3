package statemachine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/limits"
)

// Purchase limits. The rules (package limits' JSON documents) live with
// the routing catalog, in its partition: g/l\x00{rule}, and bump the
// catalog's generation, so a node's cache of both follows one number; a
// copy of each lives in the partition of every SKU it names (below). The
// counters live in each SKU's partition, beside its reservations:
// L/{sku}\x00{rule}\x00{from}\x00{scope}\x00{key} holds the qty a buyer's
// reservations not released hold under the rule. A reservation names the
// counters it was added to (ReservationRecord.limit_keys), so its release
// gives the qty back to exactly those.

func limitKey(prefix []byte, id string) []byte { return key(prefix, spaceCatalog, "l", id) }

func limitCounterKey(prefix []byte, sku, counter string) []byte {
	return key(prefix, spaceLimitCounter, sku, counter)
}

func (t *txn) putLimit(c *gridpb.PutLimitCommand) *Result {
	r, err := limits.Parse(c.Document, "")
	if err != nil {
		return refused(err)
	}
	var prev limits.Rule
	had := t.getJSON(limitKey(t.m.prefix, r.ID), &prev)
	live := prev.Version
	if prev.Deleted {
		live = 0 // a tombstone: the rule is new again, its versions go on
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != live {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION,
			Detail: fmt.Sprintf("limit %s is at version %d, not %d", r.ID, live, c.ExpectedVersion)}
	}
	if !had {
		if n := t.count(key(t.m.prefix, spaceCatalog, "l"), limits.RulesMax); n >= limits.RulesMax {
			return &Result{Detail: fmt.Sprintf("at most %d limits (deleted ones included)", limits.RulesMax)}
		}
	}
	r.Version, r.Revision = prev.Version+1, t.index
	r.Retired = retiredSKUs(&prev, r.SKUs)
	doc := t.putJSON(limitKey(t.m.prefix, r.ID), r)
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "limit_put",
		Details: map[string]string{"limit": r.ID, "version": strconv.FormatUint(r.Version, 10), "document": string(doc)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: doc}
}

// retiredSKUs are the SKUs prev (and the versions before it) named that
// now does not: their copies are taken out with the change, and again with
// every later one (a fan-out that failed part-way is finished by the next
// change), at most SKUsPerRuleMax of them.
func retiredSKUs(prev *limits.Rule, now []string) []string {
	var out []string
	add := func(sku string) {
		if !slices.Contains(now, sku) && !slices.Contains(out, sku) && len(out) < limits.SKUsPerRuleMax {
			out = append(out, sku)
		}
	}
	if !prev.Deleted {
		for _, sku := range prev.SKUs {
			add(sku)
		}
	}
	for _, sku := range prev.Retired {
		add(sku)
	}
	return out
}

// deleteLimit leaves a tombstone in the catalog (the rule's SKUs, all
// retired, and its next version and revision): the caller takes the
// copies out of the SKUs, and a retry of a delete whose fan-out failed
// finds them again (REPLAYED, with the tombstone).
func (t *txn) deleteLimit(c *gridpb.DeleteLimitCommand) *Result {
	var prev limits.Rule
	if !t.getJSON(limitKey(t.m.prefix, c.Id), &prev) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: "no limit " + c.Id}
	}
	if prev.Deleted {
		raw, _, err := readRaw(t.b, limitKey(t.m.prefix, c.Id))
		if err != nil {
			panic(fmt.Sprintf("statemachine: read limit %s: %v", c.Id, err))
		}
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Document: raw}
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != prev.Version {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION,
			Detail: fmt.Sprintf("limit %s is at version %d, not %d", c.Id, prev.Version, c.ExpectedVersion)}
	}
	tomb := prev
	tomb.Retired = retiredSKUs(&prev, nil)
	tomb.SKUs, tomb.Deleted, tomb.Version, tomb.Revision = nil, true, prev.Version+1, t.index
	doc := t.putJSON(limitKey(t.m.prefix, c.Id), &tomb)
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "limit_deleted",
		Details: map[string]string{"limit": c.Id, "version": strconv.FormatUint(prev.Version, 10)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: doc}
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
		if limits.IsTombstone(v) {
			return nil
		}
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

// The rules of a SKU live in its partition too (R/{sku}: SkuLimitsRecord),
// put there by set_sku_limit for every SKU a rule names when the rule is
// put (package catalog): a reservation is judged by its own partition's
// rules, the same on every replica and whatever a node's cache holds.

func skuLimitsKey(prefix []byte, sku string) []byte { return key(prefix, spaceSkuLimits, sku) }

// skuLimitRulesMax bounds the rules one SKU keeps.
const skuLimitRulesMax = limits.RulesMax

func (t *txn) setSkuLimit(c *gridpb.SetSkuLimitCommand) *Result {
	r := c.Rule
	if c.Sku == "" || r == nil || r.Rule == "" {
		return &Result{Detail: "set_sku_limit: no sku or rule"}
	}
	if !c.Delete {
		switch {
		case r.Per != limits.PerCustomer && r.Per != limits.PerAddress && r.Per != limits.PerDevice:
			return &Result{Detail: "set_sku_limit: per must be customer, address or device"}
		case r.MaxQty < 1 || r.MaxQty > limits.QtyMax:
			return &Result{Detail: fmt.Sprintf("set_sku_limit: max_qty outside 1..%d", limits.QtyMax)}
		}
	}
	k := skuLimitsKey(t.m.prefix, c.Sku)
	var rec gridpb.SkuLimitsRecord
	t.get(k, &rec)
	i := slices.IndexFunc(rec.Rules, func(x *gridpb.SkuLimitRule) bool { return x.Rule == r.Rule })
	if i >= 0 && (rec.Rules[i].Version > r.Version || rec.Rules[i].Version == r.Version && rec.Rules[i].Deleted != c.Delete) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_STALE, Sku: c.Sku,
			Detail: fmt.Sprintf("%s has revision %d of limit %s, not older %d", c.Sku, rec.Rules[i].Version, r.Rule, r.Version)}
	}
	if i >= 0 && rec.Rules[i].Version == r.Version {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Sku: c.Sku}
	}
	next := r
	if c.Delete {
		// A tombstone: a late copy of an older put finds it and is STALE.
		next = &gridpb.SkuLimitRule{Rule: r.Rule, Version: r.Version, Deleted: true}
	}
	if i >= 0 {
		rec.Rules[i] = next
	} else {
		if len(rec.Rules) >= skuLimitRulesMax {
			return &Result{Detail: fmt.Sprintf("set_sku_limit: %s has %d limits (deleted ones included), at most %d", c.Sku, len(rec.Rules), skuLimitRulesMax)}
		}
		rec.Rules = append(rec.Rules, next)
		slices.SortFunc(rec.Rules, func(a, b *gridpb.SkuLimitRule) int { return strings.Compare(a.Rule, b.Rule) })
	}
	t.put(k, &rec)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Sku: c.Sku}
}

// skuLimits are the purchase-limit rules of sku.
func (t *txn) skuLimits(sku string) []*gridpb.SkuLimitRule {
	var rec gridpb.SkuLimitsRecord
	t.get(skuLimitsKey(t.m.prefix, sku), &rec)
	return rec.Rules
}

// ReadSkuLimits returns the purchase-limit rules a SKU's partition has for
// it, the deleted ones' tombstones included.
func ReadSkuLimits(r Reader, prefix []byte, sku string) ([]*gridpb.SkuLimitRule, error) {
	var rec gridpb.SkuLimitsRecord
	if _, err := getProto(r, skuLimitsKey(prefix, sku), &rec); err != nil {
		return nil, fmt.Errorf("read limits of %s: %w", sku, err)
	}
	return rec.Rules, nil
}

// activeLimit reports whether r applies at (unix nanos) on channel.
func activeLimit(r *gridpb.SkuLimitRule, at int64, channel string) bool {
	if r.FromUnixNano != 0 && at < r.FromUnixNano || r.ToUnixNano != 0 && at >= r.ToUnixNano {
		return false
	}
	return len(r.Channels) == 0 || slices.Contains(r.Channels, channel)
}

// buyerKey is what r counts b by: the customer, or the address's or
// device's keyed hash ("" when the order names none).
func buyerKey(r *gridpb.SkuLimitRule, b *gridpb.LimitBuyer) string {
	switch r.Per {
	case limits.PerCustomer:
		return b.GetCustomer()
	case limits.PerAddress:
		return b.GetAddress()
	case limits.PerDevice:
		return b.GetDevice()
	}
	return ""
}

// The findings of purchase limits (ReserveItemResult.limit_code).
const (
	// CodeLimitExceeded: the order takes a buyer past a limit.
	CodeLimitExceeded = "limit_exceeded"
	// CodeLimitBuyerUnknown: a limit counts per address or device, and
	// the order names none.
	CodeLimitBuyerUnknown = "limit_buyer_unknown"
)

// limitVerdict is a reservation's judgement by its SKU's limits.
type limitVerdict struct {
	// refused: nothing may be reserved; held names the first rule that holds.
	refused bool
	held    string
	detail  string
	code    string
	// counters are the counters the reservation, if made, adds its qty to.
	counters []string
}

// judgeLimits judges a reservation of qty by b against rules at t.at:
// the first rule that refuses refuses; otherwise the first that holds
// holds. A rule that counts per a buyer key the order does not name
// applies its action too (a buyer must not escape a limit by leaving out
// its device).
func (t *txn) judgeLimits(sku string, qty int64, b *gridpb.LimitBuyer, rules []*gridpb.SkuLimitRule) limitVerdict {
	var v limitVerdict
	for _, r := range rules {
		if r.Deleted || !activeLimit(r, t.at, b.GetChannel()) {
			continue
		}
		k := buyerKey(r, b)
		var detail string
		code := CodeLimitExceeded
		if k == "" {
			code = CodeLimitBuyerUnknown
			detail = fmt.Sprintf("purchase limit %s counts %s per %s, and the order names no %s", r.Rule, sku, r.Per, r.Per)
		} else {
			name := counterName(r, k)
			v.counters = append(v.counters, name)
			var n gridpb.LimitCounterRecord
			t.get(limitCounterKey(t.m.prefix, sku, name), &n)
			if n.Qty+qty <= r.MaxQty {
				continue
			}
			detail = fmt.Sprintf("purchase limit %s: at most %d of %s per %s; this %s holds %d, the order asks %d more",
				r.Rule, r.MaxQty, sku, r.Per, r.Per, n.Qty, qty)
		}
		if !r.Hold {
			return limitVerdict{refused: true, held: r.Rule, detail: detail, code: code}
		}
		if v.held == "" {
			v.held, v.detail, v.code = r.Rule, detail, code
		}
	}
	return v
}

// counterName names a buyer's counter under a rule: in the rule's sale
// window (its start: a rule moved to another window counts afresh, an
// edit within one keeps counting), per its scope.
func counterName(r *gridpb.SkuLimitRule, buyer string) string {
	return r.Rule + "\x00" + strconv.FormatInt(r.FromUnixNano, 10) + "\x00" + r.Per + "\x00" + buyer
}

// ReadLimitCounter returns the qty a buyer holds of sku under a rule whose
// window starts at from (unix nanos; 0: open).
func ReadLimitCounter(r Reader, prefix []byte, sku, rule string, from int64, scope, buyer string) (int64, error) {
	var n gridpb.LimitCounterRecord
	if _, err := getProto(r, limitCounterKey(prefix, sku, counterName(&gridpb.SkuLimitRule{Rule: rule, FromUnixNano: from, Per: scope}, buyer)), &n); err != nil {
		return 0, fmt.Errorf("read limit counter: %w", err)
	}
	return n.Qty, nil
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
