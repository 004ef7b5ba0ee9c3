package intake

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// recordingCreator answers each order OK with a record of its request, or
// fails the ids in fail, and remembers each batch it was given. gate, if
// set, holds the first batch until closed.
type recordingCreator struct {
	mu      sync.Mutex
	batches [][]string
	fail    map[string]error
	gate    chan struct{}
}

func (c *recordingCreator) CreateBatch(_ context.Context, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer {
	c.mu.Lock()
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.OrderId
	}
	c.batches = append(c.batches, ids)
	first := len(c.batches) == 1
	c.mu.Unlock()
	if first && c.gate != nil {
		<-c.gate
	}
	out := make([]actors.BatchAnswer, len(orders))
	for i, o := range orders {
		if err := c.fail[o.OrderId]; err != nil {
			out[i] = actors.BatchAnswer{Err: err}
			continue
		}
		out[i] = actors.BatchAnswer{Response: &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK,
			Order: &gridpb.OrderRecord{Id: o.OrderId, RequestHash: actors.RequestHash(o.Request), Status: lifecycle.StatusPendingPayment}}}
	}
	return out
}

func (c *recordingCreator) TransitionBatch(_ context.Context, events []*gridpb.OrderEventGrainRequest) []actors.BatchAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, len(events))
	out := make([]actors.BatchAnswer, len(events))
	for i, e := range events {
		ids[i] = e.Event.Id
		out[i] = actors.BatchAnswer{Response: &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK,
			Order: &gridpb.OrderRecord{Id: e.Event.Id, Status: e.Event.Type}}}
	}
	c.batches = append(c.batches, ids)
	return out
}

func order(id, key string, qty int64) *gridpb.CreateOrderGrainRequest {
	return &gridpb.CreateOrderGrainRequest{OrderId: id, Request: &pb.CreateOrderRequest{IdempotencyKey: key,
		Lines: []*pb.OrderLineInput{{Sku: "s", Qty: qty, UnitPrice: "1"}}}}
}

