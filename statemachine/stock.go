package statemachine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Stock: each SKU's stock in every warehouse (one record per SKU), the
// reservations orders hold on it (pending until settled), the pending
// ones by expiry for the orphan sweep, and the stock events. Key layouts:
// keySpaces (keys.go).

func stockKey(prefix []byte, sku string) []byte { return key(prefix, spaceStock, sku) }

func reservationKey(prefix []byte, sku, order string) []byte {
	return key(prefix, spaceReservation, sku, order)
}

func stockEventKey(prefix []byte, sku string, index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(key(prefix, spaceStockEvent, sku), 0), index)
}

func reservationExpiryKey(prefix []byte, at int64, sku, order string) []byte {
	return timedKey(prefix, spaceReservationExpiry, at, sku, order)
}

func available(s *gridpb.StockRecord) int64 { return s.OnHand - s.Pending - s.Committed }

func assertStock(sku, wh string, s *gridpb.StockRecord) {
	if s.Pending < 0 || s.Committed < 0 || s.OnHand < 0 || available(s) < 0 {
		panic(fmt.Sprintf("statemachine: stock invariant broken for %s@%s: on_hand=%d pending=%d committed=%d",
			sku, wh, s.OnHand, s.Pending, s.Committed))
	}
}

func (t *txn) stock(sku, wh string) *gridpb.StockRecord {
	names, recs, err := warehouses(t.b, t.m.prefix, sku)
	if err != nil {
		panic(fmt.Sprintf("statemachine: stock of %s: %v", sku, err))
	}
	if i, ok := slices.BinarySearch(names, wh); ok {
		return recs[i]
	}
	return &gridpb.StockRecord{}
}

// putStock writes one warehouse's stock into the SKU's record.
func (t *txn) putStock(sku, wh string, s *gridpb.StockRecord) {
	names, recs, err := warehouses(t.b, t.m.prefix, sku)
	if err != nil {
		panic(fmt.Sprintf("statemachine: stock of %s: %v", sku, err))
	}
	i, ok := slices.BinarySearch(names, wh)
	if ok {
		recs[i] = s
	} else {
		names = slices.Insert(names, i, wh)
		recs = slices.Insert(recs, i, s)
	}
	t.putSku(sku, names, recs)
}

func (t *txn) putSku(sku string, names []string, recs []*gridpb.StockRecord) {
	for i, s := range recs {
		assertStock(sku, names[i], s)
	}
	t.put(stockKey(t.m.prefix, sku), &gridpb.SkuRecord{Warehouses: names, Stock: recs})
}

// stockSetsKept bounds the request ids of a SKU's recent stock sets kept
// to recognise a copy of one committed again after later ones.
const stockSetsKept = 32

func stockSetsKey(prefix []byte, sku string) []byte { return key(prefix, spaceStockSets, sku) }

