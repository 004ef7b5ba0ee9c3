package statemachine

import (
	"cmp"
	"slices"
	"sync"

	"github.com/ordergrid/ordergrid/lifecycle"
)

// dueIndex holds the pay-by time of every unpaid order (pending payment or
// on hold) of the partition, in memory: a new order writes no index key.
// Kept by the commands as they apply, rebuilt by Load from the order
// records (loadOrderIndexes); read by the sweeper on the partition's leader (DueOrders).
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
func unpaid(s string) bool { return s == lifecycle.StatusPendingPayment || s == lifecycle.StatusOnHold }

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
