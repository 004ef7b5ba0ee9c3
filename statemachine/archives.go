package statemachine

import (
	"encoding/binary"
	"fmt"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/ledger"
)

// Retention keeps the closed orders by the time they closed (spaceClosed)
// and a marker of each order moved to an archive (spaceArchived). Key
// layouts: keySpaces (keys.go).

func closedKey(prefix []byte, at int64, order string) []byte {
	return timedKey(prefix, spaceClosed, at, order)
}

func archivedKey(prefix []byte, order string) []byte { return key(prefix, spaceArchived, order) }

// IsClosed reports whether an order in status is closed: nothing more is
// expected of it, so retention may archive it.
func IsClosed(status string) bool { return lifecycle.IsClosed(status) }

// indexClosed keeps the closed-orders index across a status change from
// old (at oldAt) to o's current status (at o.UpdatedUnixNano).
func (t *txn) indexClosed(o *gridpb.OrderRecord, oldStatus string, oldAt int64) {
	if IsClosed(oldStatus) {
		t.del(closedKey(t.m.prefix, oldAt, o.Id))
	}
	if IsClosed(o.Status) {
		if err := t.b.Set(closedKey(t.m.prefix, o.UpdatedUnixNano, o.Id), nil, nil); err != nil {
			panic(fmt.Sprintf("statemachine: set: %v", err))
		}
	}
}

// archiveOrders moves closed orders out of hot state. An order that is not
// there, not closed, changed since before, or owes a stock action is left
// as it is (the result lists the ones that moved).
func (t *txn) archiveOrders(c *gridpb.ArchiveOrdersCommand) *Result {
	if c.Archive == "" {
		return &Result{Detail: "archive_orders: archive is required"}
	}
	out := &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
	for _, id := range c.OrderIds {
		o, ok := t.order(id)
		if !ok || !IsClosed(o.Status) || o.UpdatedUnixNano >= c.BeforeUnixNano || o.StockAction != "" {
			continue
		}
		t.del(orderKey(t.m.prefix, id))
		t.del(decisionKey(t.m.prefix, id))
		if err := t.b.DeleteRange(eventPrefix(t.m.prefix, id), prefixEnd(eventPrefix(t.m.prefix, id)), nil); err != nil {
			panic(fmt.Sprintf("statemachine: delete range: %v", err))
		}
		t.del(closedKey(t.m.prefix, o.UpdatedUnixNano, id))
		t.m.counts.add(o, -1)
		// The subject index keeps it (the archived record names the
		// customer): an erasure of the customer still names the archived
		// order, and exports by subject still find its events.
		t.put(archivedKey(t.m.prefix, id), &gridpb.ArchivedOrderRecord{Id: id, Status: o.Status, Channel: o.Channel, RequestHash: o.RequestHash,
			Archive: c.Archive, ArchivedUnixNano: t.at, CustomerId: o.GetCustomer().GetId()})
		t.record(&ledger.Event{Kind: ledger.KindRetention, Type: "archived", Order: id, Status: o.Status, Details: map[string]string{"archive": c.Archive}})
		out.OrderIds = append(out.OrderIds, id)
	}
	return out
}

// restoreOrders puts archived orders back, as they were archived. An order
// that is not archived (never was, or restored already) is left alone.
func (t *txn) restoreOrders(c *gridpb.RestoreOrdersCommand) *Result {
	out := &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
	for _, a := range c.Orders {
		o := a.GetOrder()
		if o.GetId() == "" {
			continue
		}
		var marker gridpb.ArchivedOrderRecord
		if !t.get(archivedKey(t.m.prefix, o.Id), &marker) || string(marker.RequestHash) != string(o.RequestHash) {
			continue
		}
		t.del(archivedKey(t.m.prefix, o.Id))
		// Hot again for a whole retention period from now, not archived
		// again by the next sweep.
		o = proto.Clone(o).(*gridpb.OrderRecord)
		o.UpdatedUnixNano = t.at
		t.put(orderKey(t.m.prefix, o.Id), o)
		for _, e := range a.Events {
			t.put(eventKey(t.m.prefix, o.Id, e.Seq), e)
		}
		if IsClosed(o.Status) {
			if err := t.b.Set(closedKey(t.m.prefix, o.UpdatedUnixNano, o.Id), nil, nil); err != nil {
				panic(fmt.Sprintf("statemachine: set: %v", err))
			}
		}
		t.m.subjects.add(o.GetCustomer().GetId(), o.Id)
		t.m.counts.add(o, 1)
		if unpaid(o.Status) {
			t.m.due.set(o.Id, o.PayByUnixNano)
		}
		t.record(&ledger.Event{Kind: ledger.KindRetention, Type: "restored", Order: o.Id, Status: o.Status, Details: map[string]string{"archive": c.Archive}})
		out.OrderIds = append(out.OrderIds, o.Id)
	}
	return out
}

// ReadArchived returns the marker of an archived order.
func ReadArchived(r Reader, prefix []byte, id string) (*gridpb.ArchivedOrderRecord, bool, error) {
	a := &gridpb.ArchivedOrderRecord{}
	ok, err := getProto(r, archivedKey(prefix, id), a)
	return a, ok, err
}

// ClosedBefore returns up to limit orders closed before before.
func ClosedBefore(r Reader, prefix []byte, before int64, limit int) ([]string, error) {
	start := spaceStart(prefix, spaceClosed)
	end := binary.BigEndian.AppendUint64(append([]byte{}, start...), uint64(max(before, 0)))
	var ids []string
	err := r.Scan(start, end, limit, func(k, _ []byte) error {
		ids = append(ids, string(k[len(start)+8:]))
		return nil
	})
	return ids, err
}
