package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/cluster/clustertest"
)

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
	// node1 leads partition 0 (the preferred voter) with a long lease,
	// heartbeating every 6 s; the others notice its silence after 8 s.
	c := clustertest.Start(t, clustertest.Options{Partitions: 1, Machine: clustertest.Counter,
		Tune: func(i int, o *cluster.Options) {
			timeout := 8 * time.Second
			if i == 0 {
				timeout = 60 * time.Second
			}
			o.HeartbeatTimeout, o.ElectionTimeout = timeout, timeout
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	leaderOf := func(within time.Duration, among ...int) int {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			for _, i := range among {
				if c.Host(i).Partitions()[0].IsLeader() {
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
	old := c.Host(0).Partitions()[0]
	key := append(append([]byte{}, old.Prefix...), 'k')
	if res, err := old.Propose(ctx, []byte("k")); err != nil || clustertest.Count(res) != 1 {
		t.Fatalf("first write: %v %v", res, err)
	}
	if v, _, err := old.Get(ctx, key); err != nil || clustertest.Count(v) != 1 {
		t.Fatalf("read on the leader before the cut: %v %v", v, err)
	}

	c.Isolate(0)
	next := leaderOf(40*time.Second, 1, 2)
	res, err := c.Host(next).Partitions()[0].Propose(ctx, []byte("k"))
	if err != nil || clustertest.Count(res) != 2 {
		t.Fatalf("write on the new leader: %v %v", res, err)
	}
	if !old.IsLeader() {
		t.Fatal("the old leader stepped down before the read; the test checked nothing (its lease is too short for this machine)")
	}
	readCtx, readCancel := context.WithTimeout(ctx, 2*time.Second)
	defer readCancel()
	v, found, err := old.Get(readCtx, key)
	switch {
	case err == nil && found && clustertest.Count(v) < 2:
		t.Fatalf("stale read on the deposed leader: %d, the new leader committed 2", clustertest.Count(v))
	case err == nil && found:
		t.Logf("read on the deposed leader: %d (fresh)", clustertest.Count(v))
	case err == nil:
		t.Fatal("read on the deposed leader: not found")
	case !errors.Is(err, cluster.ErrReadIndex) && !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("read on the deposed leader failed with an unexpected error: %v", err)
	default:
		t.Logf("read on the deposed leader refused: %v", err)
	}
}
