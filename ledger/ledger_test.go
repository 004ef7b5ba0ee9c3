package ledger_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/merkle"
	"github.com/ordergrid/ordergrid/ledger/outbox"
	"github.com/ordergrid/ordergrid/statemachine"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// node is one single-node host with its sequencer running.
type node struct {
	host   *cluster.Host
	seq    *ledger.Sequencer
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, dir, addr string) *node {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := cluster.Open(cluster.Options{DataDir: dir, RaftAddr: addr, Partitions: 2, Logger: logger,
		Groups: []cluster.Group{{Name: ledger.GroupName, Machine: ledger.NewMachine}}}, statemachine.New)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSequencer(h, ledger.SequencerOptions{Origin: "ordergrid.test/ledger",
		CheckpointInterval: 30 * time.Millisecond, BatchLeavesMax: 64, Logger: logger,
		TrimOutbox: statemachine.TrimOutbox, TrimInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	n := &node{host: h, seq: s, cancel: rcancel, done: make(chan struct{})}
	go func() { defer close(n.done); s.Run(rctx) }()
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
	n.host.Close()
}

func propose(t *testing.T, h *cluster.Host, key string, cmd *gridpb.Command) *gridpb.ApplyResult {
	t.Helper()
	cmd.AtUnixNano = time.Now().UnixNano()
	cmd.Principal = "test"
	data, _ := proto.Marshal(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := h.PartitionOf(key).Propose(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	var res gridpb.ApplyResult
	if err := proto.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// load makes orders orders of one SKU, each created, reserved and paid, and
// returns the number of events it caused.
func load(t *testing.T, h *cluster.Host, from, orders int) int {
	t.Helper()
	events := 0
	if from == 0 {
		propose(t, h, "SKU-1", &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "SKU-1", Warehouse: "WH-1", OnHand: 1_000_000}}})
		events++
	}
	for i := from; i < from+orders; i++ {
		id := fmt.Sprintf("order-%d", i)
		far := time.Now().Add(time.Hour).UnixNano()
		propose(t, h, "SKU-1", &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "SKU-1",
			Items: []*gridpb.ReserveItem{{OrderId: id, Qty: 2, ExpiresUnixNano: far}}}}})
		res := propose(t, h, id, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: &gridpb.OrderRecord{
			Id: id, Channel: "tmall", PayByUnixNano: far, Lines: []*gridpb.OrderLineRecord{{Sku: "SKU-1", Qty: 2, UnitPrice: "9.90", Warehouse: "WH-1"}}}}}})
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("create %s: %v %s", id, res.Outcome, res.Detail)
		}
		propose(t, h, id, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: id, Type: lifecycle.StatusPaid}}})
		events += 3
	}
	return events
}

