// Package streamtest is an audit log in memory for the tests of what reads
// the event stream (package stream's hub and its readers): append events,
// read them back as leaves, with the ledger's order index. It stands in for
// ledger.Log in unit tests only.
package streamtest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// Log is an append-only log of events in memory, safe for concurrent use.
// It implements stream.Log.
type Log struct {
	mu      sync.Mutex
	leaves  [][]byte
	byOrder map[string][]uint64
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{byOrder: map[string][]uint64{}} }

// Append places e as the next leaf (partition 1, the Raft index its
// position, committed now) and returns its index.
func (l *Log) Append(e ledger.Event) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := uint64(len(l.leaves))
	order, leaf := e.Place(outbox.Place{Partition: 1, RaftIndex: i + 1, AtUnixNano: time.Now().UnixNano()})
	if order != "" {
		l.byOrder[order] = append(l.byOrder[order], i)
	}
	l.leaves = append(l.leaves, leaf)
	return i
}

// Size is the number of leaves.
func (l *Log) Size() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.leaves)), nil
}

// Leaf is leaf i.
func (l *Log) Leaf(i uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= uint64(len(l.leaves)) {
		return nil, fmt.Errorf("leaf %d: not found", i)
	}
	return l.leaves[i], nil
}

// OrderLeaves are the indexes of an order's leaves, at most max.
func (l *Log) OrderLeaves(order string, max int) ([]uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	idx := l.byOrder[order]
	return slices.Clone(idx[:min(len(idx), max)]), nil
}
