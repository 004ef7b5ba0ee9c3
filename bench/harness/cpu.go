package harness

import (
	"net/http"
	"time"
)

// NodeCPU is the CPU the nodes spent during the load, from their
// process_cpu_seconds_total: the cost of an order, which a throughput
// figure on a shared, noisy machine hides.
type NodeCPU struct {
	Seconds float64 `json:"seconds"`
	// Cores is Seconds over the run's wall time, summed over the nodes.
	Cores float64 `json:"cores"`
	// MicrosPerOrder is Seconds over the orders answered (created, replayed
	// or refused for stock): what one answer cost the nodes.
	MicrosPerOrder float64 `json:"us_per_answer"`
	Nodes          int     `json:"nodes"`
}

// cpuSeconds sums process_cpu_seconds_total over the nodes; a node whose
// metrics cannot be read counts as missing (n says how many were read).
func cpuSeconds(client *http.Client, urls []string) (total float64, n int) {
	for _, u := range urls {
		m, err := scrape(client, u)
		if err != nil || m["process_cpu_seconds_total"] == nil {
			continue
		}
		total += gauge(m, "process_cpu_seconds_total")
		n++
	}
	return total, n
}

func nodeCPU(before, after float64, nodes int, elapsed time.Duration, answers int64) *NodeCPU {
	if nodes == 0 || after < before || elapsed <= 0 {
		return nil
	}
	c := &NodeCPU{Seconds: after - before, Nodes: nodes}
	c.Cores = c.Seconds / elapsed.Seconds()
	if answers > 0 {
		c.MicrosPerOrder = c.Seconds / float64(answers) * 1e6
	}
	return c
}
