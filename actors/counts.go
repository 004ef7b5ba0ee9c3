package actors

import "github.com/ordergrid/ordergrid/statemachine"

// OrderCounts counts the orders every partition holds (archived ones left
// out) by status, channel, warehouse and region
// (statemachine.CountDimensions): dimension -> value -> orders, summed
// over this node's replicas as they have applied (stale by their lag, but
// local and exact at their applied index).
func (n *Node) OrderCounts() map[string]map[string]int64 {
	var machines []*statemachine.Machine
	for _, p := range n.host.Partitions() {
		if m, ok := p.StateMachine().(*statemachine.Machine); ok {
			machines = append(machines, m)
		}
	}
	return mergeOrderCounts(machines)
}

func mergeOrderCounts(machines []*statemachine.Machine) map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(statemachine.CountDimensions))
	for _, d := range statemachine.CountDimensions {
		out[d] = map[string]int64{}
	}
	for _, m := range machines {
		for d, values := range m.OrderCounts() {
			for v, n := range values {
				out[d][v] += n
			}
		}
	}
	return out
}
