package anchor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/fabrictest"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/anchor"
	"github.com/ordergrid/ordergrid/ledger/anchorcc"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
	"github.com/ordergrid/ordergrid/statemachine"
)

const origin = "ordergrid.test/ledger"

// fabric is the real anchoring chaincode behind Fabric's Gateway service,
// in-process, reached by the real client over TCP.
func fabric(t *testing.T) (*fabrictest.Server, *anchor.Fabric) {
	t.Helper()
	sim := fabrictest.New("ordergrid")
	cc, err := anchorcc.New()
	if err != nil {
		t.Fatal(err)
	}
	sim.Deploy("anchors", cc)
	addr, stop, err := sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	certFile, keyFile, err := fabrictest.WriteIdentity(t.TempDir(), "Org1MSP")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := anchor.DialFabric(anchor.FabricOptions{Endpoint: addr, MSPID: "Org1MSP",
		CertFile: certFile, KeyFile: keyFile, Channel: "ordergrid", Chaincode: "anchors"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	return sim, chain
}

func node(t *testing.T) (*cluster.Host, *ledger.Sequencer) {
	t.Helper()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := cluster.Open(cluster.Options{DataDir: t.TempDir(), RaftAddr: addr, Partitions: 2, Logger: logger,
		Groups: []cluster.Group{{Name: ledger.GroupName, Machine: ledger.NewMachine}}}, statemachine.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewSequencer(h, ledger.SequencerOptions{Origin: origin, CheckpointInterval: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	run(t, seq.Run)
	return h, seq
}

func run(t *testing.T, f func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func stock(t *testing.T, h *cluster.Host, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		data, _ := proto.Marshal(&gridpb.Command{AtUnixNano: time.Now().UnixNano(), Kind: &gridpb.Command_SetStock{
			SetStock: &gridpb.SetStockCommand{Sku: "SKU-1", Warehouse: "WH-1", OnHand: int64(100 + i)}}})
		if _, err := h.PartitionOf("SKU-1").Propose(context.Background(), data); err != nil {
			t.Fatal(err)
		}
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caughtUp reports whether the newest checkpoint is anchored and recorded.
func caughtUp(l *ledger.Log) bool {
	size, _, err := l.LatestCheckpoint()
	if err != nil {
		return false
	}
	a, err := l.LatestAnchor()
	return err == nil && a.Size == size
}

func TestWorkerAnchorsBacksOffAndCatchesUp(t *testing.T) {
	sim, chain := fabric(t)
	h, seq := node(t)
	l := seq.Log()
	w := anchor.NewWorker(seq, chain, anchor.Options{Interval: 30 * time.Millisecond, Channel: "ordergrid", Chaincode: "anchors"})
	run(t, w.Run)

	stock(t, h, 5)
	eventually(t, "the first anchor", func() bool { s, _ := l.Size(); return s == 5 && caughtUp(l) })
	a, _ := l.LatestAnchor()
	if a.TransactionId == "" || a.BlockNumber == 0 || a.Channel != "ordergrid" {
		t.Fatalf("anchor record %+v", a)
	}
	onChain, err := chain.Latest(context.Background(), origin)
	if err != nil || onChain.Size != a.Size || onChain.TxID != a.TransactionId {
		t.Fatalf("chain has %+v (%v), log recorded %+v", onChain, err, a)
	}

	// Fabric goes away: intake and checkpoints go on, anchoring fails.
	sim.SetUnavailable(true)
	for i := 0; i < 5; i++ {
		stock(t, h, 3)
		time.Sleep(40 * time.Millisecond) // several checkpoints
	}
	eventually(t, "failing state", func() bool { return w.Status().State == "failing" })
	st := w.Status()
	if st.BacklogSize == 0 || !strings.Contains(st.Error, "Unavailable") {
		t.Fatalf("status while Fabric is down: %+v", st)
	}
	eventually(t, "the last checkpoint", func() bool { s, _, _ := l.LatestCheckpoint(); return s == 20 })
	height := sim.Height()

	// Back: one transaction anchors the newest checkpoint.
	sim.SetUnavailable(false)
	eventually(t, "catching up", func() bool { return caughtUp(l) })
	if got := sim.Height(); got != height+1 {
		t.Fatalf("caught up in %d transactions, want 1", got-height)
	}
	// The anchor is recorded in the ledger just before the worker's own
	// status clears the error: wait for it rather than racing it.
	eventually(t, "status anchoring", func() bool { return w.Status().State == "anchoring" })
	if st := w.Status(); st.BacklogSize != 0 {
		t.Fatalf("status after catching up: %+v", st)
	}

	// The checkpoint of size 5 is anchored exactly; an unanchored one in
	// between is anchored by extension, with a consistency proof.
	v, _ := l.Verifier()
	open := func(size uint64) checkpoint.Checkpoint {
		signed, err := l.Checkpoint(size)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Open(signed)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	if msg, err := anchor.CheckAnchored(ctx, chain, v, open(5), nil); err != nil {
		t.Fatalf("size 5: %v", err)
	} else if !strings.Contains(msg, "this checkpoint is on the channel") {
		t.Fatal(msg)
	}
	mid := uint64(8)
	if _, err := l.Checkpoint(mid); err != nil {
		t.Skipf("no checkpoint of %d leaves to test with", mid)
	}
	if _, err := anchor.CheckAnchored(ctx, chain, v, open(mid), nil); !errors.Is(err, anchor.ErrNotAnchored) {
		t.Fatalf("without a proof source: %v", err)
	}
	proofs := func(_ context.Context, from, to uint64) ([]merkle.Hash, error) { return l.ConsistencyProof(from, to) }
	if _, err := anchor.CheckAnchored(ctx, chain, v, open(mid), proofs); err != nil {
		t.Fatalf("by extension: %v", err)
	}
	lying := func(_ context.Context, from, to uint64) ([]merkle.Hash, error) {
		p, err := l.ConsistencyProof(from, to)
		if len(p) > 0 {
			p[0][0] ^= 1
		}
		return p, err
	}
	if _, err := anchor.CheckAnchored(ctx, chain, v, open(mid), lying); !errors.Is(err, anchor.ErrNotAnchored) {
		t.Fatalf("a wrong proof: %v", err)
	}
}

// TestChainRefusesFork submits, through the real client, a checkpoint of a
// forked history signed by the log's own key: the chaincode refuses it.
func TestChainRefusesFork(t *testing.T) {
	_, chain := fabric(t)
	h, seq := node(t)
	l := seq.Log()
	w := anchor.NewWorker(seq, chain, anchor.Options{Interval: 30 * time.Millisecond})
	run(t, w.Run)
	stock(t, h, 4)
	eventually(t, "an anchor", func() bool { s, _ := l.Size(); return s == 4 && caughtUp(l) })
	key, _ := l.Key()
	signer, err := checkpoint.NewSigner(key.SignerKey)
	if err != nil {
		t.Fatal(err)
	}
	var fork merkle.MemTree
	for i := 0; i < 6; i++ {
		fork.Append([]byte("forged"))
	}
	root, _ := merkle.Root(&fork, 6)
	forged, _ := signer.Sign(checkpoint.Checkpoint{Origin: origin, Size: 6, Root: root})
	proof, _ := merkle.ConsistencyProof(&fork, 4, 6)
	_, err = chain.Anchor(context.Background(), key.VerifierKey, forged, merkle.EncodeProof(proof))
	if err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("forked checkpoint: %v", err)
	}
}

// TestForeignLogOnTheChannel: a second log under the same origin (another
// deployment, or this one reset) finds the first one's anchors on the
// channel and refuses to record or extend them.
func TestForeignLogOnTheChannel(t *testing.T) {
	_, chain := fabric(t)
	h1, seq1 := node(t)
	w1 := anchor.NewWorker(seq1, chain, anchor.Options{Interval: 30 * time.Millisecond})
	run(t, w1.Run)
	stock(t, h1, 6)
	eventually(t, "the first log's anchor", func() bool { s, _ := seq1.Log().Size(); return s == 6 && caughtUp(seq1.Log()) })

	h2, seq2 := node(t)
	w2 := anchor.NewWorker(seq2, chain, anchor.Options{Interval: 30 * time.Millisecond})
	run(t, w2.Run)
	stock(t, h2, 9)
	eventually(t, "the second log's refusal", func() bool {
		st := w2.Status()
		return st.State == "failing" && strings.Contains(st.Error, "not this log's")
	})
	if _, err := seq2.Log().LatestAnchor(); err == nil {
		t.Fatal("the second log recorded the first log's anchor")
	}
}
