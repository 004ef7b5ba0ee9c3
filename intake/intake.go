// Package intake is the batching pipeline between the gateway and the
// grains: it coalesces new orders per order partition and hands each batch
// to the grid as one unit of work, so per-order costs (actor messages, Raft
// entries, fsyncs) are paid per batch.
//
// A batch forms from what queued while the partition's previous batch was
// in flight: no timer is added under light load (a lone order goes out at
// once, latency stays one round trip) and batches grow with the load. One
// batch per partition is in flight at a time on a node; partitions run in
// parallel. Within a batch, requests for one order id (retries that
// overtook their first attempt) are created once and each answered from
// that outcome, as a retry would be.
//
// The gateway decodes, authenticates and maps answers to HTTP and gRPC;
// intake batches; the grid (a Creator, actors.Node in a node) routes,
// reserves, seals and records each batch and owns the state.
package intake

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/actors"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Creator creates the orders of one batch, all of one order partition, each
// id once, answering one BatchAnswer per order in order. actors.Node is the
// grid's.
type Creator interface {
	CreateBatch(ctx context.Context, orders []*pb.CreateOrderGrainRequest) []actors.BatchAnswer
}

// Options configure a Pipeline.
type Options struct {
	// PartitionOf names the order partition of an order id: the orders of
	// one batch share it.
	PartitionOf func(orderID string) uint32
	// BatchOrdersMax caps the orders of one batch. Default 1024.
	BatchOrdersMax int
	// QueuedOrdersMax caps the orders waiting per partition; past it Submit
	// refuses with ErrQueueFull (the caller answers 429). Default 16384.
	QueuedOrdersMax int
	Registerer      prometheus.Registerer
}

// ErrQueueFull refuses an order when its partition's queue is full.
var ErrQueueFull = errors.New("intake: the partition's queue is full")

// Pipeline batches new orders per order partition.
type Pipeline struct {
	creator Creator
	opts    Options
	metrics *metrics

	mu    sync.Mutex
	lanes map[uint32]*lane
}

// lane is one partition's queue and its batch in flight.
type lane struct {
	id    uint32
	mu    sync.Mutex
	queue []*Pending
	busy  bool // a goroutine drains the queue
}

// Pending is one submitted order, answered when its batch is done.
type Pending struct {
	req  *pb.CreateOrderGrainRequest
	done chan struct{}
	res  *pb.OrderGrainResponse
	err  error
}

// New returns a pipeline that creates batches with creator.
func New(creator Creator, opts Options) *Pipeline {
	if opts.BatchOrdersMax <= 0 {
		opts.BatchOrdersMax = 1024
	}
	if opts.QueuedOrdersMax <= 0 {
		opts.QueuedOrdersMax = 16384
	}
	if opts.PartitionOf == nil {
		opts.PartitionOf = func(string) uint32 { return 0 }
	}
	return &Pipeline{creator: creator, opts: opts, metrics: newMetrics(opts.Registerer), lanes: map[uint32]*lane{}}
}

func (p *Pipeline) lane(id uint32) *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lanes[id]
	if l == nil {
		l = &lane{id: id}
		p.lanes[id] = l
	}
	return l
}

// Create submits one order and waits for its answer.
func (p *Pipeline) Create(ctx context.Context, req *pb.CreateOrderGrainRequest) (*pb.OrderGrainResponse, error) {
	w, err := p.Submit(req)
	if err != nil {
		return nil, err
	}
	return w.Wait(ctx)
}

// Submit queues one order for its partition's next batch. req.OrderId must
// be set. It does not wait: Wait does.
func (p *Pipeline) Submit(req *pb.CreateOrderGrainRequest) (*Pending, error) {
	if req.GetOrderId() == "" || req.Request == nil {
		return nil, errors.New("intake: an order needs its id and request")
	}
	l := p.lane(p.opts.PartitionOf(req.OrderId))
	w := &Pending{req: req, done: make(chan struct{})}
	l.mu.Lock()
	if len(l.queue) >= p.opts.QueuedOrdersMax {
		l.mu.Unlock()
		p.metrics.refused.Inc()
		return nil, ErrQueueFull
	}
	l.queue = append(l.queue, w)
	start := !l.busy
	l.busy = true
	l.mu.Unlock()
	p.metrics.queued.Inc()
	if start {
		go p.drain(l)
	}
	return w, nil
}

// Wait returns the order's answer, or ctx's error if it ends first (the
// order may still be created: a retry with its key finds it).
func (w *Pending) Wait(ctx context.Context) (*pb.OrderGrainResponse, error) {
	select {
	case <-w.done:
		return w.res, w.err
	case <-ctx.Done():
		return nil, fmt.Errorf("intake: waiting for the batch: %w", ctx.Err())
	}
}

// drain sends the lane's queue out batch by batch until it is empty.
func (p *Pipeline) drain(l *lane) {
	for {
		l.mu.Lock()
		n := min(len(l.queue), p.opts.BatchOrdersMax)
		if n == 0 {
			l.busy = false
			l.mu.Unlock()
			return
		}
		batch := l.queue[:n:n]
		l.queue = append([]*Pending(nil), l.queue[n:]...)
		l.mu.Unlock()
		p.metrics.queued.Sub(float64(n))
		p.run(batch)
	}
}

// batchTimeout bounds one batch's work: every order in it is answered by then.
const batchTimeout = 10 * time.Second

// run creates one batch and answers every order of it.
func (p *Pipeline) run(batch []*Pending) {
	p.metrics.batchOrders.Observe(float64(len(batch)))
	// One order per id: the first; the others are answered from it.
	first := make(map[string]int, len(batch))
	var reqs []*pb.CreateOrderGrainRequest
	owner := make([]int, len(batch))
	for i, w := range batch {
		if j, ok := first[w.req.OrderId]; ok {
			owner[i] = j
			continue
		}
		first[w.req.OrderId] = len(reqs)
		owner[i] = len(reqs)
		reqs = append(reqs, w.req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	answers := p.creator.CreateBatch(ctx, reqs)
	seen := make([]bool, len(reqs))
	for i, w := range batch {
		k := owner[i]
		a := answers[k]
		w.res, w.err = a.Response, a.Err
		if seen[k] {
			w.res = asRetry(w.req, a.Response)
		}
		seen[k] = true
		close(w.done)
	}
}

// asRetry is the answer to a second request for an order of the batch: the
// order as its first request left it, replayed when the requests are the
// same, else an idempotency conflict; a refusal is answered alike.
func asRetry(req *pb.CreateOrderGrainRequest, first *pb.OrderGrainResponse) *pb.OrderGrainResponse {
	if first == nil || first.Order == nil {
		return first
	}
	if string(first.Order.RequestHash) == string(actors.RequestHash(req.Request)) {
		return &pb.OrderGrainResponse{Outcome: pb.Outcome_OUTCOME_REPLAYED, Order: first.Order}
	}
	return &pb.OrderGrainResponse{Outcome: pb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: first.Order,
		Detail: "this idempotency key was used with a different request"}
}

type metrics struct {
	batchOrders prometheus.Histogram
	queued      prometheus.Gauge
	refused     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchOrders: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_intake_batch_orders", Help: "Orders per intake batch (one order partition's queue as it went out).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordergrid_intake_queued_orders", Help: "Orders waiting for their partition's next batch.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_intake_refused_total", Help: "Orders refused because their partition's queue was full.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batchOrders, m.queued, m.refused)
	}
	return m
}
