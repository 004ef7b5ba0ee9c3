// Package clustertest is test support: a twin of a multi-node ordergrid
// cluster in one process. It starts N real cluster.Hosts (real
// hashicorp/raft, real Pebble in the test's temporary directories, the real
// mux and internal RPC) on an in-memory Network whose links a test can cut
// and heal, one direction or both, and whose nodes it can crash and restart
// on their data directories. Only the medium of the bytes changes; Raft's
// timers and scheduling stay those of the wall clock.
//
// It is to cluster what hashicorp/raft's InmemTransport (with Connect and
// Disconnect) is to raft, one layer lower: the transport is raft's own
// NetworkTransport, over connections of the in-memory network.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
)

// Options configure a Cluster. Zero fields take the documented defaults.
type Options struct {
	// Nodes is the number of voters. Default 3.
	Nodes int
	// Partitions is the number of Raft groups of every host. Default 2.
	Partitions int
	// Machine makes the partitions' state machines. Required.
	Machine cluster.StateMachineFactory
	// HeartbeatTimeout and ElectionTimeout as in cluster.Options. Default
	// 200ms: elections are quick and still rare on a busy 2-core machine.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// SnapshotThreshold as in cluster.Options. Default cluster's.
	SnapshotThreshold uint64
	// Logger receives the hosts' logs. Default: discarded.
	Logger *slog.Logger
	// Tune, if set, adjusts node i's host options before its first start
	// (a longer election timeout on one node, say).
	Tune func(i int, o *cluster.Options)
}

func (o *Options) withDefaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Partitions == 0 {
		o.Partitions = 2
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = 200 * time.Millisecond
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Cluster is N hosts on one in-memory Network. Nodes are numbered from 0;
// node i has id "node{i+1}" and address "node{i+1}:7000".
type Cluster struct {
	// Net is the network the hosts talk over.
	Net  *Network
	opts Options

	mu    sync.Mutex
	nodes []*node
}

type node struct {
	opts cluster.Options
	host *cluster.Host // nil while stopped
}

// Start starts the cluster's hosts and closes them when the test ends. It
// does not wait for leaders: WaitReady does.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	opts.withDefaults()
	if opts.Machine == nil {
		t.Fatal("clustertest: Options.Machine is required")
	}
	c := &Cluster{Net: NewNetwork(), opts: opts}
	var peers []cluster.Peer
	for i := 0; i < opts.Nodes; i++ {
		peers = append(peers, cluster.Peer{ID: fmt.Sprintf("node%d", i+1), RaftAddr: fmt.Sprintf("node%d:7000", i+1)})
	}
	for _, p := range peers {
		c.nodes = append(c.nodes, &node{opts: cluster.Options{
			DataDir: t.TempDir(), NodeID: p.ID, RaftAddr: p.RaftAddr, Peers: peers, Partitions: opts.Partitions,
			HeartbeatTimeout: opts.HeartbeatTimeout, ElectionTimeout: opts.ElectionTimeout,
			SnapshotThreshold: opts.SnapshotThreshold, CacheBytes: 8 << 20,
			Logger: opts.Logger.With(slog.String("node", p.ID)), Network: c.Net.Endpoint(p.RaftAddr),
		}})
	}
	if opts.Tune != nil {
		for i, n := range c.nodes {
			opts.Tune(i, &n.opts)
		}
	}
	t.Cleanup(func() { _ = c.Close() })
	for i := range c.nodes {
		if err := c.Restart(i); err != nil {
			t.Fatalf("clustertest: start node %d: %v", i, err)
		}
	}
	return c
}

// Len is the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// ID is node i's id in Raft configurations.
func (c *Cluster) ID(i int) string { return c.nodes[i].opts.NodeID }

// Addr is node i's address on the network.
func (c *Cluster) Addr(i int) string { return c.nodes[i].opts.RaftAddr }

// Host is node i's host, or nil while it is stopped.
func (c *Cluster) Host(i int) *cluster.Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].host
}

// Running are the nodes that are not stopped, in order.
func (c *Cluster) Running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, n := range c.nodes {
		if n.host != nil {
			out = append(out, i)
		}
	}
	return out
}

// Stop crashes node i: it drops off the network at once (its connections
// reset, nothing more in or out, so it says no goodbye), then its host
// closes. Pebble keeps what was written to it, synced or not: a process
// crash, not a power loss.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	h := n.host
	n.host = nil
	c.mu.Unlock()
	if h == nil {
		return fmt.Errorf("clustertest: node %d is not running", i)
	}
	c.Net.Crash(n.opts.RaftAddr)
	if err := h.Close(); err != nil {
		return fmt.Errorf("clustertest: close node %d: %w", i, err)
	}
	return nil
}

// Restart starts node i again on its data directory (or for the first
// time): it replays its log from what Pebble holds.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.host != nil {
		return fmt.Errorf("clustertest: node %d is running", i)
	}
	c.Net.Revive(n.opts.RaftAddr)
	h, err := cluster.Open(n.opts, c.opts.Machine)
	if err != nil {
		return fmt.Errorf("clustertest: open node %d: %w", i, err)
	}
	n.host = h
	return nil
}

// Cut cuts the link from node i to node j (one direction).
func (c *Cluster) Cut(i, j int) { c.Net.Cut(c.Addr(i), c.Addr(j)) }

// Heal heals the link from node i to node j.
func (c *Cluster) Heal(i, j int) { c.Net.Heal(c.Addr(i), c.Addr(j)) }

// Partition cuts both directions between nodes i and j.
func (c *Cluster) Partition(i, j int) { c.Net.Partition(c.Addr(i), c.Addr(j)) }

// Join heals both directions between nodes i and j.
func (c *Cluster) Join(i, j int) { c.Net.Join(c.Addr(i), c.Addr(j)) }

// Isolate cuts node i off from every other node, both directions.
func (c *Cluster) Isolate(i int) {
	for j := range c.nodes {
		if j != i {
			c.Partition(i, j)
		}
	}
}

// HealAll heals every link.
func (c *Cluster) HealAll() { c.Net.HealAll() }

// WaitReady waits until every running host's partitions have a leader and
// the host has caught up with it (cluster.Host.WaitReady).
func (c *Cluster) WaitReady(ctx context.Context) error {
	for _, i := range c.Running() {
		h := c.Host(i)
		if h == nil {
			continue
		}
		if err := h.WaitReady(ctx); err != nil {
			return fmt.Errorf("clustertest: node %d: %w", i, err)
		}
	}
	return nil
}

// ErrNoLeader is returned by Leader when no running node leads the
// partition within the context.
var ErrNoLeader = errors.New("clustertest: no leader")

// Leader waits until one running node leads partition p (of the hashed
// partitions) and returns it. A deposed leader that does not know it yet
// may answer too: the caller's next call on it fails with
// cluster.ErrNotLeader, as a client's would.
func (c *Cluster) Leader(ctx context.Context, p int) (int, error) {
	for {
		for _, i := range c.Running() {
			if h := c.Host(i); h != nil && h.Partitions()[p].IsLeader() {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("partition %d: %w: %w", p, ErrNoLeader, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close closes every running host.
func (c *Cluster) Close() error {
	var errs []error
	for _, i := range c.Running() {
		errs = append(errs, c.Stop(i))
	}
	return errors.Join(errs...)
}
