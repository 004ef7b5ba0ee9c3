package gateway

import (
	"container/heap"
	"errors"
	"sync"
	"time"
)

// errReplayed is a signed push whose key a connection already took within
// its timestamp window.
var errReplayed = errors.New("replayed push")

// errReplayCacheFull is a push that finds its connection's replay cache
// full of keys still within their window: refused (to be retried) rather
// than forgetting a key a replay could then reuse.
var errReplayCacheFull = errors.New("replay cache full")

// replayCache remembers, per connection, the signed pushes taken within
// their timestamp window, so the same signed request sent again is refused.
// Only verified pushes enter it, so filling it takes the connection's
// secret. Each node has its own: in a cluster a replay sent to another node
// is stopped by the channel order id's idempotency, not by this cache.
type replayCache struct {
	mu sync.Mutex
	// now is the clock that expires keys (time.Now outside tests).
	now func() time.Time
	// entriesMax bounds the keys of one connection.
	entriesMax int
	conns      map[string]*seenKeys
}

// seenKeys are one connection's keys, with a heap by expiry to forget the
// expired ones in O(log n) each.
type seenKeys struct {
	byKey map[string]*seenKey
	heap  seenHeap
}

// seenKey is one claimed push.
type seenKey struct {
	key     string
	expires time.Time
	index   int // in the heap
}

func newReplayCache(entriesMax int, now func() time.Time) *replayCache {
	return &replayCache{now: now, entriesMax: entriesMax, conns: map[string]*seenKeys{}}
}

// claim records key for conn until expires. It returns errReplayed if the
// key is already there, errReplayCacheFull (with how long until the oldest
// key expires) if the connection holds entriesMax keys within their window.
// The returned handle releases the claim when the push was not taken.
func (c *replayCache) claim(conn, key string, expires time.Time) (*seenKey, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.conns[conn]
	if s == nil {
		s = &seenKeys{byKey: map[string]*seenKey{}}
		c.conns[conn] = s
	}
	now := c.now()
	// A key is kept through its expiry instant: the timestamp check
	// still takes a push exactly at the window's edge.
	for len(s.heap) > 0 && s.heap[0].expires.Before(now) {
		e := heap.Pop(&s.heap).(*seenKey)
		delete(s.byKey, e.key)
	}
	if _, dup := s.byKey[key]; dup {
		return nil, 0, errReplayed
	}
	if len(s.byKey) >= c.entriesMax {
		return nil, s.heap[0].expires.Sub(now), errReplayCacheFull
	}
	e := &seenKey{key: key, expires: expires}
	heap.Push(&s.heap, e)
	s.byKey[key] = e
	return e, 0, nil
}

// release forgets a claim whose push was not taken (refused, or failed), so
// the platform's retry of it is not mistaken for a replay.
func (c *replayCache) release(conn string, e *seenKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.conns[conn]
	if s == nil || s.byKey[e.key] != e {
		return // expired and forgotten meanwhile
	}
	delete(s.byKey, e.key)
	heap.Remove(&s.heap, e.index)
}

// size returns how many keys conn holds (expired ones included until the
// next claim forgets them).
func (c *replayCache) size(conn string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.conns[conn]; s != nil {
		return len(s.byKey)
	}
	return 0
}

// seenHeap orders keys by expiry, the soonest first (container/heap).
type seenHeap []*seenKey

func (h seenHeap) Len() int           { return len(h) }
func (h seenHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h seenHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *seenHeap) Push(x any) {
	e := x.(*seenKey)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *seenHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
