package actors

import (
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

// AlertGroups counts the open stuck-order alerts of every partition, as
// this node's replicas have applied them (stale by their lag, but local),
// grouped by the fields by names (statemachine.AlertGroupFields). Groups
// are merged across partitions, in no order.
func (n *Node) AlertGroups(by []string) (*gridpb.AlertGroups, error) {
	var machines []*statemachine.Machine
	for _, p := range n.host.Partitions() {
		if m, ok := p.StateMachine().(*statemachine.Machine); ok {
			machines = append(machines, m)
		}
	}
	return mergeAlertGroups(machines, by)
}

func mergeAlertGroups(machines []*statemachine.Machine, by []string) (*gridpb.AlertGroups, error) {
	type groupKey struct{ stage, warehouse, channel, carrier string }
	out := &gridpb.AlertGroups{}
	merged := map[groupKey]*gridpb.AlertGroup{}
	for _, m := range machines {
		part, err := m.AlertGroups(by)
		if err != nil {
			return nil, err
		}
		out.Open += part.Open
		out.Ungrouped += part.Ungrouped
		for _, g := range part.Groups {
			k := groupKey{g.Stage, g.Warehouse, g.Channel, g.Carrier}
			have := merged[k]
			if have == nil {
				merged[k] = g
				out.Groups = append(out.Groups, g)
				continue
			}
			have.Count += g.Count
			if g.OldestSinceUnixNano < have.OldestSinceUnixNano || (g.OldestSinceUnixNano == have.OldestSinceUnixNano && g.OldestOrder < have.OldestOrder) {
				have.OldestSinceUnixNano, have.OldestOrder = g.OldestSinceUnixNano, g.OldestOrder
			}
		}
	}
	return out, nil
}