func (t *txn) setStock(c *gridpb.SetStockCommand) *Result {
	var sets gridpb.StockSetsRecord
	if len(c.RequestId) > 0 {
		t.get(stockSetsKey(t.m.prefix, c.Sku), &sets)
		for _, id := range sets.RequestIds {
			if bytes.Equal(id, c.RequestId) {
				// A copy of a set already applied (a retried proposal that
				// committed too, maybe after later sets): applying it again
				// would undo them.
				return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Sku: c.Sku}
			}
		}
	}
	s := t.stock(c.Sku, c.Warehouse)
	if c.OnHand < s.Pending+s.Committed {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_BELOW_RESERVED, Sku: c.Sku,
			Detail: fmt.Sprintf("on_hand %d is below the %d reserved at %s", c.OnHand, s.Pending+s.Committed, c.Warehouse)}
	}
	before := s.OnHand
	s.OnHand = c.OnHand
	t.putStock(c.Sku, c.Warehouse, s)
	if len(c.RequestId) > 0 {
		sets.RequestIds = append(sets.RequestIds, c.RequestId)
		if n := len(sets.RequestIds); n > stockSetsKept {
			sets.RequestIds = sets.RequestIds[n-stockSetsKept:]
		}
		t.put(stockSetsKey(t.m.prefix, c.Sku), &sets)
	}
	t.put(stockEventKey(t.m.prefix, c.Sku, t.index), &gridpb.EventRecord{
		Seq: t.index, Type: "stock_set", AtUnixNano: t.at, Principal: t.principal,
		Details: map[string]string{"warehouse": c.Warehouse, "on_hand": strconv.FormatInt(c.OnHand, 10), "on_hand_before": strconv.FormatInt(before, 10)},
	})
	t.record(&ledger.Event{Kind: ledger.KindStock, Type: "stock_set", SKU: c.Sku, Warehouse: c.Warehouse, Qty: c.OnHand,
		Details: map[string]string{"on_hand_before": strconv.FormatInt(before, 10)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// warehouses returns sku's stock per warehouse, sorted by warehouse.
func warehouses(r pebble.Reader, prefix []byte, sku string) ([]string, []*gridpb.StockRecord, error) {
	var rec gridpb.SkuRecord
	if _, err := getProto(cluster.LocalReader{R: r}, stockKey(prefix, sku), &rec); err != nil {
		return nil, nil, err
	}
	if len(rec.Warehouses) != len(rec.Stock) {
		return nil, nil, fmt.Errorf("sku record of %s: %d warehouses, %d stock records", sku, len(rec.Warehouses), len(rec.Stock))
	}
	return rec.Warehouses, rec.Stock, nil
}

func (t *txn) reserveBatch(c *gridpb.ReserveBatchCommand) *Result {
	// One read of the SKU's warehouses for the whole batch, one write of
	// each changed warehouse at the end: a batch of thousands costs one scan.
	names, recs, err := warehouses(t.b, t.m.prefix, c.Sku)
	if err != nil {
		panic(fmt.Sprintf("statemachine: stock of %s: %v", c.Sku, err))
	}
	changed := make([]bool, len(recs))
	rules := t.skuLimits(c.Sku)
	out := &gridpb.ReserveBatchResult{Items: make([]*gridpb.ReserveItemResult, len(c.Items))}
	for i, it := range c.Items {
		out.Items[i] = &gridpb.ReserveItemResult{OrderId: it.OrderId}
		t.as(it.Principal, func() *Result { t.reserve(c.Sku, it, names, recs, changed, rules, out.Items[i]); return nil })
	}
	if slices.Contains(changed, true) {
		t.putSku(c.Sku, names, recs)
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Reserve: out}
}

// reserve takes qty of sku for an order from the warehouse with the most
// available stock that can hold the whole line (the grain's choice if it
// still can). A reservation that already exists is returned, not taken
// twice. names and recs are the SKU's warehouses, updated in place.
//
// The SKU's purchase limits (rules) are judged first (judgeLimits): past
// a limit whose rule refuses, nothing is reserved (LIMIT_EXCEEDED); past
// one whose rule holds, the stock is reserved, until the hold's expiry,
// and the result names the rule (limit_held). A reservation made adds its
// qty to the buyer's counter under every rule that counts it.
func (t *txn) reserve(sku string, it *gridpb.ReserveItem, names []string, recs []*gridpb.StockRecord, changed []bool, rules []*gridpb.SkuLimitRule,
	out *gridpb.ReserveItemResult) {
	rk := reservationKey(t.m.prefix, sku, it.OrderId)
	var res gridpb.ReservationRecord
	found := t.get(rk, &res)
	if it.Extend {
		// The order is held: its pending reservation waits as long.
		if !found || res.State != gridpb.ReservationState_RESERVATION_STATE_PENDING {
			out.Outcome = gridpb.Outcome_OUTCOME_NOT_FOUND
			return
		}
		if it.HoldExpiresUnixNano > res.ExpiresUnixNano {
			t.del(reservationExpiryKey(t.m.prefix, res.ExpiresUnixNano, sku, it.OrderId))
			res.ExpiresUnixNano = it.HoldExpiresUnixNano
			t.put(reservationExpiryKey(t.m.prefix, res.ExpiresUnixNano, sku, it.OrderId), &gridpb.StockSyncedCommand{})
			t.put(rk, &res)
		}
		out.Outcome, out.Warehouse = gridpb.Outcome_OUTCOME_REPLAYED, res.Warehouse
		return
	}
	if found && res.State != gridpb.ReservationState_RESERVATION_STATE_RELEASED {
		// A retry: answered as made, with the limit that held it.
		out.Outcome, out.Warehouse = gridpb.Outcome_OUTCOME_REPLAYED, res.Warehouse
		out.LimitHeld, out.LimitCode, out.Detail = res.LimitHeld, res.LimitCode, res.LimitDetail
		return
	}
	if it.Qty <= 0 {
		return
	}
	expires := it.ExpiresUnixNano
	var lv limitVerdict
	if len(rules) > 0 {
		lv = t.judgeLimits(sku, it.Qty, it.Buyer, rules)
		out.Detail, out.LimitCode = lv.detail, lv.code
		if lv.refused {
			out.Outcome = gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED
			t.record(&ledger.Event{Kind: ledger.KindStock, Type: "limit_refused", Order: it.OrderId, SKU: sku, Qty: it.Qty,
				Details: map[string]string{"limit": lv.held, "detail": lv.detail}})
			return
		}
		if lv.held != "" {
			out.LimitHeld = lv.held
			expires = max(expires, it.HoldExpiresUnixNano)
		}
	}
	best := -1
	for i, s := range recs {
		if available(s) < it.Qty || (it.Strict && names[i] != it.Warehouse) {
			continue
		}
		if names[i] == it.Warehouse {
			best = i
			break
		}
		if best < 0 || available(s) > available(recs[best]) {
			best = i
		}
	}
	if best < 0 {
		out.Outcome, out.Warehouse, out.LimitHeld, out.Detail, out.LimitCode = gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK, it.Warehouse, "", "", ""
		return
	}
	recs[best].Pending += it.Qty
	assertStock(sku, names[best], recs[best])
	changed[best] = true
	t.countLimits(sku, lv.counters, it.Qty)
	rec := &gridpb.ReservationRecord{Sku: sku, OrderId: it.OrderId, Warehouse: names[best], Qty: it.Qty,
		State: gridpb.ReservationState_RESERVATION_STATE_PENDING, ExpiresUnixNano: expires, LimitKeys: lv.counters}
	if out.LimitHeld != "" {
		rec.LimitHeld, rec.LimitCode, rec.LimitDetail = out.LimitHeld, out.LimitCode, out.Detail
	}
	t.put(rk, rec)
	t.put(reservationExpiryKey(t.m.prefix, expires, sku, it.OrderId), &gridpb.StockSyncedCommand{})
	e := &ledger.Event{Kind: ledger.KindStock, Type: "reserved", Order: it.OrderId, SKU: sku, Warehouse: names[best], Qty: it.Qty}
	if out.LimitHeld != "" {
		e.Details = map[string]string{"limit_held": out.LimitHeld}
	}
	t.record(e)
	out.Outcome, out.Warehouse = gridpb.Outcome_OUTCOME_OK, names[best]
}

// settle moves one order's reservation of sku towards the state action asks for.
// It is idempotent: settling twice changes nothing the second time.
func (t *txn) settle(sku, orderID, action string) *Result {
	rk := reservationKey(t.m.prefix, sku, orderID)
	var res gridpb.ReservationRecord
	if !t.get(rk, &res) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Sku: sku, Detail: "no reservation"}
	}
	s := t.stock(sku, res.Warehouse)
	const (
		pending   = gridpb.ReservationState_RESERVATION_STATE_PENDING
		committed = gridpb.ReservationState_RESERVATION_STATE_COMMITTED
		released  = gridpb.ReservationState_RESERVATION_STATE_RELEASED
		shipped   = gridpb.ReservationState_RESERVATION_STATE_SHIPPED
		returned  = gridpb.ReservationState_RESERVATION_STATE_RETURNED
	)
	from := res.State
	q := res.Qty
	switch action {
	case lifecycle.ActionCommit:
		switch from {
		case pending:
			s.Pending -= q
			s.Committed += q
		case released: // swept as an orphan before the payment reached it: take it again if it is there
			if available(s) < q {
				return &Result{Outcome: gridpb.Outcome_OUTCOME_EXPIRED, Sku: sku, Detail: "reservation expired and the stock is gone"}
			}
			s.Committed += q
			t.countLimits(sku, res.LimitKeys, q)
		default:
			return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
		}
		res.State = committed
	case lifecycle.ActionRelease:
		switch from {
		case pending:
			s.Pending -= q
		case committed:
			s.Committed -= q
		case shipped:
			return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Sku: sku, Detail: "reservation already shipped"}
		default:
			return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
		}
		// Not bought after all: the qty leaves the buyer's limit counters.
		t.countLimits(sku, res.LimitKeys, -q)
		res.State = released
	case lifecycle.ActionShip:
		switch from {
		case pending:
			s.Pending -= q
		case committed:
			s.Committed -= q
		case released:
			return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Sku: sku, Detail: "reservation was released"}
		default:
			return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
		}
		s.OnHand -= q
		res.State = shipped
	case lifecycle.ActionRestock:
		if from != shipped {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
		}
		s.OnHand += q
		res.State = returned
	default:
		return &Result{Detail: "unknown stock action " + action}
	}
	if from == pending {
		t.del(reservationExpiryKey(t.m.prefix, res.ExpiresUnixNano, sku, orderID))
	}
	t.putStock(sku, res.Warehouse, s)
	t.put(rk, &res)
	t.record(&ledger.Event{Kind: ledger.KindStock, Type: settledEvent[action], Order: orderID, SKU: sku, Warehouse: res.Warehouse, Qty: q})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// settledEvent is the ledger event type of each stock action.
