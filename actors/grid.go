package actors

import (
	"context"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The placement API: how code outside the grains (the channel workflow's
// records, the catalog's admin, key rotation, the retention job) reaches the partition that
// owns a key, to propose a command to it or read it, without a grain.

// The keys that place what a partition owns: hash(key) mod P picks it.
// statemachine.CatalogKey places the routing catalog.

// OrderKey places an order.
func OrderKey(id string) string { return "order/" + id }

// SkuKey places a SKU's stock and channel prices.
func SkuKey(sku string) string { return "sku/" + sku }

// SubjectKey places a data subject (a customer): its data key, its
// fingerprints' list and its purchases.
func SubjectKey(id string) string { return "subject/" + id }

// IdentityKey places a customer fingerprint's link.
func IdentityKey(hash string) string { return "identity/" + hash }

// Partition is one partition of the grid as a node reaches it: a Node's
// are on the partition's leader; package actors/memgrid has an in-memory
// twin for tests.
type Partition interface {
	// ID is the partition's number.
	ID() uint32
	// Prefix is the partition's key prefix, for statemachine's reads.
	Prefix() []byte
	// Propose replicates cmd, stamped with the proposer's time and
	// principal, and answers the state machine's result once it is
	// committed. A command too large for one Raft entry is a
	// failure.TooLarge.
	Propose(ctx context.Context, principal string, cmd *gridpb.Command) (*statemachine.Result, error)
	// Reader reads the partition's state linearizably (on its leader).
	Reader() statemachine.Reader
	// IsLeader reports whether this node leads the partition now (jobs that
	// run on the leader of each partition, like retention, ask).
	IsLeader() bool
}

// PartitionOf is the partition that owns key.
func (n *Node) PartitionOf(key string) Partition {
	return leaderPartition{node: n, p: n.host.PartitionOf(key)}
}

// Partitions are every partition of the grid, for reads that scan them all.
func (n *Node) Partitions() []Partition {
	ps := n.host.Partitions()
	out := make([]Partition, len(ps))
	for i, p := range ps {
		out[i] = leaderPartition{node: n, p: p}
	}
	return out
}

// leaderPartition is a Node's Partition: proposals and reads go to the
// partition's leader, each bounded by the node's request timeout (within
// the caller's context).
type leaderPartition struct {
	node *Node
	p    *cluster.Partition
}

func (p leaderPartition) ID() uint32     { return p.p.ID }
func (p leaderPartition) Prefix() []byte { return p.p.Prefix }

func (p leaderPartition) Propose(ctx context.Context, principal string, cmd *gridpb.Command) (*statemachine.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, p.node.opts.RequestTimeout)
	defer cancel()
	return p.node.propose(ctx, p.p, principal, cmd)
}

func (p leaderPartition) IsLeader() bool { return p.p.IsLeader() }

func (p leaderPartition) Reader() statemachine.Reader { return p.node.reader(p.p) }
