package statemachine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Multi-channel state: identity links from a key hash to a customer
// (spaceIdentity, in the key hash's partition), the key hashes linked to
// each customer and its recent purchases (spaceIdentityList,
// spacePurchases, in the customer's partition), each SKU's recent channel
// prices and its price conflicts (spacePrices, spacePriceConflict, in the
// SKU's partition), and annotation markers (spaceAnnotation, in the
// order's partition). Key layouts: keySpaces (keys.go).

func identityKey(prefix []byte, keyHash string) []byte { return key(prefix, spaceIdentity, keyHash) }

func purchasesKey(prefix []byte, customer string) []byte {
	return key(prefix, spacePurchases, customer)
}

// identityListPrefix holds j/{customer}\x00{key hash}: the fingerprints
// linked to a customer, in the customer's partition.
func identityListPrefix(prefix []byte, customer string) []byte {
	return append(key(prefix, spaceIdentityList, customer), 0)
}

func pricesKey(prefix []byte, sku string) []byte { return key(prefix, spacePrices, sku) }

func conflictKey(prefix []byte, at int64, sku string) []byte {
	return timedKey(prefix, spacePriceConflict, at, sku)
}

func annotationKey(prefix []byte, order, dedupe string) []byte {
	return key(prefix, spaceAnnotation, order, dedupe)
}

// Bounds of the recent lists: a list never grows past these, whatever the window.
const (
	recentPurchasesMax = 256
	recentPricesMax    = 256
)

// annotateOrder adds an event to an order without changing it, once per dedupe key.
func (t *txn) annotateOrder(c *gridpb.AnnotateOrderCommand) *Result {
	o, ok := t.order(c.OrderId)
	if !ok {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	if c.Dedupe != "" {
		mk := annotationKey(t.m.prefix, c.OrderId, c.Dedupe)
		if _, seen, err := readRaw(t.b, mk); err != nil {
			panic(fmt.Sprintf("statemachine: read annotation: %v", err))
		} else if seen {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: o}
		}
		if err := t.b.Set(mk, nil, nil); err != nil {
			panic(fmt.Sprintf("statemachine: set: %v", err))
		}
	}
	t.addEvent(o, c.Type, c.Details)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}
}

// linkIdentity links a key hash to a customer unless it is linked; the
// detail answers the customer it is linked to.
func (t *txn) linkIdentity(c *gridpb.LinkIdentityCommand) *Result {
	k := identityKey(t.m.prefix, c.KeyHash)
	v, ok, err := readRaw(t.b, k)
	if err != nil {
		panic(fmt.Sprintf("statemachine: read identity: %v", err))
	}
	if ok {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Detail: string(v)}
	}
	if err := t.b.Set(k, []byte(c.Customer), nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Detail: c.Customer}
}

