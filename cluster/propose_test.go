package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
)

// A command over CommandBytesMax is refused before it reaches Raft: its
// entry could not be read back.
func TestProposeRefusesTooLargeCommand(t *testing.T) {
	p := &Partition{ID: 1}
	if _, err := p.Propose(context.Background(), make([]byte, CommandBytesMax+1)); !errors.Is(err, ErrCommandTooLarge) {
		t.Fatalf("Propose: %v, want ErrCommandTooLarge", err)
	}
	if _, err := p.proposeLocal(context.Background(), make([]byte, CommandBytesMax+1)); !errors.Is(err, ErrCommandTooLarge) {
		t.Fatalf("proposeLocal: %v, want ErrCommandTooLarge", err)
	}
}

// A leader call whose handler fails for good (a command too large for one
// entry) tells the caller so, rather than "unavailable, retry".
func TestLeaderCallTooLargeIsNotRetryable(t *testing.T) {
	h, err := Open(Options{DataDir: t.TempDir(), RaftAddr: freeAddr(t), Partitions: 1, Logger: testLogger(),
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond},
		func(_ uint32, prefix []byte) StateMachine { return &counter{prefix: prefix} })
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	h.HandleLeaderCall("test.big", func(ctx context.Context, p *Partition, _ []byte) ([]byte, error) {
		_, err := p.Propose(ctx, make([]byte, CommandBytesMax+1))
		return nil, err
	})
	_, err = (&rpcServer{h: h}).LeaderCall(ctx, &clusterpb.LeaderCallRequest{Partition: 0, Method: "test.big"})
	if got := fromStatus(err); !errors.Is(got, ErrCommandTooLarge) {
		t.Fatalf("a forwarded call's too-large command arrives as %v", got)
	}
}
