package actors

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/batching"
	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Intake batches form on their order partition's leader: a node that does
// not lead a partition hands each batch it formed to the leader (one
// LeaderCall per batch), where it joins the leader's own queue for the
// partition, so the batches of every node coalesce into one stream of
// proposals there. A batch is forwarded once: the leader (or whoever
// answers as the leader) creates it even if its leadership has just moved.

// Leader call methods of forwarded intake batches.
const (
	forwardCreate     = "intake.create"
	forwardTransition = "intake.transition"
)

// ForwardedBatches serves batches other nodes forward to this node as
// their partition's leader: the pipeline's own lanes, answering one
// BatchAnswer per item in order.
type ForwardedBatches interface {
	CreateForwarded(ctx context.Context, partition uint32, orders []*gridpb.CreateOrderGrainRequest) []BatchAnswer
	TransitionForwarded(ctx context.Context, partition uint32, events []*gridpb.OrderEventGrainRequest) []BatchAnswer
}

// ServeForwardedBatches makes this node take the batches other nodes
// forward to it as their partition's leader.
func (n *Node) ServeForwardedBatches(to ForwardedBatches) {
	n.host.HandleLeaderCall(forwardCreate, func(ctx context.Context, p *cluster.Partition, payload []byte) ([]byte, error) {
		var in gridpb.ForwardedBatch
		if err := proto.Unmarshal(payload, &in); err != nil {
			return nil, fmt.Errorf("forwarded batch: %w", err)
		}
		for _, o := range in.Orders {
			if n.orderPartition(o.GetOrderId()).ID != p.ID {
				return nil, fmt.Errorf("forwarded batch: order %q is not of partition %d", o.GetOrderId(), p.ID)
			}
		}
		return encodeAnswers(to.CreateForwarded(ctx, p.ID, in.Orders))
	})
	n.host.HandleLeaderCall(forwardTransition, func(ctx context.Context, p *cluster.Partition, payload []byte) ([]byte, error) {
		var in gridpb.ForwardedBatch
		if err := proto.Unmarshal(payload, &in); err != nil {
			return nil, fmt.Errorf("forwarded batch: %w", err)
		}
		for _, e := range in.Events {
			if n.orderPartition(e.GetEvent().GetId()).ID != p.ID {
				return nil, fmt.Errorf("forwarded batch: event of order %q is not of partition %d", e.GetEvent().GetId(), p.ID)
			}
		}
		return encodeAnswers(to.TransitionForwarded(ctx, p.ID, in.Events))
	})
}

// LeadsOrderPartition reports whether this node leads order partition id.
func (n *Node) LeadsOrderPartition(id uint32) bool {
	parts := n.host.Partitions()
	return int(id) < len(parts) && parts[id].IsLeader()
}

// ForwardCreateBatch hands a batch of new orders of one partition to the
// partition's leader and answers what the leader answered: one BatchAnswer
// per order, each an error if the call failed (503: a retry finds what was
// committed).
func (n *Node) ForwardCreateBatch(ctx context.Context, partition uint32, orders []*gridpb.CreateOrderGrainRequest) []BatchAnswer {
	return n.forward(ctx, partition, forwardCreate, &gridpb.ForwardedBatch{Orders: orders}, len(orders))
}

// ForwardTransitionBatch hands a batch of order events of one partition to
// the partition's leader, as ForwardCreateBatch does new orders.
func (n *Node) ForwardTransitionBatch(ctx context.Context, partition uint32, events []*gridpb.OrderEventGrainRequest) []BatchAnswer {
	return n.forward(ctx, partition, forwardTransition, &gridpb.ForwardedBatch{Events: events}, len(events))
}

func (n *Node) forward(ctx context.Context, partition uint32, method string, in *gridpb.ForwardedBatch, items int) []BatchAnswer {
	out := make([]BatchAnswer, items)
	fail := func(err error) []BatchAnswer {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	parts := n.host.Partitions()
	if int(partition) >= len(parts) {
		return fail(fmt.Errorf("forwarding a batch: no partition %d", partition))
	}
	payload, err := proto.Marshal(in)
	if err != nil {
		return fail(fmt.Errorf("forwarding a batch: %w", err))
	}
	raw, err := parts[partition].CallLeader(ctx, method, payload)
	if err != nil {
		return fail(fmt.Errorf("forwarding a batch to partition %d's leader: %w", partition, err))
	}
	var answers gridpb.ForwardedAnswers
	if err := proto.Unmarshal(raw, &answers); err != nil {
		return fail(fmt.Errorf("forwarded batch's answers: %w", err))
	}
	if len(answers.Answers) != items {
		return fail(fmt.Errorf("forwarded batch: %d answers for %d items", len(answers.Answers), items))
	}
	for i, a := range answers.Answers {
		switch {
		case a.QueueFull:
			out[i].Err = batching.ErrQueueFull
		case a.Error != "":
			out[i].Err = errors.New("on the partition's leader: " + a.Error)
		default:
			out[i].Response = a.Response
		}
	}
	return out
}

// encodeAnswers is the payload of a forwarded batch's answers.
func encodeAnswers(answers []BatchAnswer) ([]byte, error) {
	out := &gridpb.ForwardedAnswers{Answers: make([]*gridpb.ForwardedAnswer, len(answers))}
	for i, a := range answers {
		switch {
		case errors.Is(a.Err, batching.ErrQueueFull):
			out.Answers[i] = &gridpb.ForwardedAnswer{QueueFull: true}
		case a.Err != nil:
			out.Answers[i] = &gridpb.ForwardedAnswer{Error: a.Err.Error()}
		default:
			out.Answers[i] = &gridpb.ForwardedAnswer{Response: a.Response}
		}
	}
	return proto.Marshal(out)
}