func (t *txn) rememberIdentity(c *gridpb.RememberIdentityCommand) *Result {
	if err := t.b.Set(append(identityListPrefix(t.m.prefix, c.Customer), c.KeyHash...), nil, nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// unlinkIdentity removes a fingerprint's link to a customer (an erasure).
func (t *txn) unlinkIdentity(c *gridpb.UnlinkIdentityCommand) *Result {
	k := identityKey(t.m.prefix, c.KeyHash)
	v, ok, err := readRaw(t.b, k)
	if err != nil {
		panic(fmt.Sprintf("statemachine: read identity: %v", err))
	}
	if ok && string(v) == c.Customer {
		t.del(k)
		t.m.purge.Store(true)
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// IdentityHashes lists the fingerprints remembered for a customer.
func IdentityHashes(r Reader, prefix []byte, customer string) ([]string, error) {
	p := identityListPrefix(prefix, customer)
	var out []string
	err := r.Scan(p, prefixEnd(p), 0, func(k, _ []byte) error {
		out = append(out, string(k[len(p):]))
		return nil
	})
	return out, err
}

// ReadIdentity returns the customer a key hash is linked to.
func ReadIdentity(r Reader, prefix []byte, keyHash string) (string, bool, error) {
	v, ok, err := r.Get(identityKey(prefix, keyHash))
	return string(v), ok, err
}

// notePurchase judges a purchase against the customer's recent ones: the
// first earlier purchase from another channel, inside the window, for the
// same SKUs is its duplicate. A purchase noted before (a retry) answers its
// first verdict.
func (t *txn) notePurchase(c *gridpb.NotePurchaseCommand) *Result {
	k := purchasesKey(t.m.prefix, c.Customer)
	var recent gridpb.RecentPurchases
	t.get(k, &recent)
	p := c.Purchase
	for _, q := range recent.Purchases {
		if q.OrderId == p.OrderId {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Purchase: q}
		}
	}
	kept := recent.Purchases[:0]
	for _, q := range recent.Purchases {
		if p.AtUnixNano-q.AtUnixNano <= c.WindowNanos {
			kept = append(kept, q)
		}
	}
	for _, q := range kept {
		if q.Channel != p.Channel && slices.Equal(q.Skus, p.Skus) && q.DuplicateOf == "" {
			p.DuplicateOf, p.DuplicateChannel = q.OrderId, q.Channel
			break
		}
	}
	kept = append(kept, p)
	if len(kept) > recentPurchasesMax {
		kept = kept[len(kept)-recentPurchasesMax:]
	}
	t.put(k, &gridpb.RecentPurchases{Purchases: kept})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Purchase: p}
}

// notePrice compares a channel's price of a SKU with the other channels'
// prices noted around the order's own transaction time (within the window
// either side), whatever order the orders arrive in: the nearest
// different price in time is the conflict, recorded with the rule's
// resolution, the earlier-placed order first. Prices are kept by when
// they were noted (priceRetention after the window), not by the
// transaction times of later orders, so an order placed later never evicts
// an earlier price a late-arriving order must be compared with; the list
// is bounded (recentPricesMax, the earliest placed dropped first).
func (t *txn) notePrice(c *gridpb.NotePriceCommand) *Result {
	k := pricesKey(t.m.prefix, c.Sku)
	var recent gridpb.RecentPrices
	t.get(k, &recent)
	p := c.Price
	if p == nil || c.WindowNanos < 0 || c.WindowNanos > maxPriceWindow.Nanoseconds() {
		return &Result{Detail: "note_price: a price and a window of 0..7 days are required"}
	}
	p.NotedUnixNano = t.at
	kept := recent.Prices[:0]
	var conflict *gridpb.PriceConflictRecord
	var nearest int64
	for _, q := range recent.Prices {
		if q.OrderId == p.OrderId {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED}
		}
		noted := q.NotedUnixNano
		if noted == 0 {
			noted = q.AtUnixNano // noted before prices kept the time
		}
		if t.at-noted > c.WindowNanos+priceRetention.Nanoseconds() {
			continue
		}
		kept = append(kept, q)
		gap := p.AtUnixNano - q.AtUnixNano
		if gap < 0 {
			gap = -gap
		}
		if gap > c.WindowNanos || q.Channel == p.Channel || q.Currency != p.Currency || q.UnitPrice == p.UnitPrice {
			continue
		}
		if conflict == nil || gap < nearest {
			first, second := q, p
			if p.AtUnixNano < q.AtUnixNano {
				first, second = p, q
			}
			nearest = gap
			conflict = &gridpb.PriceConflictRecord{Sku: c.Sku, First: first, Second: second, Rule: c.Rule, AtUnixNano: t.at,
				Resolution: resolvePrice(c.Rule, first, second)}
		}
	}
	// Keep the list in transaction-time order, so the bound drops the
	// earliest placed.
	i, _ := slices.BinarySearchFunc(kept, p.AtUnixNano, func(q *gridpb.ChannelPrice, at int64) int { return cmp.Compare(q.AtUnixNano, at+1) })
	kept = slices.Insert(kept, i, p)
	if len(kept) > recentPricesMax {
		kept = kept[len(kept)-recentPricesMax:]
	}
	t.put(k, &gridpb.RecentPrices{Prices: kept})
	if conflict != nil {
		t.put(conflictKey(t.m.prefix, t.at, c.Sku), conflict)
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Conflict: conflict}
}

// priceRetention is how long after the window a noted price stays to be
// compared with orders that arrive late (a connector's pull, a platform's
// delayed push).
const priceRetention = 24 * time.Hour

// maxPriceWindow bounds a price window (channels.Config's prices.window).
const maxPriceWindow = 7 * 24 * time.Hour

// resolvePrice says what a price rule decides for two prices of one SKU.
func resolvePrice(rule string, a, b *gridpb.ChannelPrice) string {
	if rule == "lowest" {
		low := a
		if decimalLess(b.UnitPrice, a.UnitPrice) {
			low = b
		}
		return fmt.Sprintf("lowest price wins: %s (%s, order %s); the other order is flagged for a price adjustment", low.UnitPrice, low.Channel, low.OrderId)
	}
	return fmt.Sprintf("price at transaction time stands: %s on %s, %s on %s", a.UnitPrice, a.Channel, b.UnitPrice, b.Channel)
}

// decimalLess compares two non-negative decimal strings.
func decimalLess(a, b string) bool {
	aw, af, _ := strings.Cut(a, ".")
	bw, bf, _ := strings.Cut(b, ".")
	if len(aw) != len(bw) {
		return len(aw) < len(bw)
	}
	if aw != bw {
		return aw < bw
	}
	for len(af) < len(bf) {
		af += "0"
	}
	for len(bf) < len(af) {
		bf += "0"
	}
	return af < bf
}

// PriceConflicts returns a partition's price conflicts, newest first, at most limit.
func PriceConflicts(r Reader, prefix []byte, limit int) ([]*gridpb.PriceConflictRecord, error) {
	var out []*gridpb.PriceConflictRecord
	space := spaceStart(prefix, spacePriceConflict)
	err := r.Scan(space, prefixEnd(space), 0, func(_, v []byte) error {
		c := &gridpb.PriceConflictRecord{}
		if err := proto.Unmarshal(v, c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	slices.Reverse(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, err
}
