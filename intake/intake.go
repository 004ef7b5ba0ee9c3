// Package intake is the batching pipeline between the gateway and the
// grains: it coalesces new orders per order partition and hands each batch
// to the grid as one unit of work, so per-order costs (actor messages, Raft
// entries, fsyncs) are paid per batch.
//
// A batch forms from what queued while the partition's previous batch was
// in flight (package batching): no timer is added under light load (a lone
// order goes out at once, latency stays one round trip) and batches grow
// with the load. One batch per partition is in flight at a time on a node;
// partitions run in parallel. Within a batch, requests for one order id
// (retries that overtook their first attempt) are created once and each
// answered from that outcome, as a retry would be.
//
// Order events (pay, ship, cancel, ...) are batched the same way, per
// order partition, in arrival order: the events of one order in one batch
// apply one after the other.
//
// ChannelFlow runs the channel-order workflow (channel.go) over the same
// batches: it shapes a pushed order as the platform's adapter mapped it
// into the order to create (masked receiver fields opened, the channel's
// fields kept), has the transport check it before anything is written,
// and then resolves the customer, creates the order, notes the purchase
// and the prices; its records go to their partitions through
// ChannelStore. It answers a ChannelResult, or an error the transport
// maps: the check's, a *StepError, a *TransitionError or ErrQueueFull.
//
// The gateway decodes, authenticates (bearer tokens, channel signatures)
// and maps answers to HTTP and gRPC; intake batches and runs the
// workflows, transport-free; the grid (a Grid, actors.Node in a node)
// routes, reserves, seals and records each batch and owns the state.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/batching"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Grid does the batches: actors.Node in a node.
type Grid interface {
	// CreateBatch creates the orders of one batch, all of one order
	// partition, each id once, answering one BatchAnswer per order in order.
	CreateBatch(ctx context.Context, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer
	// TransitionBatch records the events of one batch, all of one order
	// partition, in order, answering one BatchAnswer per event.
	TransitionBatch(ctx context.Context, events []*gridpb.OrderEventGrainRequest) []actors.BatchAnswer
}

// LeaderGrid is a Grid of several nodes (actors.Node). With
// CoalesceOnLeader a batch forms on its order partition's leader: a node
// that does not lead a partition forwards each batch it formed to the
// leader, where it joins the leader's queue; a forwarded batch is not
// forwarded again.
type LeaderGrid interface {
	LeadsOrderPartition(partition uint32) bool
	ForwardCreateBatch(ctx context.Context, partition uint32, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer
	ForwardTransitionBatch(ctx context.Context, partition uint32, events []*gridpb.OrderEventGrainRequest) []actors.BatchAnswer
	ServeForwardedBatches(to actors.ForwardedBatches)
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
	// CoalesceOnLeader hands each batch of a partition this node does not
	// lead to the partition's leader (when the grid is a LeaderGrid).
	// Forwarded batches are taken either way.
	CoalesceOnLeader bool
	Registerer       prometheus.Registerer
}

// ErrQueueFull refuses an order when its partition's queue is full.
var ErrQueueFull = batching.ErrQueueFull

// batchTimeout bounds one batch's work: every order in it is answered by then.
const batchTimeout = 10 * time.Second

// Pipeline batches new orders and order events per order partition.
type Pipeline struct {
	grid     Grid
	leaders  LeaderGrid // nil: one node, it leads every partition
	opts     Options
	metrics  *metrics
	batching *batching.Coalescer[laneOrder, actors.BatchAnswer]
	events   *batching.Coalescer[laneEvent, actors.BatchAnswer]
}

// laneOrder and laneEvent are what a partition's queue holds: an item,
// and whether another node forwarded it here as the partition's leader.
type laneOrder struct {
	req       *gridpb.CreateOrderGrainRequest
	forwarded bool
}

type laneEvent struct {
	req       *gridpb.OrderEventGrainRequest
	forwarded bool
}

// Pending is one submitted order, answered when its batch is done.
type Pending struct {
	id string
	p  *batching.Pending[laneOrder, actors.BatchAnswer]
}

// New returns a pipeline whose batches grid does. When grid is a
// LeaderGrid, this pipeline takes the batches other nodes forward to it,
// and with opts.CoalesceOnLeader forwards its own to their leaders.
func New(grid Grid, opts Options) *Pipeline {
	if opts.PartitionOf == nil {
		opts.PartitionOf = func(string) uint32 { return 0 }
	}
	p := &Pipeline{grid: grid, opts: opts}
	p.batching = batching.New(p.run, batching.Options{BatchItemsMax: opts.BatchOrdersMax, QueuedItemsMax: opts.QueuedOrdersMax,
		BatchTimeout: batchTimeout, Observe: func(n int) { p.metrics.batchOrders.Observe(float64(n)) }})
	p.events = batching.New(p.runEvents, batching.Options{BatchItemsMax: opts.BatchOrdersMax, QueuedItemsMax: opts.QueuedOrdersMax,
		BatchTimeout: batchTimeout, Observe: func(n int) { p.metrics.batchEvents.Observe(float64(n)) }})
	p.metrics = newMetrics(opts.Registerer, func() int { return p.batching.Queued() + p.events.Queued() })
	if lg, ok := grid.(LeaderGrid); ok {
		lg.ServeForwardedBatches(p)
		if opts.CoalesceOnLeader {
			p.leaders = lg
		}
	}
	return p
}

// forwards reports whether a batch formed here goes to the partition's
// leader: this node does not lead it, and no item of the batch was
// forwarded here already (a batch moves once).
func (p *Pipeline) forwards(partition uint32, forwardedHere bool) bool {
	return p.leaders != nil && !forwardedHere && !p.leaders.LeadsOrderPartition(partition)
}

// CreateForwarded takes a batch another node forwarded to this node as
// the partition's leader: its orders join the partition's queue here, and
// each is answered when its batch is done.
func (p *Pipeline) CreateForwarded(ctx context.Context, partition uint32, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer {
	return takeForwarded(ctx, p, p.batching, partition, orders, func(o *gridpb.CreateOrderGrainRequest) laneOrder {
		return laneOrder{req: o, forwarded: true}
	})
}

// TransitionForwarded takes a batch of events another node forwarded to
// this node as the partition's leader, as CreateForwarded does orders.
func (p *Pipeline) TransitionForwarded(ctx context.Context, partition uint32, events []*gridpb.OrderEventGrainRequest) []actors.BatchAnswer {
	return takeForwarded(ctx, p, p.events, partition, events, func(e *gridpb.OrderEventGrainRequest) laneEvent {
		return laneEvent{req: e, forwarded: true}
	})
}

// takeForwarded queues a forwarded batch's items in the partition's lane
// of c, all at once, and waits for each one's answer.
func takeForwarded[Req, Lane any](ctx context.Context, p *Pipeline, c *batching.Coalescer[Lane, actors.BatchAnswer], partition uint32,
	items []Req, lane func(Req) Lane) []actors.BatchAnswer {
	p.metrics.forwardedIn.Inc()
	out := make([]actors.BatchAnswer, len(items))
	waits := make([]*batching.Pending[Lane, actors.BatchAnswer], len(items))
	for i, it := range items {
		w, err := c.Submit(partition, lane(it))
		if err != nil {
			p.metrics.refused.Inc()
			out[i].Err = err
			continue
		}
		waits[i] = w
	}
	for i, w := range waits {
		if w == nil {
			continue
		}
		a, err := w.Wait(ctx)
		if err != nil {
			a = actors.BatchAnswer{Err: err}
		}
		out[i] = a
	}
	return out
}

// runEvents records one partition's batch of events, or hands it to the
// partition's leader.
func (p *Pipeline) runEvents(ctx context.Context, partition uint32, batch []laneEvent) ([]actors.BatchAnswer, error) {
	reqs := make([]*gridpb.OrderEventGrainRequest, len(batch))
	forwardedHere := false
	for i, e := range batch {
		reqs[i] = e.req
		forwardedHere = forwardedHere || e.forwarded
	}
	if p.forwards(partition, forwardedHere) {
		p.metrics.forwardedOut.Inc()
		return p.leaders.ForwardTransitionBatch(ctx, partition, reqs), nil
	}
	return p.grid.TransitionBatch(ctx, reqs), nil
}

// Event records one order event (pay, ship, cancel, ...) in its
// partition's next batch of events and waits for its answer.
func (p *Pipeline) Event(ctx context.Context, req *gridpb.OrderEventGrainRequest) (*gridpb.OrderGrainResponse, error) {
	if req.GetEvent().GetId() == "" {
		return nil, errors.New("intake: an event needs its order id")
	}
	w, err := p.events.Submit(p.opts.PartitionOf(req.Event.Id), laneEvent{req: req})
	if err != nil {
		p.metrics.refused.Inc()
		return nil, err
	}
	a, err := w.Wait(ctx)
	if err != nil {
		return nil, err
	}
	return a.Response, a.Err
}

// Create submits one order and waits for its answer.
func (p *Pipeline) Create(ctx context.Context, req *gridpb.CreateOrderGrainRequest) (*gridpb.OrderGrainResponse, error) {
	w, err := p.Submit(req)
	if err != nil {
		return nil, err
	}
	return w.Wait(ctx)
}

// Submit queues one order for its partition's next batch. req.OrderId must
// be set. It does not wait: Wait does.
func (p *Pipeline) Submit(req *gridpb.CreateOrderGrainRequest) (*Pending, error) {
	if req.GetOrderId() == "" || req.Request == nil {
		return nil, errors.New("intake: an order needs its id and request")
	}
	w, err := p.batching.Submit(p.opts.PartitionOf(req.OrderId), laneOrder{req: req})
	if err != nil {
		p.metrics.refused.Inc()
		return nil, err
	}
	return &Pending{id: req.OrderId, p: w}, nil
}

// OrderID is the id of the order submitted.
func (w *Pending) OrderID() string { return w.id }

// Wait returns the order's answer, or ctx's error if it ends first (the
// order may still be created: a retry with its key finds it).
func (w *Pending) Wait(ctx context.Context) (*gridpb.OrderGrainResponse, error) {
	a, err := w.p.Wait(ctx)
	if err != nil {
		return nil, err
	}
	return a.Response, a.Err
}

// run creates one partition's batch (here, or on the partition's leader):
// one order per id (the first), the others answered from it.
func (p *Pipeline) run(ctx context.Context, partition uint32, lane []laneOrder) ([]actors.BatchAnswer, error) {
	batch := make([]*gridpb.CreateOrderGrainRequest, len(lane))
	forwardedHere := false
	for i, o := range lane {
		batch[i] = o.req
		forwardedHere = forwardedHere || o.forwarded
	}
	if p.forwards(partition, forwardedHere) {
		p.metrics.forwardedOut.Inc()
		return p.leaders.ForwardCreateBatch(ctx, partition, batch), nil
	}
	first := make(map[string]int, len(batch))
	var reqs []*gridpb.CreateOrderGrainRequest
	owner := make([]int, len(batch))
	for i, req := range batch {
		if j, ok := first[req.OrderId]; ok {
			owner[i] = j
			continue
		}
		first[req.OrderId] = len(reqs)
		owner[i] = len(reqs)
		reqs = append(reqs, req)
	}
	answers := p.grid.CreateBatch(ctx, reqs)
	if len(answers) != len(reqs) {
		return nil, fmt.Errorf("intake: %d answers for %d orders", len(answers), len(reqs))
	}
	out := make([]actors.BatchAnswer, len(batch))
	seen := make([]bool, len(reqs))
	for i, req := range batch {
		k := owner[i]
		out[i] = answers[k]
		if seen[k] && out[i].Err == nil {
			out[i].Response = asRetry(req, answers[k].Response)
		}
		seen[k] = true
	}
	return out, nil
}

// asRetry is the answer to a second request for an order of the batch: the
// order as its first request left it, replayed when the requests are the
// same, else an idempotency conflict; a refusal is answered alike.
func asRetry(req *gridpb.CreateOrderGrainRequest, first *gridpb.OrderGrainResponse) *gridpb.OrderGrainResponse {
	if first == nil || first.Order == nil {
		return first
	}
	if string(first.Order.RequestHash) == string(actors.RequestHash(req.Request)) {
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: first.Order}
	}
	return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: first.Order,
		Detail: "this idempotency key was used with a different request"}
}

type metrics struct {
	batchOrders  prometheus.Histogram
	batchEvents  prometheus.Histogram
	refused      prometheus.Counter
	forwardedOut prometheus.Counter
	forwardedIn  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, queued func() int) *metrics {
	m := &metrics{
		batchOrders: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_intake_batch_orders", Help: "Orders per intake batch (one order partition's queue as it went out).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordergrid_intake_batch_events", Help: "Order events per intake batch (one order partition's queue as it went out).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_intake_refused_total", Help: "Orders and events refused because their partition's queue was full.",
		}),
		forwardedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_intake_forwarded_batches_total", Help: "Batches this node handed to their order partition's leader.",
		}),
		forwardedIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_intake_batches_taken_as_leader_total", Help: "Batches other nodes forwarded to this node as their partition's leader.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batchOrders, m.batchEvents, m.refused, m.forwardedOut, m.forwardedIn, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordergrid_intake_queued_orders", Help: "Orders and events waiting for their partition's next batch.",
		}, func() float64 { return float64(queued()) }))
	}
	return m
}

// OrderID is the id of the order a request creates: it follows from the
// idempotency key, else from (channel, channel order id), so every retry
// of one order addresses the same order, on any node.
func OrderID(r *pb.CreateOrderRequest) string {
	var h [32]byte
	if r.IdempotencyKey != "" {
		h = sha256.Sum256([]byte("key\x00" + r.IdempotencyKey))
	} else {
		h = sha256.Sum256([]byte("channel\x00" + r.Channel + "\x00" + r.ChannelOrderId))
	}
	return "o_" + hex.EncodeToString(h[:16])
}
