package statemachine

import (
	"slices"
	"strconv"
	"sync"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// historyIndex is what the risk features of a new order read of the
// partition's past orders, in memory: each customer's first order, recent
// order times, count and amounts, and which customers used each address
// and device key (OrderRecord.address_key, device_key). Kept by
// create_order, rebuilt by Load from the order records; advisory (a
// feature, never a rule), so its bounds drop what does not fit.
type historyIndex struct {
	mu        sync.Mutex
	customers map[string]*customerHistory
	// The customers per address key and per device key; sharers counts
	// the keys of both (bounded together).
	addresses, devices map[string]*sharerSet
	sharers            int
}

const (
	// historyCustomersMax bounds the customers one partition's index keeps.
	historyCustomersMax = 1 << 18
	// historySharersMax bounds the address and device keys it keeps.
	historySharersMax = 1 << 18
	// historyRecentMax bounds the order times kept per customer: order
	// velocity saturates there.
	historyRecentMax = 16
	// sharersMax bounds the customers counted per address or device.
	sharersMax = 8
)

type customerHistory struct {
	firstUnixNano int64
	recent        [historyRecentMax]int64 // the latest order times (0: none)
	orders        int64
	amountSum     float64
}

type sharerSet struct {
	ids [sharersMax]string // ids[:n], sorted
	n   int
}

// add keeps the sharersMax least ids, sorted: the same set whatever order
// the ids come in (Load adds them in order id order, not time order).
func (s *sharerSet) add(id string) {
	i, found := slices.BinarySearch(s.ids[:s.n], id)
	if found || i == sharersMax {
		return
	}
	if s.n < sharersMax {
		s.n++
	}
	copy(s.ids[i+1:s.n], s.ids[i:s.n-1])
	s.ids[i] = id
}

func newHistoryIndex() historyIndex {
	return historyIndex{customers: map[string]*customerHistory{}, addresses: map[string]*sharerSet{}, devices: map[string]*sharerSet{}}
}

func (h *historyIndex) add(o *gridpb.OrderRecord) {
	h.mu.Lock()
	h.addLocked(o)
	h.mu.Unlock()
}

func (h *historyIndex) addLocked(o *gridpb.OrderRecord) {
	c := o.GetCustomer().GetId()
	if c == "" {
		return
	}
	at := o.CreatedUnixNano
	ch := h.customers[c]
	if ch == nil {
		if len(h.customers) >= historyCustomersMax {
			return
		}
		ch = &customerHistory{firstUnixNano: at}
		h.customers[c] = ch
	}
	ch.firstUnixNano = min(ch.firstUnixNano, at)
	// Keep the historyRecentMax latest order times whatever order the
	// orders come in (Load adds them in id order, not time order): a
	// time replaces the earliest kept (an empty slot, 0, first) when later.
	earliest := 0
	for i, x := range ch.recent {
		if x < ch.recent[earliest] {
			earliest = i
		}
	}
	if at > ch.recent[earliest] {
		ch.recent[earliest] = at
	}
	ch.orders++
	if v, err := strconv.ParseFloat(o.Total, 64); err == nil {
		ch.amountSum += v
	}
	h.share(h.addresses, o.AddressKey, c)
	h.share(h.devices, o.DeviceKey, c)
}

// share adds customer to the sharers of key in m.
func (h *historyIndex) share(m map[string]*sharerSet, key, customer string) {
	if key == "" {
		return
	}
	s := m[key]
	if s == nil {
		if h.sharers >= historySharersMax {
			return
		}
		s = &sharerSet{}
		m[key] = s
		h.sharers++
	}
	s.add(customer)
}

// History is what a partition knows of a customer's past orders and of
// the customers who used an address or device.
type History struct {
	// FirstUnixNano is the customer's first order (0: none here).
	FirstUnixNano int64
	// Orders, and those in the hour and day before now (each saturating
	// at historyRecentMax).
	Orders, Orders1h, Orders24h int64
	AmountSum                   float64
	// The customers other than this one who used the address and device.
	AddressCustomers, DeviceCustomers []string
}

// HistoryQuery is one new order's question to the history: its
// customer and the keys of its address and device ("" when unknown).
type HistoryQuery struct {
	Customer, AddressKey, DeviceKey string
}

// AddHistory adds to *out what this replica's partition knows of q at now
// (nanos).
func (m *Machine) AddHistory(out *History, q HistoryQuery, now int64) {
	h := &m.history
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addTo(out, q, now)
}

// AddHistories adds to outs[i] what this replica's partition knows of
// qs[i] at now (nanos): one lock for an intake batch's orders.
func (m *Machine) AddHistories(outs []History, qs []HistoryQuery, now int64) {
	h := &m.history
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, q := range qs {
		h.addTo(&outs[i], q, now)
	}
}

func (h *historyIndex) addTo(out *History, q HistoryQuery, now int64) {
	if ch := h.customers[q.Customer]; ch != nil && q.Customer != "" {
		if out.FirstUnixNano == 0 || ch.firstUnixNano < out.FirstUnixNano {
			out.FirstUnixNano = ch.firstUnixNano
		}
		out.Orders += ch.orders
		out.AmountSum += ch.amountSum
		for _, at := range ch.recent {
			if at == 0 || at > now {
				continue
			}
			if now-at <= int64(3600e9) {
				out.Orders1h++
			}
			if now-at <= int64(86400e9) {
				out.Orders24h++
			}
		}
	}
	if q.AddressKey != "" {
		out.AddressCustomers = others(h.addresses[q.AddressKey], q.Customer, out.AddressCustomers)
	}
	if q.DeviceKey != "" {
		out.DeviceCustomers = others(h.devices[q.DeviceKey], q.Customer, out.DeviceCustomers)
	}
}

// others adds to dst the customers of s other than customer and those in
// dst already.
func others(s *sharerSet, customer string, dst []string) []string {
	if s == nil {
		return dst
	}
next:
	for _, id := range s.ids[:s.n] {
		if id == customer {
			continue
		}
		for _, x := range dst {
			if x == id {
				continue next
			}
		}
		dst = append(dst, id)
	}
	return dst
}
