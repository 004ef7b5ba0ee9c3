package statemachine

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// The parcels routed per ship day and warehouse are counted in spaceLoad,
// in the partition of each order routed: a node sums them over partitions.
// An order's routing decision is kept on its "created" event (or, for an
// order recorded before 2026-11-28, in the retired spaceDecision).

func decisionKey(prefix []byte, order string) []byte { return key(prefix, spaceDecision, order) }

func loadKey(prefix []byte, day int32, wh string) []byte {
	return append(binary.BigEndian.AppendUint32(key(prefix, spaceLoad), uint32(day)), wh...)
}

// addLoad adds delta parcels to each shipment's ship day and warehouse,
// written when the command ends (flushLoads).
func (t *txn) addLoad(shipments []*gridpb.ShipmentRecord, delta int64) {
	for _, s := range shipments {
		if t.loads == nil {
			t.loads = map[string]int64{}
		}
		t.loads[string(loadKey(t.m.prefix, s.ShipDay, s.Warehouse))] += delta
	}
}

// flushLoads writes the parcel counts the command changed, in key order.
func (t *txn) flushLoads() {
	keys := make([]string, 0, len(t.loads))
	for k, d := range t.loads {
		if d != 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw, _, err := readRaw(t.b, []byte(k))
		if err != nil {
			panic(fmt.Sprintf("statemachine: read load: %v", err))
		}
		var n int64
		if len(raw) == 8 {
			n = int64(binary.BigEndian.Uint64(raw))
		}
		n = max(0, n+t.loads[k])
		if err := t.b.Set([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(n)), nil); err != nil {
			panic(fmt.Sprintf("statemachine: set: %v", err))
		}
	}
}

// ReadRouting reads the routing decision of an order: kept on its
// "created" event (or, for an order recorded before that, under a key of
// its own).
func ReadRouting(r Reader, prefix []byte, order string) (*gridpb.RoutingRecord, bool, error) {
	ev := &gridpb.EventRecord{}
	ok, err := getProto(r, eventKey(prefix, order, 1), ev)
	if err != nil {
		return nil, false, err
	}
	if ok && ev.Routing != nil {
		return ev.Routing, true, nil
	}
	rec := &gridpb.RoutingRecord{}
	ok, err = getProto(r, decisionKey(prefix, order), rec)
	return rec, ok, err
}

// ReadLoads adds to into the parcels of this partition per warehouse for one ship day.
func ReadLoads(r Reader, prefix []byte, day int32, into map[string]int64) error {
	p := binary.BigEndian.AppendUint32(key(prefix, spaceLoad), uint32(day))
	return r.Scan(p, prefixEnd(p), 0, func(k, v []byte) error {
		if len(v) == 8 {
			into[string(k[len(p):])] += int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
}

// ReadFree returns sku's free stock (on hand less pending and committed)
// per warehouse, names sorted: what a routing decision reads.
func ReadFree(r Reader, prefix []byte, sku string) (names []string, free []int64, err error) {
	var rec gridpb.SkuRecord
	if _, err := getProto(r, stockKey(prefix, sku), &rec); err != nil {
		return nil, nil, fmt.Errorf("read stock %s: %w", sku, err)
	}
	if len(rec.Warehouses) != len(rec.Stock) {
		return nil, nil, fmt.Errorf("sku record of %s is inconsistent", sku)
	}
	free = make([]int64, len(rec.Stock))
	for i, s := range rec.Stock {
		free[i] = available(s)
	}
	return rec.Warehouses, free, nil
}
