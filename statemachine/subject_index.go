package statemachine

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// subjectIndex holds the ids of every data subject's orders in the
// partition (live and archived), in memory: a new order writes no index
// key. Kept by the commands as they apply, rebuilt by Load from the order
// and archived-order records (and the 'c' keys versions before 2026-11-28
// wrote); read on the partition's leader (SubjectOrders).
type subjectIndex struct {
	mu     sync.Mutex
	orders map[string]map[string]struct{} // subject -> order ids
}

func (s *subjectIndex) add(subject, order string) {
	if subject == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.orders[subject]
	if ids == nil {
		ids = map[string]struct{}{}
		s.orders[subject] = ids
	}
	ids[order] = struct{}{}
}

// SubjectOrders returns up to limit ids of a subject's orders in this
// partition, in id order. It reads this replica's in-memory index: ask the
// partition's leader's machine.
func (m *Machine) SubjectOrders(subject string, limit int) []string {
	m.subjects.mu.Lock()
	ids := make([]string, 0, len(m.subjects.orders[subject]))
	for id := range m.subjects.orders[subject] {
		ids = append(ids, id)
	}
	m.subjects.mu.Unlock()
	slices.Sort(ids)
	return ids[:min(len(ids), limit)]
}

// loadOrderIndexes rebuilds, in one pass over the order records, the
// pay-by deadlines of the unpaid orders and the subject index (which also
// reads the archived-order records and the retired 'c' keys); each order
// record is also handed to order (the alerts' index).
func (m *Machine) loadOrderIndexes(r pebble.Reader, order func(o *gridpb.OrderRecord)) (due map[string]int64, subjects map[string]map[string]struct{}, err error) {
	due, subjects = map[string]int64{}, map[string]map[string]struct{}{}
	add := func(subject, order string) {
		if subject == "" {
			return
		}
		if subjects[subject] == nil {
			subjects[subject] = map[string]struct{}{}
		}
		subjects[subject][order] = struct{}{}
	}
	scan := func(space byte, fn func(k, v []byte) error) error {
		lo := spaceStart(m.prefix, space)
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return fmt.Errorf("statemachine: order indexes %q: %w", space, err)
		}
		for it.First(); it.Valid(); it.Next() {
			v, err := it.ValueAndErr()
			if err == nil {
				err = fn(it.Key(), v)
			}
			if err != nil {
				it.Close()
				return fmt.Errorf("statemachine: order indexes %q: %w", space, err)
			}
		}
		return it.Close()
	}
	var o gridpb.OrderRecord
	if err := scan(spaceOrder, func(_, v []byte) error {
		if err := proto.Unmarshal(v, &o); err != nil {
			return err
		}
		if unpaid(o.Status) {
			due[o.Id] = o.PayByUnixNano
		}
		add(o.GetCustomer().GetId(), o.Id)
		order(&o)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	var a gridpb.ArchivedOrderRecord
	if err := scan(spaceArchived, func(_, v []byte) error {
		if err := proto.Unmarshal(v, &a); err != nil {
			return err
		}
		add(a.CustomerId, a.Id)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	// Keys of the retired 'c' space: subject, 0, order.
	start := len(spaceStart(m.prefix, spaceSubjectOrder))
	if err := scan(spaceSubjectOrder, func(k, _ []byte) error {
		rest := k[start:]
		for i, c := range rest {
			if c == 0 {
				add(string(rest[:i]), string(rest[i+1:]))
				break
			}
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	return due, subjects, nil
}
