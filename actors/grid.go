package actors

import (
	"context"

	"github.com/ordergrid/ordergrid/cluster"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The node's partitions, for jobs that run beside the grains (package
// retention's Grid).

// Partitions returns the node's partitions.
func (n *Node) Partitions() []*cluster.Partition { return n.host.Partitions() }

// Reader reads p's committed state on its leader, each read bounded by the
// request timeout.
func (n *Node) Reader(p *cluster.Partition) statemachine.Reader { return n.reader(p) }

// Propose stamps cmd with the time and principal, replicates it on p and
// returns what the state machine answered. It waits at most the request
// timeout, within ctx.
func (n *Node) Propose(ctx context.Context, p *cluster.Partition, principal string, cmd *pb.Command) (*statemachine.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	return n.propose(ctx, p, principal, cmd)
}
