// Package stream follows a node's copy of the audit log and hands its
// committed events, in log order, to live readers: the gateway's
// Server-Sent Events and gRPC streams, the webhook deliveries and the
// pages. Every event is the log's leaf, identified by its leaf index, so a
// reader that saw index n resumes at n+1 on any node, after any restart,
// with no gap and no repeat: the log is the same on every node and never
// changes.
//
// # Data path
//
//	ledger group FSM ─► Log (this node's replica) ─► Hub.Run: polls the size,
//	decodes each new leaf once into a ring of recent Items ─► Readers: each
//	reads the ring (or the log, when it is behind the ring) and filters
//
// A Hub decodes only while it has readers; a reader that is behind reads
// the log itself, in its own goroutine, so readers never slow the intake
// and never slow one another. A reader that stops reading is cut by its
// transport (a write deadline) and resumes from its last index.
//
// # Channels and warehouses
//
// An order's channel and warehouses are on its "created" event only. A
// filter on them (and a channel-bound token's scope) judges an event by the
// facts of the "created" event of its order that comes before it in the log,
// so the answer is the same on every node and at every read: a stock event
// logged before its order's "created" has no channel.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/ledger"
)

// Log is what a Hub reads: a node's replica of the audit log (ledger.Log).
type Log interface {
	// Size is the number of leaves.
	Size() (uint64, error)
	// Leaf is leaf i's bytes.
	Leaf(i uint64) ([]byte, error)
	// OrderLeaves are the indexes of an order's leaves, in log order, at most max.
	OrderLeaves(order string, max int) ([]uint64, error)
}

// Item is one event of the log.
type Item struct {
	// Index is the leaf's index: the SSE id.
	Index uint64
	// Leaf is the event's canonical JSON, exactly the log's leaf (its hash
	// is the leaf hash an inclusion proof proves).
	Leaf []byte
	// Event is Leaf decoded.
	Event ledger.Event
}

// Facts are what an order's "created" event says about it.
type Facts struct {
	// Created is the index of the order's "created" leaf.
	Created    uint64
	Channel    string
	Warehouses []string // sorted, distinct
}

// Options configure a Hub. Zero fields take the defaults.
type Options struct {
	// PollInterval is how often the hub looks for new leaves. Default 10ms.
	PollInterval time.Duration
	// RingEvents is how many recent events the hub keeps decoded for its
	// readers (a power of two). Default 65536.
	RingEvents int
	// RingBytesMax bounds the memory of the ring's events (about twice
	// their leaves' bytes): large events keep fewer. Default 64 MiB.
	RingBytesMax int
	// FactsMax bounds the orders whose facts are kept in memory (per
	// generation; two are kept). Default 262144.
	FactsMax   int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultPollInterval = 10 * time.Millisecond
	DefaultRingEvents   = 1 << 16
	DefaultRingBytesMax = 64 << 20
	DefaultFactsMax     = 1 << 18
	// ScanLeavesMax bounds the leaves one Next call reads, so that a reader
	// whose filter matches little still returns (and its transport can say
	// how far it got).
	ScanLeavesMax = 4096
	// orderLeavesScanned bounds the leaves of one order read to find its
	// "created" event when it is not in memory: the order's reservations
	// come first, one per line (config's orders.lines_max is at most
	// 10,000), and a line's several warehouses make several.
	orderLeavesScanned = 1 << 16
	// pollLeavesMax bounds the leaves the hub decodes in one step.
	pollLeavesMax = 8192
)

// ErrBeyond is returned for a start index beyond the end of the log.
var ErrBeyond = errors.New("beyond the end of the log")

// Hub follows the log and serves its events to readers.
type Hub struct {
	log     Log
	opts    Options
	metrics *metrics

	mu     sync.Mutex
	head   uint64  // leaves known: [0, head)
	ring   []*Item // ring[i & mask] for i in [ringLo, head)
	ringLo uint64  // the oldest index the ring holds
	// ringBytes is about what the ring's items hold (itemBytes), at most
	// Options.RingBytesMax.
	ringBytes int
	grown     chan struct{} // closed when head grows
	readers   int
	facts     factsCache
	started   bool
}

