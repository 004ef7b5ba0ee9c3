package statemachine

import (
	"strings"
	"sync"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Order counts: how many orders the partition holds (archived ones left
// out) by status, channel, warehouse and region, exact, in memory
// (countIndex). Kept by the commands as they apply: a new order adds one
// under each of its values, a status change moves one from the old status
// to the new, archiving removes the order's ones and restoring adds them
// back. Rebuilt by Load from the order records. No key is written for
// them.

// Order count dimensions (OrderCounts' keys).
const (
	CountByStatus    = "status"
	CountByChannel   = "channel"
	CountByWarehouse = "warehouse"
	CountByRegion    = "region"
)

// CountDimensions are the dimensions OrderCounts counts by, in order.
var CountDimensions = []string{CountByStatus, CountByChannel, CountByWarehouse, CountByRegion}

const (
	// countValuesMax bounds the values one dimension of a partition counts
	// (CountOther included); orders with a value beyond it are counted
	// under CountOther. A value, once counted, keeps its entry (also at zero)
	// until the next Load, so an order is always taken off the entry it was
	// added to.
	countValuesMax = 4096
	// CountOther is the value orders are counted under when their
	// dimension has countValuesMax values already. ("~" is in no channel,
	// warehouse, region or status name.)
	CountOther = "~other"
)

const (
	dimStatus = iota
	dimChannel
	dimWarehouse
	dimRegion
	dimCount
)

// countIndex holds the partition's order counts, each dimension a map of
// value to count. An order with no value in a dimension (no region, no
// line with a warehouse) is counted under "". An order counts once under
// each distinct warehouse of its lines, so that dimension's counts may
// sum to more than the orders.
type countIndex struct {
	mu   sync.Mutex
	dims [dimCount]map[string]int64
}

func newCountIndex() countIndex {
	return countIndex{dims: newCountDims()}
}

func newCountDims() [dimCount]map[string]int64 {
	var dims [dimCount]map[string]int64
	for i := range dims {
		dims[i] = map[string]int64{}
	}
	return dims
}

// bump adds delta to value's count in dimension d; c.mu is held. It
// allocates only the first time a value is seen.
func (c *countIndex) bump(d int, value string, delta int64) {
	m := c.dims[d]
	if n, ok := m[value]; ok {
		m[value] = n + delta
		return
	}
	if len(m) >= countValuesMax-1 { // one entry left for CountOther
		m[CountOther] += delta
		return
	}
	m[strings.Clone(value)] = delta
}

// add counts o (delta 1) or takes it off (delta -1) in every dimension.
func (c *countIndex) add(o *gridpb.OrderRecord, delta int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(o, delta)
}

func (c *countIndex) addLocked(o *gridpb.OrderRecord, delta int64) {
	c.bump(dimStatus, o.Status, delta)
	c.bump(dimChannel, o.Channel, delta)
	c.bump(dimRegion, o.Region, delta)
	warehouses := 0
lines:
	for i, l := range o.Lines {
		if l.Warehouse == "" {
			continue
		}
		for _, prev := range o.Lines[:i] {
			if prev.Warehouse == l.Warehouse {
				continue lines
			}
		}
		c.bump(dimWarehouse, l.Warehouse, delta)
		warehouses++
	}
	if warehouses == 0 {
		c.bump(dimWarehouse, "", delta)
	}
}

// move moves one order from status from to status to.
func (c *countIndex) move(from, to string) {
	if from == to {
		return
	}
	c.mu.Lock()
	c.bump(dimStatus, from, -1)
	c.bump(dimStatus, to, 1)
	c.mu.Unlock()
}

// OrderCounts counts the orders the partition holds (not the archived
// ones) by each of CountDimensions: dimension -> value -> orders, values
// with no order left out. It reads this replica's in-memory index, so it
// is as fresh as the replica; the maps are the caller's.
func (m *Machine) OrderCounts() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, dimCount)
	m.counts.mu.Lock()
	defer m.counts.mu.Unlock()
	for d, name := range CountDimensions {
		values := make(map[string]int64, len(m.counts.dims[d]))
		for v, n := range m.counts.dims[d] {
			if n != 0 {
				values[v] = n
			}
		}
		out[name] = values
	}
	return out
}