func waitCheckpoint(t *testing.T, l *ledger.Log, size uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, _, err := l.LatestCheckpoint()
		if err == nil && got == size {
			return
		}
		if got > size {
			t.Fatalf("checkpoint of %d leaves, expected %d: events doubled", got, size)
		}
		if time.Now().After(deadline) {
			n, _ := l.Size()
			t.Fatalf("no checkpoint of %d leaves (latest %d, tree %d): %v", size, got, n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSequencerExactlyOnceAcrossRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	n := start(t, dir, addr)
	want := load(t, n.host, 0, 120)
	l := n.seq.Log()
	waitCheckpoint(t, l, uint64(want))
	size1, signed1, _ := l.LatestCheckpoint()
	n.stop()

	n = start(t, dir, addr)
	defer n.stop()
	l = n.seq.Log()
	want += load(t, n.host, 120, 30)
	waitCheckpoint(t, l, uint64(want))
	time.Sleep(100 * time.Millisecond) // a doubled batch would show up now
	if size, _ := l.Size(); size != uint64(want) {
		t.Fatalf("tree has %d leaves, %d events were committed", size, want)
	}

	// Every event once, in each partition's commit order.
	seen := map[string]bool{}
	last := map[uint32]uint64{}
	for i := uint64(0); i < uint64(want); i++ {
		leaf, err := l.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ledger.DecodeLeaf(leaf)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		id := fmt.Sprintf("%d/%d/%d", e.Partition, e.RaftIndex, e.N)
		if seen[id] {
			t.Fatalf("event %s twice", id)
		}
		seen[id] = true
		if e.RaftIndex < last[e.Partition] {
			t.Fatalf("partition %d out of order at leaf %d", e.Partition, i)
		}
		last[e.Partition] = e.RaftIndex
	}

	// The outboxes are trimmed up to what the log holds.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range n.host.Partitions() {
		for {
			cur, _ := l.Cursor(p.ID)
			left, _, err := outbox.Read(p.Applied(), p.Prefix, outbox.Cursor{}, 1, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) == 0 || left[0].At.Index >= cur.Index {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d's outbox still holds index %d, the log is at %d", p.ID, left[0].At.Index, cur.Index)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The old checkpoint is kept, and the new tree extends it.
	size2, signed2, _ := l.LatestCheckpoint()
	v, err := l.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := v.Open(signed1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := v.Open(signed2)
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := l.Checkpoint(size1); err != nil || !bytes.Equal(kept, signed1) {
		t.Fatalf("checkpoint %d not kept: %v", size1, err)
	}
	proof, err := l.ConsistencyProof(size1, size2)
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyConsistency(c1.Size, c2.Size, proof, c1.Root, c2.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ConsistencyProof(size1, size2-1); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("consistency to a size with no checkpoint: %v", err)
	}
}

func TestBundleVerifiesAndTamperIsCaught(t *testing.T) {
	n := start(t, t.TempDir(), freeAddr(t))
	defer n.stop()
	want := load(t, n.host, 0, 20)
	l := n.seq.Log()
	waitCheckpoint(t, l, uint64(want))
	b, err := l.Bundle("order-7")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(b)
	v, _ := l.Verifier()
	got, err := ledger.VerifyBundle(data, v)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range got.Entries {
		types = append(types, e.Event.Type)
	}
	slices.Sort(types) // the order's and the SKU's partitions are sequenced independently
	if fmt.Sprint(types) != "[created paid reserved]" {
		t.Fatalf("history %v", types)
	}
	if _, err := l.Bundle("no-such-order"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}

	// One byte changed anywhere that matters: rejected.
	tamper := map[string]func(b *ledger.Bundle){
		"leaf": func(b *ledger.Bundle) {
			leaf, _ := base64.StdEncoding.DecodeString(b.Entries[1].Leaf)
			leaf[len(leaf)/2] ^= 0x01
			b.Entries[1].Leaf = base64.StdEncoding.EncodeToString(leaf)
		},
		"proof": func(b *ledger.Bundle) {
			h, _ := base64.StdEncoding.DecodeString(b.Entries[0].Proof[0])
			h[3] ^= 0x80
			b.Entries[0].Proof[0] = base64.StdEncoding.EncodeToString(h)
		},
		"checkpoint": func(b *ledger.Bundle) {
			c := []byte(b.Checkpoint)
			c[len("ordergrid.test/ledger\n")] ^= 0x01 // the size
			b.Checkpoint = string(c)
		},
		"signature": func(b *ledger.Bundle) {
			c := []byte(b.Checkpoint)
			c[len(c)-10] ^= 0x01
			b.Checkpoint = string(c)
		},
		"event": func(b *ledger.Bundle) {
			b.Entries[2].Event = bytes.Replace(b.Entries[2].Event, []byte(`"type":"`), []byte(`"type":"x`), 1)
		},
		"index": func(b *ledger.Bundle) { b.Entries[2].Index++ },
		"omitted event": func(b *ledger.Bundle) {
			b.Entries = slices.DeleteFunc(b.Entries, func(e ledger.BundleEntry) bool { return bytes.Contains(e.Event, []byte(`"type":"created"`)) })
		},
		"event key case": func(b *ledger.Bundle) {
			b.Entries[0].Event = bytes.Replace(b.Entries[0].Event, []byte(`"kind"`), []byte(`"KIND"`), 1)
		},
		"no order":           func(b *ledger.Bundle) { b.Order = "" },
		"last entry removed": func(b *ledger.Bundle) { b.Entries = b.Entries[:len(b.Entries)-1] },
		"entry repeated":     func(b *ledger.Bundle) { b.Entries = append(b.Entries, b.Entries[len(b.Entries)-1]) },
		"no seal":            func(b *ledger.Bundle) { b.Seal = "" },
		"seal of another order": func(b *ledger.Bundle) {
			other, err := l.Bundle("order-8")
			if err != nil {
				t.Fatal(err)
			}
			b.Seal = other.Seal
		},
		"seal is the checkpoint": func(b *ledger.Bundle) { b.Seal = b.Checkpoint },
	}
	for name, f := range tamper {
		var c ledger.Bundle
		_ = json.Unmarshal(data, &c)
		f(&c)
		bad, _ := json.Marshal(c)
		if _, err := ledger.VerifyBundle(bad, v); !errors.Is(err, ledger.ErrBundle) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	// The last entry cut off: the seal names it as missing.
	var cut ledger.Bundle
	_ = json.Unmarshal(data, &cut)
	lastIndex := cut.Entries[len(cut.Entries)-1].Index
	cut.Entries = cut.Entries[:len(cut.Entries)-1]
	bad, _ := json.Marshal(cut)
	_, err = ledger.VerifyBundle(bad, v)
	if !errors.Is(err, ledger.ErrSeal) || !strings.Contains(err.Error(), fmt.Sprintf("leaf %d is missing", lastIndex)) {
		t.Fatalf("last entry cut: %v", err)
	}
	// A retention archive's bundle from before seals verifies without one
	// (VerifyArchivedBundle); a sealed one is still held to its seal.
	var unsealed ledger.Bundle
	_ = json.Unmarshal(data, &unsealed)
	unsealed.Seal = ""
	old, _ := json.Marshal(unsealed)
	if got, err := ledger.VerifyArchivedBundle(old, v); err != nil || got.Sealed {
		t.Fatalf("archived bundle without a seal: sealed %v, %v", got != nil && got.Sealed, err)
	}
	if _, err := ledger.VerifyBundle(old, v); !errors.Is(err, ledger.ErrSeal) {
		t.Fatalf("a partner's bundle without a seal: %v", err)
	}
	if _, err := ledger.VerifyArchivedBundle(bad, v); !errors.Is(err, ledger.ErrSeal) {
		t.Fatalf("archived bundle, sealed, last entry cut: %v", err)
	}
	// Every single byte of the raw bundle, flipped in turn.
	for i := 0; i < len(data); i += 7 {
		bad := bytes.Clone(data)
		bad[i] ^= 0x01
		if _, err := ledger.VerifyBundle(bad, v); err == nil {
			var orig, changed ledger.Bundle
			_ = json.Unmarshal(data, &orig)
			if json.Unmarshal(bad, &changed) == nil && fmt.Sprint(orig) == fmt.Sprint(changed) {
				continue // the byte was in insignificant JSON (e.g. an escape that decodes the same)
			}
			t.Fatalf("byte %d flipped (%q) and the bundle still verifies", i, bad[max(0, i-20):min(len(bad), i+20)])
		}
	}
}

func TestMachineRefusesStaleCursorAndBadCheckpoint(t *testing.T) {
	n := start(t, t.TempDir(), freeAddr(t))
	defer n.stop()
	want := load(t, n.host, 0, 3)
	l := n.seq.Log()
	waitCheckpoint(t, l, uint64(want))
	g := n.seq.Group()
	send := func(cmd *ledgerpb.LedgerCommand) *ledgerpb.LedgerResult {
		data, _ := proto.Marshal(cmd)
		out, err := g.Propose(context.Background(), data)
		if err != nil {
			t.Fatal(err)
		}
		var res ledgerpb.LedgerResult
		_ = proto.Unmarshal(out, &res)
		return &res
	}
	// A batch read again from the start of partition 0: refused, tree unchanged.
	res := send(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Append{Append: &ledgerpb.LedgerAppend{Partition: 0,
		NextIndex: 99, Leaves: []*ledgerpb.LedgerLeaf{{Leaf: []byte("x")}}}}})
	if res.Error == "" {
		t.Fatal("stale batch appended")
	}
	// A checkpoint signed by another key: refused.
	skey, _, _ := checkpoint.GenerateKey("ordergrid.test/ledger")
	s, _ := checkpoint.NewSigner(skey)
	root, _ := l.Root(uint64(want))
	forged, _ := s.Sign(checkpoint.Checkpoint{Origin: "ordergrid.test/ledger", Size: uint64(want), Root: root})
	if res := send(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Checkpoint{Checkpoint: &ledgerpb.LedgerCheckpoint{Signed: forged}}}); res.Error == "" {
		t.Fatal("forged checkpoint accepted")
	}
	if size, _ := l.Size(); size != uint64(want) {
		t.Fatalf("tree changed to %d leaves", size)
	}
}