var settledEvent = map[string]string{
	lifecycle.ActionCommit: "committed", lifecycle.ActionRelease: "released", lifecycle.ActionShip: "shipped", lifecycle.ActionRestock: "restocked",
}

// settleBatch moves the reservations of one batch's orders on one SKU.
func (t *txn) settleBatch(c *gridpb.SettleBatchCommand) *Result {
	return each("settle_batch", c.Items, func(it *gridpb.SettleItem) *Result {
		return t.as(it.Principal, func() *Result { return t.settle(c.Sku, it.OrderId, it.Action) })
	})
}

func (t *txn) expireReservations(c *gridpb.ExpireReservationsCommand) *Result {
	for _, id := range c.OrderIds {
		var res gridpb.ReservationRecord
		if !t.get(reservationKey(t.m.prefix, c.Sku, id), &res) {
			continue
		}
		if res.State == gridpb.ReservationState_RESERVATION_STATE_PENDING && res.ExpiresUnixNano <= t.at {
			t.settle(c.Sku, id, lifecycle.ActionRelease)
		}
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// ReadStock returns sku's stock per warehouse and in total; found is false
// when no warehouse has ever stocked it.
func ReadStock(r Reader, prefix []byte, sku string) (st *pb.SkuStock, found bool, err error) {
	var rec gridpb.SkuRecord
	if _, err := getProto(r, stockKey(prefix, sku), &rec); err != nil {
		return nil, false, fmt.Errorf("read stock %s: %w", sku, err)
	}
	names, recs := rec.Warehouses, rec.Stock
	if len(names) != len(recs) {
		err = fmt.Errorf("sku record of %s is inconsistent", sku)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read stock %s: %w", sku, err)
	}
	st = &pb.SkuStock{Sku: sku, Total: &pb.StockLevel{}}
	for i, s := range recs {
		lvl := &pb.StockLevel{Warehouse: names[i], OnHand: s.OnHand, Available: available(s), Pending: s.Pending, Committed: s.Committed}
		st.Warehouses = append(st.Warehouses, lvl)
		st.Total.OnHand += lvl.OnHand
		st.Total.Available += lvl.Available
		st.Total.Pending += lvl.Pending
		st.Total.Committed += lvl.Committed
	}
	return st, len(recs) > 0, nil
}

// ReadStockEvents returns the stock events of sku (stock set, with the
// caller), oldest first, at most limit (0: all).
func ReadStockEvents(r Reader, prefix []byte, sku string, limit int) ([]*gridpb.EventRecord, error) {
	evs, err := readEvents(r, append(key(prefix, spaceStockEvent, sku), 0), limit)
	if err != nil {
		return nil, fmt.Errorf("read stock events of %s: %w", sku, err)
	}
	return evs, nil
}

// ReadReservation returns the reservation of an order on a SKU.
func ReadReservation(r Reader, prefix []byte, sku, order string) (*gridpb.ReservationRecord, bool, error) {
	res := &gridpb.ReservationRecord{}
	ok, err := getProto(r, reservationKey(prefix, sku, order), res)
	return res, ok, err
}

// ReadReservations returns every reservation on sku.
func ReadReservations(r Reader, prefix []byte, sku string) ([]*gridpb.ReservationRecord, error) {
	p := append(key(prefix, spaceReservation, sku), 0)
	var out []*gridpb.ReservationRecord
	err := r.Scan(p, prefixEnd(p), 0, func(_, v []byte) error {
		res := &gridpb.ReservationRecord{}
		if err := proto.Unmarshal(v, res); err != nil {
			return err
		}
		out = append(out, res)
		return nil
	})
	return out, err
}

// DueReservation names a pending reservation past its expiry.
type DueReservation struct{ SKU, OrderID string }

// DueReservations returns up to limit pending reservations whose expiry is at or before now.
func DueReservations(r Reader, prefix []byte, now int64, limit int) ([]DueReservation, error) {
	start := spaceStart(prefix, spaceReservationExpiry)
	end := binary.BigEndian.AppendUint64(append([]byte{}, start...), uint64(now)+1)
	var out []DueReservation
	err := r.Scan(start, end, limit, func(k, _ []byte) error {
		rest := k[len(start)+8:]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return fmt.Errorf("bad expiry key %q", k)
		}
		out = append(out, DueReservation{SKU: string(rest[:i]), OrderID: string(rest[i+1:])})
		return nil
	})
	return out, err
}
