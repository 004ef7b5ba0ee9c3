package clustertest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster/clustertest"
)

// waitCount waits until node i's replica of partition 0 holds count for
// key "k", and fails the test after within.
func waitCount(t *testing.T, c *clustertest.Cluster, i int, want uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got uint64
	for time.Now().Before(deadline) {
		var err error
		if got, err = clustertest.LocalCount(c.Host(i), 0, "k"); err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("node %d: count %d, want %d after %s", i, got, want, within)
}

func propose(t *testing.T, ctx context.Context, c *clustertest.Cluster, from, n int, want uint64) uint64 {
	t.Helper()
	p := c.Host(from).Partitions()[0]
	for k := 0; k < n; k++ {
		res, err := p.Propose(ctx, []byte("k"))
		if err != nil {
			t.Fatalf("propose through node %d: %v", from, err)
		}
		want++
		if got := clustertest.Count(res); got != want {
			t.Fatalf("propose through node %d: count %d, want %d", from, got, want)
		}
	}
	return want
}

// A follower behind a cut link (one direction, then both) gets nothing
// while the majority commits; after the heal it catches up.
func TestCutLinkStopsReplicationHealRestores(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Partitions: 1, Machine: clustertest.Counter})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	leader, err := c.Leader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	follower := (leader + 1) % c.Len()
	want := propose(t, ctx, c, leader, 5, 0)
	waitCount(t, c, follower, want, 10*time.Second)

	for _, both := range []bool{false, true} {
		if both {
			c.Partition(leader, follower)
		} else {
			c.Cut(leader, follower)
		}
		// The leader may change (the follower, starved, calls elections
		// the others refuse while their leader is alive): propose through
		// whichever of the other two leads.
		lead, err := c.Leader(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if lead == follower {
			t.Fatalf("both=%v: the cut-off follower leads", both)
		}
		before, _ := clustertest.LocalCount(c.Host(follower), 0, "k")
		want = propose(t, ctx, c, lead, 20, want)
		time.Sleep(500 * time.Millisecond) // ample for a replica that is reachable
		after, _ := clustertest.LocalCount(c.Host(follower), 0, "k")
		if after != before {
			t.Fatalf("both=%v: the cut-off follower applied %d -> %d", both, before, after)
		}
		if both {
			c.Join(leader, follower)
		} else {
			c.Heal(leader, follower)
		}
		waitCount(t, c, follower, want, 15*time.Second)
	}
}

// A crashed node misses what the others commit meanwhile; restarted on
// its data directory, it replays its own log and catches up; a crashed
// leader is replaced and keeps what it committed.
func TestStopRestartReplays(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Partitions: 1, Machine: clustertest.Counter, SnapshotThreshold: 16})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	leader, err := c.Leader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	follower := (leader + 1) % c.Len()
	want := propose(t, ctx, c, leader, 30, 0)
	waitCount(t, c, follower, want, 10*time.Second)
	if err := c.Stop(follower); err != nil {
		t.Fatal(err)
	}
	if c.Host(follower) != nil {
		t.Fatal("a stopped node still has a host")
	}
	want = propose(t, ctx, c, leader, 30, want)
	if err := c.Restart(follower); err != nil {
		t.Fatal(err)
	}
	waitCount(t, c, follower, want, 15*time.Second)

	if err := c.Stop(leader); err != nil {
		t.Fatal(err)
	}
	next, err := c.Leader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = propose(t, ctx, c, next, 5, want)
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c.Len(); i++ {
		waitCount(t, c, i, want, 15*time.Second)
	}
}

// The network's connections: bytes across a cut link are held and
// arrive after the heal; a read waiting meanwhile times out at its
// deadline; a dial across a cut waits for the heal; a crashed address
// refuses dials and resets its connections.
func TestNetworkHoldsBytesAcrossACut(t *testing.T) {
	n := clustertest.NewNetwork()
	ln, err := n.Endpoint("b").Listen("b")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := n.Endpoint("a").Dial(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if a.RemoteAddr().String() != "b" || b.RemoteAddr().String() != "a" {
		t.Fatalf("addresses %s %s", a.RemoteAddr(), b.RemoteAddr())
	}
	n.Cut("a", "b")
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 5)
	if _, err := b.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read across a cut: %v", err)
	}
	// The other direction still carries bytes.
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, buf[:1]); err != nil || buf[0] != 'x' {
		t.Fatalf("read the uncut direction: %q %v", buf[:1], err)
	}
	dialed := make(chan error, 1)
	go func() {
		c, err := n.Endpoint("a").Dial(ctx, "b")
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	select {
	case err := <-dialed:
		t.Fatalf("a dial across a cut returned: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	n.Heal("a", "b")
	if err := <-dialed; err != nil {
		t.Fatalf("dial after the heal: %v", err)
	}
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("held bytes after the heal: %q %v", buf, err)
	}
	n.Crash("b")
	if _, err := b.Read(buf); err == nil {
		t.Fatal("a crashed address's connection still reads")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("a connection to a crashed address still writes")
	}
	if _, err := n.Endpoint("a").Dial(ctx, "b"); !errors.Is(err, clustertest.ErrRefused) {
		t.Fatalf("dial to a crashed address: %v", err)
	}
	n.Revive("b")
	a.Close()
	var nerr net.Error
	if _, err := a.Read(buf); err == nil || errors.As(err, &nerr) && nerr.Timeout() {
		t.Fatalf("read on a closed connection: %v", err)
	}
}
