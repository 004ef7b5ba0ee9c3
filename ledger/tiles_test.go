package ledger

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/merkle"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// TestTilesMatchMemTree appends in batches of random sizes (crossing tiles of
// three levels) and checks roots and proofs against the in-memory tree.
func TestTilesMatchMemTree(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := []byte("p/x/")
	m := NewMachine(0, prefix).(*Machine)
	var mem merkle.MemTree
	rng := rand.New(rand.NewPCG(7, 7))
	const total = 66_000 // past 256*256: a level-2 tile
	next := outbox.Cursor{}
	for mem.Size() < total {
		n := 1 + rng.IntN(3000)
		a := &ledgerpb.LedgerAppend{FromIndex: next.Index, NextIndex: next.Index + 1}
		for i := 0; i < n; i++ {
			leaf := []byte(fmt.Sprintf("leaf %d", mem.Size()))
			mem.Append(leaf)
			a.Leaves = append(a.Leaves, &ledgerpb.LedgerLeaf{Leaf: leaf})
		}
		next.Index++
		data, _ := proto.Marshal(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Append{Append: a}})
		b := db.NewIndexedBatch()
		var res ledgerpb.LedgerResult
		_ = proto.Unmarshal(m.Apply(b, 0, data), &res)
		if res.Error != "" {
			t.Fatal(res.Error)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		l := NewLog(db, prefix)
		size := mem.Size()
		got, err := l.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := merkle.Root(&mem, size)
		if got != want {
			t.Fatalf("root of %d: %s, want %s", size, got, want)
		}
		for k := 0; k < 5; k++ {
			old := 1 + rng.Uint64N(size)
			i := rng.Uint64N(old)
			p, err := l.InclusionProof(i, old)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := merkle.InclusionProof(&mem, i, old)
			if fmt.Sprint(p) != fmt.Sprint(q) {
				t.Fatalf("proof of %d in %d differs", i, old)
			}
			c, err := merkle.ConsistencyProof(l.hashes(), old, size)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := merkle.ConsistencyProof(&mem, old, size)
			if fmt.Sprint(c) != fmt.Sprint(d) {
				t.Fatalf("consistency %d..%d differs", old, size)
			}
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	prefix := []byte("p/x/")
	m := NewMachine(0, prefix).(*Machine)
	leaf := (&Event{V: 1, Kind: KindStock, Type: "reserved", Order: "order-123456", SKU: "SKU-1", Warehouse: "WH-1", Qty: 1, At: FormatTime(0)}).Encode()
	const batch = 1024
	next := uint64(0)
	b.SetBytes(int64(len(leaf)) * batch)
	for b.Loop() {
		a := &ledgerpb.LedgerAppend{FromIndex: next, NextIndex: next + 1}
		for i := 0; i < batch; i++ {
			a.Leaves = append(a.Leaves, &ledgerpb.LedgerLeaf{Leaf: leaf, Order: "order-123456"})
		}
		next++
		data, _ := proto.Marshal(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Append{Append: a}})
		bt := db.NewIndexedBatch()
		m.Apply(bt, 0, data)
		if err := bt.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "leaves/s")
}

func BenchmarkInclusionProof(b *testing.B) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	prefix := []byte("p/x/")
	m := NewMachine(0, prefix).(*Machine)
	const size = 1 << 20
	for next := uint64(0); next < size/4096; next++ {
		a := &ledgerpb.LedgerAppend{FromIndex: next, NextIndex: next + 1}
		for i := 0; i < 4096; i++ {
			a.Leaves = append(a.Leaves, &ledgerpb.LedgerLeaf{Leaf: []byte(fmt.Sprint(next, i))})
		}
		data, _ := proto.Marshal(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Append{Append: a}})
		bt := db.NewIndexedBatch()
		m.Apply(bt, 0, data)
		_ = bt.Commit(pebble.NoSync)
	}
	l := NewLog(db, prefix)
	rng := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		if _, err := l.InclusionProof(rng.Uint64N(size-7), size-7); err != nil {
			b.Fatal(err)
		}
	}
}
