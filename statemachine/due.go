package statemachine

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// dueIndex holds the pay-by time of every unpaid order (pending payment or
// on hold) of the partition, in memory: a new order writes no index key.
// Kept by the commands as they apply, rebuilt by Load from the order
// records; read by the sweeper on the partition's leader (DueOrders).
type dueIndex struct {
	mu    sync.Mutex
	payBy map[string]int64 // order id -> pay-by, unix nanos
}

func (d *dueIndex) set(id string, at int64) {
	d.mu.Lock()
	d.payBy[id] = at
	d.mu.Unlock()
}

func (d *dueIndex) remove(id string) {
	d.mu.Lock()
	delete(d.payBy, id)
	d.mu.Unlock()
}

// unpaid reports whether an order in status s still has a pay-by deadline.
func unpaid(s string) bool { return s == StatusPendingPayment || s == StatusOnHold }

// DueOrders returns up to limit unpaid orders whose pay-by time is at or
// before now, earliest first (ties by id). It reads this replica's
// in-memory index: ask the partition's leader's machine.
func (m *Machine) DueOrders(now int64, limit int) []string {
	type due struct {
		id string
		at int64
	}
	var out []due
	m.due.mu.Lock()
	for id, at := range m.due.payBy {
		if at <= now {
			out = append(out, due{id, at})
		}
	}
	m.due.mu.Unlock()
	slices.SortFunc(out, func(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
	ids := make([]string, 0, min(len(out), limit))
	for _, d := range out[:min(len(out), limit)] {
		ids = append(ids, d.id)
	}
	return ids
}

// Unpaid is the number of unpaid orders the partition holds.
func (m *Machine) Unpaid() int {
	m.due.mu.Lock()
	defer m.due.mu.Unlock()
	return len(m.due.payBy)
}

// loadDue rebuilds the pay-by index from the order records.
func (m *Machine) loadDue(r pebble.Reader) (map[string]int64, error) {
	out := map[string]int64{}
	lo := spaceStart(m.prefix, 'o')
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("statemachine: due index: %w", err)
	}
	var o pb.OrderRecord
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("statemachine: due index: %w", err)
		}
		if err := proto.Unmarshal(v, &o); err != nil {
			it.Close()
			return nil, fmt.Errorf("statemachine: due index: order record %q: %w", it.Key(), err)
		}
		if unpaid(o.Status) {
			out[o.Id] = o.PayByUnixNano
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("statemachine: due index: %w", err)
	}
	return out, nil
}