// NewHub returns a hub over log. Run it.
func NewHub(log Log, opts Options) *Hub {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RingEvents <= 0 || opts.RingEvents&(opts.RingEvents-1) != 0 {
		opts.RingEvents = DefaultRingEvents
	}
	if opts.RingBytesMax <= 0 {
		opts.RingBytesMax = DefaultRingBytesMax
	}
	if opts.FactsMax <= 0 {
		opts.FactsMax = DefaultFactsMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Hub{log: log, opts: opts, metrics: newMetrics(opts.Registerer), ring: make([]*Item, opts.RingEvents),
		grown: make(chan struct{}), facts: newFactsCache(opts.FactsMax)}
	return h
}

// Run follows the log until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.opts.PollInterval)
	defer t.Stop()
	failing := false
	for {
		if err := h.poll(); err != nil {
			if !failing {
				h.opts.Logger.Warn("stream: reading the log", slog.Any("error", err))
			}
			failing = true
		} else {
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Head is the number of leaves the hub knows of: a reader starting at Head
// sees only what comes next.
func (h *Hub) Head() (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		return 0, errors.New("stream: the hub has not read the log yet")
	}
	return h.head, nil
}

// poll reads the log's new leaves into the ring (when anyone reads them).
func (h *Hub) poll() error {
	size, err := h.log.Size()
	if err != nil {
		return err
	}
	h.mu.Lock()
	head, readers := h.head, h.readers
	if !h.started {
		h.started, h.head, h.ringLo = true, size, size
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	if size <= head {
		return nil
	}
	if readers == 0 {
		// Nobody reads: nothing to decode. A reader that comes reads the
		// log from where it starts.
		h.mu.Lock()
		clear(h.ring)
		h.head, h.ringLo, h.ringBytes = size, size, 0
		h.broadcastLocked()
		h.mu.Unlock()
		return nil
	}
	for head < size {
		n := min(size-head, pollLeavesMax)
		items := make([]*Item, 0, n)
		now := h.opts.Now()
		for i := head; i < head+n; i++ {
			it, err := h.read(i)
			if err != nil {
				return err
			}
			if at := it.Event.Time(); !at.IsZero() {
				h.metrics.delay.Observe(now.Sub(at).Seconds())
			}
			items = append(items, it)
		}
		h.mu.Lock()
		for _, it := range items {
			if it.Index-h.ringLo >= uint64(len(h.ring)) {
				h.evictLocked()
			}
			h.ring[int(it.Index)&(len(h.ring)-1)] = it
			h.ringBytes += itemBytes(it)
			h.learnLocked(it)
			for h.ringBytes > h.opts.RingBytesMax && h.ringLo < it.Index {
				h.evictLocked()
			}
		}
		h.head = head + n
		h.broadcastLocked()
		h.mu.Unlock()
		head += n
	}
	return nil
}

// evictLocked drops the ring's oldest item: readers read it from the log.
func (h *Hub) evictLocked() {
	k := int(h.ringLo) & (len(h.ring) - 1)
	if it := h.ring[k]; it != nil && it.Index == h.ringLo {
		h.ringBytes -= itemBytes(it)
		h.ring[k] = nil
	}
	h.ringLo++
}

// itemBytes is about what an item holds in memory: its leaf, and its
// decoded copy of about the same size.
func itemBytes(it *Item) int { return 2*len(it.Leaf) + 256 }

func (h *Hub) broadcastLocked() {
	close(h.grown)
	h.grown = make(chan struct{})
}

// read reads and decodes leaf i from the log.
func (h *Hub) read(i uint64) (*Item, error) {
	leaf, err := h.log.Leaf(i)
	if err != nil {
		return nil, fmt.Errorf("stream: leaf %d: %w", i, err)
	}
	it := &Item{Index: i, Leaf: leaf}
	if err := decodeEvent(leaf, &it.Event); err != nil {
		return nil, fmt.Errorf("stream: leaf %d: %w", i, err)
	}
	return it, nil
}

// item is leaf i, from the ring when it holds it.
func (h *Hub) item(i uint64) (*Item, error) {
	h.mu.Lock()
	if i >= h.ringLo && i < h.head {
		it := h.ring[int(i)&(len(h.ring)-1)]
		h.mu.Unlock()
		return it, nil
	}
	h.mu.Unlock()
	return h.read(i)
}

// learnLocked keeps the facts of a "created" event.
func (h *Hub) learnLocked(it *Item) {
	if fx, ok := factsOfCreated(it); ok {
		h.facts.put(it.Event.Order, fx)
	}
}

func factsOfCreated(it *Item) (*Facts, bool) {
	e := &it.Event
	if e.Kind != ledger.KindOrder || e.Type != "created" || e.Order == "" {
		return nil, false
	}
	fx := &Facts{Created: it.Index, Channel: e.Details["channel"]}
	for _, l := range e.Lines {
		if l.Warehouse != "" && !slices.Contains(fx.Warehouses, l.Warehouse) {
			fx.Warehouses = append(fx.Warehouses, l.Warehouse)
		}
	}
	slices.Sort(fx.Warehouses)
	return fx, true
}

// FactsOf returns the facts of the "created" event of order logged before
// index before, or nil when there is none.
func (h *Hub) FactsOf(order string, before uint64) (*Facts, error) {
	if order == "" {
		return nil, nil
	}
	h.mu.Lock()
	fx := h.facts.get(order)
	h.mu.Unlock()
	if fx != nil {
		if fx.Created < before {
			return fx, nil
		}
		return nil, nil
	}
	idx, err := h.log.OrderLeaves(order, orderLeavesScanned)
	if err != nil {
		return nil, fmt.Errorf("stream: leaves of order %s: %w", order, err)
	}
	for _, i := range idx {
		if i >= before {
			break
		}
		it, err := h.item(i)
		if err != nil {
			return nil, err
		}
		if it.Event.Kind != ledger.KindOrder {
			continue // a reservation: the order's facts come after them
		}
		if fx, ok := factsOfCreated(it); ok {
			h.mu.Lock()
			h.facts.put(order, fx)
			h.mu.Unlock()
			return fx, nil
		}
	}
	return nil, nil
}

// Match reports whether f selects it.
func (h *Hub) Match(f *Filter, it *Item) (bool, error) {
	var fx *Facts
	if f.needsFacts() && it.Event.Order != "" {
		var err error
		if fx, err = h.FactsOf(it.Event.Order, it.Index+1); err != nil { // the "created" itself too
			return false, err
		}
	}
	return f.match(it, fx), nil
}

// Reader reads the events a filter selects, from a start index on.
type Reader struct {
	h      *Hub
	f      Filter
	next   uint64
	closed bool
}

// NewReader returns a reader of the events f selects from index from on.
// A start beyond the log is ErrBeyond. Close it.
func (h *Hub) NewReader(from uint64, f Filter) (*Reader, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		return nil, errors.New("stream: the hub has not read the log yet")
	}
	if from > h.head {
		return nil, fmt.Errorf("%w: from %d, the log holds %d events", ErrBeyond, from, h.head)
	}
	h.readers++
	h.metrics.readers.Set(float64(h.readers))
	return &Reader{h: h, f: f, next: from}, nil
}

// Close ends the reader.
func (r *Reader) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.h.mu.Lock()
	r.h.readers--
	r.h.metrics.readers.Set(float64(r.h.readers))
	r.h.mu.Unlock()
}

// Next is the index of the next event the reader reads: a reader that stops
// here resumes with a reader from Next.
func (r *Reader) Next() uint64 { return r.next }

// Read returns up to max events the filter selects from Next on, waiting up
// to wait for the first when there is none yet. It returns no events (and
// no error) when wait passed, or when it read ScanLeavesMax leaves and none
// matched; Next tells how far it read either way.
func (r *Reader) Read(ctx context.Context, max int, wait time.Duration) ([]*Item, error) {
	if max <= 0 {
		max = 1
	}
	var timer <-chan time.Time
	for {
		r.h.mu.Lock()
		head, grown := r.h.head, r.h.grown
		r.h.mu.Unlock()
		if r.next < head {
			return r.scan(head, max)
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer:
			return nil, nil
		case <-grown:
		}
	}
}

func (r *Reader) scan(head uint64, max int) ([]*Item, error) {
	var out []*Item
	for scanned := 0; r.next < head && len(out) < max && scanned < ScanLeavesMax; scanned++ {
		it, err := r.h.item(r.next)
		if err != nil {
			return out, err
		}
		ok, err := r.h.Match(&r.f, it)
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, it)
		}
		r.next++
	}
	return out, nil
}

// factsCache keeps the facts of recent orders in two generations: when the
// current one is full it becomes the previous one and the previous one is
// dropped, so the recent orders stay and memory is bounded.
type factsCache struct {
	max       int
	cur, prev map[string]*Facts
}

func newFactsCache(max int) factsCache {
	return factsCache{max: max, cur: make(map[string]*Facts)}
}

func (c *factsCache) get(order string) *Facts {
	if fx, ok := c.cur[order]; ok {
		return fx
	}
	return c.prev[order]
}

func (c *factsCache) put(order string, fx *Facts) {
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[string]*Facts, c.max)
	}
	c.cur[order] = fx
}

type metrics struct {
	readers prometheus.Gauge
	delay   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		readers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ordergrid_stream_readers",
			Help: "Open readers of the event stream (SSE, gRPC, webhooks, pages)."}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordergrid_stream_commit_to_hub_seconds",
			Help:    "Time from an event's commit to the stream hub reading it from the log (while the stream has readers).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
	}
	if reg != nil {
		reg.MustRegister(m.readers, m.delay)
	}
	return m
}
