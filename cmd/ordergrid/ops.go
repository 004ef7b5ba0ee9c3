package main

import (
	"time"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/cluster/clusterpb"
	"github.com/ordergrid/ordergrid/gateway"
	"github.com/ordergrid/ordergrid/ledger"
)

// nodeOps is what the ops summary reads of a node (gateway.OpsSource): its
// partitions' order counts, its view of the partitions, and the ledger's lag.
type nodeOps struct {
	node *actors.Node
	host *cluster.Host
	seq  *ledger.Sequencer
}

func (o nodeOps) OrderCounts() map[string]map[string]int64 { return o.node.OrderCounts() }

func (o nodeOps) LocalStatus(withHash bool) *clusterpb.StatusResponse {
	return o.host.LocalStatus(withHash)
}

func (o nodeOps) LedgerLag(now time.Time) (ledger.Lag, error) { return o.seq.Lag(now) }

// withOps is b with the node's ops summary source.
func withOps(b gateway.Backend, node *actors.Node, host *cluster.Host, seq *ledger.Sequencer) gateway.Backend {
	b.Ops = nodeOps{node: node, host: host, seq: seq}
	return b
}