// Orders queued behind a batch in flight go out as one batch, each id
// once: a second request for an id is answered from the first (replayed
// when it is the same request, a conflict when not), and one order's
// failure is its own.
func TestBatchesDedupesAndAnswersEach(t *testing.T) {
	c := &recordingCreator{gate: make(chan struct{}), fail: map[string]error{"bad": errors.New("leader lost")}}
	p := New(c, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lead, err := p.Submit(order("lead", "k0", 1))
	if err != nil {
		t.Fatal(err)
	}
	for p.batching.Queued() != 0 {
		time.Sleep(time.Millisecond) // lead is in flight
	}
	reqs := []*gridpb.CreateOrderGrainRequest{order("a", "k1", 1), order("a", "k1", 1), order("a", "k1", 2), order("bad", "k2", 1), order("b", "k3", 1)}
	waits := make([]*Pending, len(reqs))
	for i, r := range reqs {
		if waits[i], err = p.Submit(r); err != nil {
			t.Fatal(err)
		}
	}
	close(c.gate)
	if res, err := lead.Wait(ctx); err != nil || res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("lead: %v %v", res, err)
	}
	want := []gridpb.Outcome{gridpb.Outcome_OUTCOME_OK, gridpb.Outcome_OUTCOME_REPLAYED, gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, 0, gridpb.Outcome_OUTCOME_OK}
	for i, w := range waits {
		res, err := w.Wait(ctx)
		if reqs[i].OrderId == "bad" {
			if err == nil {
				t.Errorf("the failed order was answered %v", res)
			}
			continue
		}
		if err != nil || res.Outcome != want[i] {
			t.Errorf("order %d (%s): %v %v, want %s", i, reqs[i].OrderId, res, err, want[i])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.batches) != 2 || len(c.batches[1]) != 3 {
		t.Fatalf("batches %v, want [lead] then [a bad b]", c.batches)
	}
}

// Orders of different partitions never share a batch.
func TestOneBatchPerPartition(t *testing.T) {
	c := &recordingCreator{}
	p := New(c, Options{PartitionOf: func(id string) uint32 { return uint32(id[0]) }})
	ctx := context.Background()
	for _, id := range []string{"x1", "y1", "x2", "y2"} {
		if _, err := p.Create(ctx, order(id, id, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range c.batches {
		for _, id := range b {
			if id[0] != b[0][0] {
				t.Fatalf("batch %v mixes partitions", b)
			}
		}
	}
	if _, err := p.Submit(&gridpb.CreateOrderGrainRequest{}); err == nil {
		t.Fatal("an order without an id was queued")
	}
}

// Events are answered with their own outcome, in their partition's batches.
func TestEvents(t *testing.T) {
	c := &recordingCreator{}
	p := New(c, Options{})
	res, err := p.Event(context.Background(), &gridpb.OrderEventGrainRequest{Event: &pb.OrderEventRequest{Id: "o1", Type: "paid"}})
	if err != nil || res.Order.Status != "paid" {
		t.Fatalf("event: %v %v", res, err)
	}
	if _, err := p.Event(context.Background(), &gridpb.OrderEventGrainRequest{}); err == nil {
		t.Fatal("an event without an order id was queued")
	}
}

// leaderNode is a recordingCreator that is a LeaderGrid: it leads the
// partitions in leads and forwards other batches to leader's pipeline.
type leaderNode struct {
	recordingCreator
	leads     map[uint32]bool
	leader    *Pipeline
	served    actors.ForwardedBatches
	forwarded int
}

func (n *leaderNode) LeadsOrderPartition(p uint32) bool { return n.leads[p] }
func (n *leaderNode) ForwardCreateBatch(ctx context.Context, p uint32, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer {
	n.mu.Lock()
	n.forwarded++
	n.mu.Unlock()
	return n.leader.CreateForwarded(ctx, p, orders)
}
func (n *leaderNode) ForwardTransitionBatch(ctx context.Context, p uint32, events []*gridpb.OrderEventGrainRequest) []actors.BatchAnswer {
	n.mu.Lock()
	n.forwarded++
	n.mu.Unlock()
	return n.leader.TransitionForwarded(ctx, p, events)
}
func (n *leaderNode) ServeForwardedBatches(to actors.ForwardedBatches) { n.served = to }

// A node that does not lead a partition hands its batches to the leader,
// where they are created; the leader creates what it was forwarded even
// when it no longer leads (a batch moves once).
func TestBatchesFormOnTheLeader(t *testing.T) {
	leaderGrid := &leaderNode{leads: map[uint32]bool{0: true}}
	leader := New(leaderGrid, Options{CoalesceOnLeader: true})
	if leaderGrid.served != leader {
		t.Fatal("the pipeline does not serve forwarded batches")
	}
	followerGrid := &leaderNode{leads: map[uint32]bool{}, leader: leader}
	follower := New(followerGrid, Options{CoalesceOnLeader: true})
	ctx := context.Background()
	res, err := follower.Create(ctx, &gridpb.CreateOrderGrainRequest{OrderId: "o1", Request: &pb.CreateOrderRequest{Channel: "a"}})
	if err != nil || res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Order.Id != "o1" {
		t.Fatalf("%v %v", res, err)
	}
	ev, err := follower.Event(ctx, &gridpb.OrderEventGrainRequest{Event: &pb.OrderEventRequest{Id: "o1", Type: "paid"}})
	if err != nil || ev.Order.Status != "paid" {
		t.Fatalf("%v %v", ev, err)
	}
	if len(followerGrid.batches) != 0 || followerGrid.forwarded != 2 || len(leaderGrid.batches) != 2 {
		t.Fatalf("follower made %v and forwarded %d; leader made %v", followerGrid.batches, followerGrid.forwarded, leaderGrid.batches)
	}
	// Leadership moved away from the leader meanwhile: it creates what it
	// was forwarded itself rather than forwarding it on.
	leaderGrid.leads[0] = false
	if res, err := follower.Create(ctx, &gridpb.CreateOrderGrainRequest{OrderId: "o2", Request: &pb.CreateOrderRequest{Channel: "a"}}); err != nil ||
		res.Order.GetId() != "o2" {
		t.Fatalf("%v %v", res, err)
	}
	if leaderGrid.forwarded != 0 || len(leaderGrid.batches) != 3 {
		t.Fatalf("leader forwarded %d, made %v", leaderGrid.forwarded, leaderGrid.batches)
	}
}

// Without CoalesceOnLeader a node creates its own batches, and still takes
// what other nodes forward to it.
func TestBatchesStayWithoutCoalescing(t *testing.T) {
	grid := &leaderNode{leads: map[uint32]bool{}}
	p := New(grid, Options{})
	if grid.served != p {
		t.Fatal("the pipeline does not serve forwarded batches")
	}
	if _, err := p.Create(context.Background(), &gridpb.CreateOrderGrainRequest{OrderId: "o1", Request: &pb.CreateOrderRequest{Channel: "a"}}); err != nil {
		t.Fatal(err)
	}
	if grid.forwarded != 0 || len(grid.batches) != 1 {
		t.Fatalf("forwarded %d, made %v", grid.forwarded, grid.batches)
	}
}
