package harness

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
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

// clockTicksPerSecond is the unit of utime and stime in /proc/<pid>/stat:
// USER_HZ, 100 on the Linux architectures Go runs on.
const clockTicksPerSecond = 100

// procCPUSeconds is the user plus system CPU time process pid ("self" for
// this one) has spent, from /proc/<pid>/stat: Linux only, 10ms resolution.
func procCPUSeconds(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %s: %w", pid, err)
	}
	// Field 2, the command, is in parentheses and may hold spaces and
	// parentheses itself: count the fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: no command field", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields after the command, want more than %d", pid, len(f), stime)
	}
	u, err := strconv.ParseUint(string(f[utime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%s/stat utime: %w", pid, err)
	}
	s, err := strconv.ParseUint(string(f[stime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%s/stat stime: %w", pid, err)
	}
	return float64(u+s) / clockTicksPerSecond, nil
}
