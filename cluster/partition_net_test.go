package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// cutNet is the hosts' network, which a test can cut: Dial refuses to
// connect to or from a cut-off address, and cutting one closes every
// connection it had.
type cutNet struct {
	mu    sync.Mutex
	off   map[string]bool
	conns []netConn
}

type netConn struct {
	from, to string
	c        net.Conn
}

func (n *cutNet) dialFrom(from string) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, to string) (net.Conn, error) {
		n.mu.Lock()
		off := n.off[from] || n.off[to]
		n.mu.Unlock()
		if off {
			return nil, fmt.Errorf("dial %s from %s: the network is cut", to, from)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", to)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.off[from] || n.off[to] {
			c.Close()
			return nil, fmt.Errorf("dial %s from %s: the network is cut", to, from)
		}
		n.conns = append(n.conns, netConn{from: from, to: to, c: c})
		return c, nil
	}
}

// cut isolates addr from every other host.
func (n *cutNet) cut(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.off[addr] = true
	kept := n.conns[:0]
	for _, c := range n.conns {
		if c.from == addr || c.to == addr {
			c.c.Close()
			continue
		}
		kept = append(kept, c)
	}
	n.conns = kept
}

// A leader cut off from the others keeps believing it leads until its
// lease runs out; meanwhile the others elect a new leader and commit. A
// read on the old leader must not answer its older state: its read index
// needs a quorum to confirm its leadership, which it cannot get, so the
// read fails rather than go stale. (With reads served from local state
// whenever raft says Leader, this read returns the old value.)
func TestDeposedLeaderServesNoStaleRead(t *testing.T) {
	if testing.Short() {
		t.Skip("elections with long timeouts: about 30 s")
	}
	net := &cutNet{off: map[string]bool{}}
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var peers []Peer
	for i, a := range addrs {
		peers = append(peers, Peer{ID: fmt.Sprintf("node%d", i+1), RaftAddr: a})
	}
	hosts := make([]*Host, 3)
	for i := range hosts {
		// node1 leads partition 0 (the preferred voter) with a long lease,
		// heartbeating every 6 s; the others notice its silence after 8 s.
		timeout := 8 * time.Second
		if i == 0 {
			timeout = 60 * time.Second
		}
		opts := Options{DataDir: t.TempDir(), NodeID: peers[i].ID, RaftAddr: addrs[i], Peers: peers, Partitions: 1,
			Logger: testLogger(), HeartbeatTimeout: timeout, ElectionTimeout: timeout, Dial: net.dialFrom(addrs[i])}
		h, err := Open(opts, func(_ uint32, prefix []byte) StateMachine { return &counter{prefix: prefix} })
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		hosts[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	leaderOf := func(within time.Duration, among ...int) int {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			for _, i := range among {
				if hosts[i].Partitions()[0].IsLeader() {
					return i
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no leader among %v within %s", among, within)
		return -1
	}
	// The others elect one of themselves first; it hands the partition
	// to node1, its preferred leader.
	leaderOf(60*time.Second, 0, 1, 2)
	leaderOf(60*time.Second, 0)
	old := hosts[0].Partitions()[0]
	key := append(append([]byte{}, old.Prefix...), 'k')
	if res, err := old.Propose(ctx, []byte("k")); err != nil || count(res) != 1 {
		t.Fatalf("first write: %v %v", res, err)
	}
	if v, _, err := old.Get(ctx, key); err != nil || count(v) != 1 {
		t.Fatalf("read on the leader before the cut: %v %v", v, err)
	}

	net.cut(addrs[0])
	next := leaderOf(40*time.Second, 1, 2)
	res, err := hosts[next].Partitions()[0].Propose(ctx, []byte("k"))
	if err != nil || count(res) != 2 {
		t.Fatalf("write on the new leader: %v %v", res, err)
	}
	if !old.IsLeader() {
		t.Fatal("the old leader stepped down before the read; the test checked nothing (its lease is too short for this machine)")
	}
	readCtx, readCancel := context.WithTimeout(ctx, 2*time.Second)
	defer readCancel()
	v, found, err := old.Get(readCtx, key)
	switch {
	case err == nil && found && count(v) < 2:
		t.Fatalf("stale read on the deposed leader: %d, the new leader committed 2", count(v))
	case err == nil && found:
		t.Logf("read on the deposed leader: %d (fresh)", count(v))
	case err == nil:
		t.Fatal("read on the deposed leader: not found")
	case !errors.Is(err, ErrReadIndex) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("read on the deposed leader failed with an unexpected error: %v", err)
	default:
		t.Logf("read on the deposed leader refused: %v", err)
	}
}
