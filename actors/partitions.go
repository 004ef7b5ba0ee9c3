package actors

import (
	"context"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The seams between the grains (and the batches) and what they run on.
// The grains own these interfaces: a partition they propose to and read
// from, the placement of keys on partitions, and the calls one grain makes
// to another. In a node they are the cluster's partitions and Proto.Actor
// grain calls; in this package's tests, twins over a real state machine
// with no Raft and no actor system.

// partition is what the grains need of one partition: proposals of a
// marshalled pb.Command, answered with the state machine's marshalled
// statemachine.Result once committed and applied, and linearizable reads
// of its state, and who leads it (a node id, or "" when unknown): grains
// are placed on their partition's leader. *cluster.Partition is one.
type partition interface {
	LeaderID() string
	Propose(ctx context.Context, command []byte) ([]byte, error)
	Get(ctx context.Context, key []byte) (value []byte, found bool, err error)
	Scan(ctx context.Context, lo, hi []byte, limit int, fn func(k, v []byte) error) error
}

var _ partition = (*cluster.Partition)(nil)

// partitionRef is a partition as placement names it: its index and the
// prefix of its keys, with the partition to propose to and read from.
// Placement hands out one partitionRef per partition, so two refs of one
// partition are the same pointer.
type partitionRef struct {
	ID     uint32
	Prefix []byte
	partition
}

// partitionPlacement places keys ("sku/<sku>", "order/<id>",
// "subject/<id>") on partitions, and reads what this node's replicas have
// applied (stale, but local) of every partition.
type partitionPlacement interface {
	partitionOf(key string) *partitionRef
	localReader() statemachine.Reader
	// machines are the state machines of the local replicas.
	machines() []*statemachine.Machine
}

// hostPlacement is the placement of a cluster host's partitions.
type hostPlacement struct {
	host *cluster.Host
	refs []*partitionRef // by partition id
	// local are the state machines of the host's replicas (one per
	// partition, for the life of the host).
	local []*statemachine.Machine
}

func newHostPlacement(h *cluster.Host) *hostPlacement {
	parts := h.Partitions()
	refs := make([]*partitionRef, len(parts))
	for i, p := range parts {
		refs[i] = &partitionRef{ID: p.ID, Prefix: p.Prefix, partition: p}
	}
	var local []*statemachine.Machine
	for _, p := range parts {
		if m, ok := p.StateMachine().(*statemachine.Machine); ok {
			local = append(local, m)
		}
	}
	return &hostPlacement{host: h, refs: refs, local: local}
}

func (h *hostPlacement) partitionOf(key string) *partitionRef {
	return h.refs[h.host.PartitionOf(key).ID]
}

func (h *hostPlacement) localReader() statemachine.Reader { return cluster.LocalReader{R: h.host.DB()} }

func (h *hostPlacement) machines() []*statemachine.Machine { return h.local }

// grainCalls are the calls the order side (an order grain, a batch) makes
// to other grains. Each is one call, without retries (the caller retries
// with retrySku); an error is of the call, or the grain's failure carried
// across it (OutcomeOf tells them apart).
type grainCalls interface {
	reserve(req *gridpb.ReserveRequest) (*gridpb.ReserveResponse, error)
	reserveMany(sku string, req *gridpb.ReserveManyRequest) (*gridpb.ReserveManyResponse, error)
	settle(req *gridpb.SettleRequest) (*gridpb.SettleResponse, error)
	settleMany(sku string, req *gridpb.SettleManyRequest) (*gridpb.SettleManyResponse, error)
	createOrder(req *gridpb.CreateOrderGrainRequest) (*gridpb.OrderGrainResponse, error)
}

// clusterGrainCalls are grain calls through the Proto.Actor cluster.
type clusterGrainCalls struct{ n *Node }

func (c clusterGrainCalls) reserve(req *gridpb.ReserveRequest) (*gridpb.ReserveResponse, error) {
	return c.n.skuClient(req.Sku).Reserve(req, c.n.callOptions()...)
}

func (c clusterGrainCalls) reserveMany(sku string, req *gridpb.ReserveManyRequest) (*gridpb.ReserveManyResponse, error) {
	return c.n.skuClient(sku).ReserveMany(req, c.n.callOptions()...)
}

func (c clusterGrainCalls) settle(req *gridpb.SettleRequest) (*gridpb.SettleResponse, error) {
	return c.n.skuClient(req.Sku).Settle(req, c.n.callOptions()...)
}

func (c clusterGrainCalls) settleMany(sku string, req *gridpb.SettleManyRequest) (*gridpb.SettleManyResponse, error) {
	return c.n.skuClient(sku).SettleMany(req, c.n.callOptions()...)
}

func (c clusterGrainCalls) createOrder(req *gridpb.CreateOrderGrainRequest) (*gridpb.OrderGrainResponse, error) {
	return c.n.orderClient(req.OrderId).Create(req, c.n.callOptions()...)
}
