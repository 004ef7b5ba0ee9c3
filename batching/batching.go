// Package batching coalesces work per lane (a partition, say) into batches
// without a timer: while a lane's batch is in flight, what is submitted to
// the lane queues, and when the batch is done the queue goes out as the
// next one. A lone item goes out at once (latency stays one round trip
// under light load) and batches grow with the load. Lanes run in parallel;
// one batch per lane is in flight at a time.
//
// The intake pipeline batches new orders per order partition with it, and
// a node batches new subjects' data keys per subject partition.
package batching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Run does one lane's batch and answers one result per item, in order.
// An error fails every item of the batch.
type Run[In, Out any] func(ctx context.Context, lane uint32, batch []In) ([]Out, error)

// Options bound a Coalescer.
type Options struct {
	// BatchItemsMax caps the items of one batch. Default 1024.
	BatchItemsMax int
	// QueuedItemsMax caps the items waiting in one lane; past it Submit
	// refuses with ErrQueueFull. Default 16384.
	QueuedItemsMax int
	// BatchTimeout bounds one batch's Run. Default 10 s.
	BatchTimeout time.Duration
	// Observe, if set, is told each batch's size before it runs.
	Observe func(items int)
}

// ErrQueueFull refuses an item when its lane's queue is full.
var ErrQueueFull = errors.New("batching: the lane's queue is full")

// Coalescer batches items per lane.
type Coalescer[In, Out any] struct {
	run  Run[In, Out]
	opts Options

	mu    sync.Mutex
	lanes map[uint32]*lane[In, Out]
}

type lane[In, Out any] struct {
	id    uint32
	mu    sync.Mutex
	queue []*Pending[In, Out]
	busy  bool // a goroutine drains the queue
}

// Pending is one submitted item, answered when its batch is done.
type Pending[In, Out any] struct {
	in   In
	done chan struct{}
	out  Out
	err  error
}

// New returns a Coalescer that does each batch with run.
func New[In, Out any](run Run[In, Out], opts Options) *Coalescer[In, Out] {
	if opts.BatchItemsMax <= 0 {
		opts.BatchItemsMax = 1024
	}
	if opts.QueuedItemsMax <= 0 {
		opts.QueuedItemsMax = 16384
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = 10 * time.Second
	}
	return &Coalescer[In, Out]{run: run, opts: opts, lanes: map[uint32]*lane[In, Out]{}}
}

func (c *Coalescer[In, Out]) lane(id uint32) *lane[In, Out] {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lanes[id]
	if l == nil {
		l = &lane[In, Out]{id: id}
		c.lanes[id] = l
	}
	return l
}

// Submit queues in for its lane's next batch. It does not wait: Wait does.
func (c *Coalescer[In, Out]) Submit(laneID uint32, in In) (*Pending[In, Out], error) {
	l := c.lane(laneID)
	p := &Pending[In, Out]{in: in, done: make(chan struct{})}
	l.mu.Lock()
	if len(l.queue) >= c.opts.QueuedItemsMax {
		l.mu.Unlock()
		return nil, ErrQueueFull
	}
	l.queue = append(l.queue, p)
	start := !l.busy
	l.busy = true
	l.mu.Unlock()
	if start {
		go c.drain(l)
	}
	return p, nil
}

// Queued returns the items waiting in every lane (not those in flight).
func (c *Coalescer[In, Out]) Queued() int {
	c.mu.Lock()
	lanes := make([]*lane[In, Out], 0, len(c.lanes))
	for _, l := range c.lanes {
		lanes = append(lanes, l)
	}
	c.mu.Unlock()
	n := 0
	for _, l := range lanes {
		l.mu.Lock()
		n += len(l.queue)
		l.mu.Unlock()
	}
	return n
}

// Wait returns the item's result, or ctx's error if it ends first (the
// batch goes on without the caller).
func (p *Pending[In, Out]) Wait(ctx context.Context) (Out, error) {
	select {
	case <-p.done:
		return p.out, p.err
	case <-ctx.Done():
		var zero Out
		return zero, fmt.Errorf("batching: waiting for the batch: %w", ctx.Err())
	}
}

// drain sends the lane's queue out batch by batch until it is empty.
func (c *Coalescer[In, Out]) drain(l *lane[In, Out]) {
	for {
		l.mu.Lock()
		n := min(len(l.queue), c.opts.BatchItemsMax)
		if n == 0 {
			l.busy = false
			l.mu.Unlock()
			return
		}
		batch := l.queue[:n:n]
		l.queue = append([]*Pending[In, Out](nil), l.queue[n:]...)
		l.mu.Unlock()
		c.runBatch(l.id, batch)
	}
}

func (c *Coalescer[In, Out]) runBatch(laneID uint32, batch []*Pending[In, Out]) {
	if c.opts.Observe != nil {
		c.opts.Observe(len(batch))
	}
	ins := make([]In, len(batch))
	for i, p := range batch {
		ins[i] = p.in
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.BatchTimeout)
	defer cancel()
	outs, err := c.run(ctx, laneID, ins)
	if err == nil && len(outs) != len(batch) {
		err = fmt.Errorf("batching: %d results for %d items", len(outs), len(batch))
	}
	for i, p := range batch {
		if err != nil {
			p.err = err
		} else {
			p.out = outs[i]
		}
		close(p.done)
	}
}
