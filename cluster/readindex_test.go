package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAppliedProgressWaits(t *testing.T) {
	var a appliedProgress
	a.init(5)
	if err := a.wait(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.wait(context.Background(), 8) }()
	a.advance(7)
	select {
	case err := <-done:
		t.Fatalf("returned at index 7 waiting for 8: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.advance(8)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after index 8 was applied")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := a.wait(ctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for an index never applied: %v", err)
	}
}

// A partition's reads see every write acknowledged before them: a read
// index on the leader waits until its state machine applied the commit
// index.
func TestReadIndexOnLeader(t *testing.T) {
	dir := t.TempDir()
	opts := Options{DataDir: dir, RaftAddr: freeAddr(t), Partitions: 1, Logger: testLogger(),
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond}
	h, err := Open(opts, func(_ uint32, prefix []byte) StateMachine { return &counter{prefix: prefix} })
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	p := h.Partitions()[0]
	// A new leader that has taken no command yet: its last entry is the
	// no-op of its term, which the state machine never sees.
	fresh, cancelFresh := context.WithTimeout(ctx, 2*time.Second)
	defer cancelFresh()
	if _, found, err := p.Get(fresh, append(append([]byte{}, p.Prefix...), 'k')); err != nil || found {
		t.Fatalf("read on a new leader before any command: found %v, %v", found, err)
	}
	// Concurrent writers and readers: every read sees at least the writes
	// acknowledged before it started.
	var acked sync.Map // writer -> highest count acknowledged
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := p.Propose(ctx, []byte("k"))
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(w, count(res))
				v, ok, err := p.Get(ctx, append(append([]byte{}, p.Prefix...), 'k'))
				if err != nil || !ok {
					t.Errorf("read after write: %v %v", ok, err)
					return
				}
				if got := count(v); got < count(res) {
					t.Errorf("read %d after write %d was acknowledged", got, count(res))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := p.readIndex(ctx); err != nil {
		t.Fatalf("read index on the leader: %v", err)
	}
	if got, want := p.fsm.progress.index.Load(), p.raft.CommitIndex(); got < want {
		t.Fatalf("applied %d after a read index, commit index %d", got, want)
	}
}
