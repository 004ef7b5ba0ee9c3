package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func memDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRaftStoreLogs(t *testing.T) {
	db := memDB(t)
	s, other := NewRaftStore(db, 1), NewRaftStore(db, 2)
	if i, err := s.FirstIndex(); err != nil || i != 0 {
		t.Fatalf("empty first: %d %v", i, err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("cmd-%d", i)),
			Extensions: []byte{byte(i)}, AppendedAt: time.Unix(0, int64(i)*1000)})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := other.StoreLog(&raft.Log{Index: 99, Term: 1, Data: []byte("other group")}); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 1 || last != 10 {
		t.Fatalf("first %d last %d", first, last)
	}
	var got raft.Log
	if err := s.GetLog(7, &got); err != nil {
		t.Fatal(err)
	}
	if got.Index != 7 || got.Term != 3 || string(got.Data) != "cmd-7" || got.Extensions[0] != 7 || got.AppendedAt.UnixNano() != 7000 {
		t.Fatalf("log 7: %+v", got)
	}
	if err := s.GetLog(11, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("missing log: %v", err)
	}
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	if first, _ = s.FirstIndex(); first != 5 {
		t.Fatalf("first after delete: %d", first)
	}
	if last, _ = other.LastIndex(); last != 99 {
		t.Fatalf("other group touched: %d", last)
	}
}

func TestRaftStoreStable(t *testing.T) {
	s := NewRaftStore(memDB(t), 0)
	// hashicorp/raft compares the text of this error.
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing uint: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("uint: %d %v", v, err)
	}
	if err := s.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("get: %q %v", v, err)
	}
}

func TestDecodeLogRejectsGarbage(t *testing.T) {
	var l raft.Log
	for _, b := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 40)} {
		if err := decodeLog(b, &l); err == nil {
			t.Fatalf("accepted %x", b)
		}
	}
}

// Large entries are stored compressed, small ones and incompressible ones
// as they are, and both decode to the entry; an entry stored before
// compression existed (type byte without the flag) still decodes.
func TestLogEntriesCompressed(t *testing.T) {
	batch := bytes.Repeat([]byte(`{"order":"o_0123","sku":"HOT","qty":1,"warehouse":"WH1"},`), 100)
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)
	for _, c := range []struct {
		name       string
		data       []byte
		compressed bool
	}{{"batch", batch, true}, {"small", []byte("x"), false}, {"incompressible", random, false}} {
		in := &raft.Log{Term: 3, Type: raft.LogCommand, Data: c.data, Extensions: []byte("e"), AppendedAt: time.Unix(0, 42)}
		b := encodeLog(in)
		if got := b[8]&logCompressedFlag != 0; got != c.compressed {
			t.Errorf("%s: compressed %v", c.name, got)
		}
		if c.compressed && len(b) > len(c.data)/2 {
			t.Errorf("%s: %d bytes stored for %d", c.name, len(b), len(c.data))
		}
		var out raft.Log
		if err := decodeLog(b, &out); err != nil || out.Term != 3 || out.Type != raft.LogCommand || !bytes.Equal(out.Data, c.data) ||
			string(out.Extensions) != "e" || out.AppendedAt.UnixNano() != 42 {
			t.Errorf("%s: decoded %+v, %v", c.name, out, err)
		}
	}
	// The stored form before compression: the same layout, no flag.
	old := binary.BigEndian.AppendUint64(nil, 2)
	old = append(old, byte(raft.LogCommand))
	old = binary.BigEndian.AppendUint64(old, 0)
	old = binary.BigEndian.AppendUint32(old, uint32(len(batch)))
	old = append(old, batch...)
	old = binary.BigEndian.AppendUint32(old, 0)
	var out raft.Log
	if err := decodeLog(old, &out); err != nil || !bytes.Equal(out.Data, batch) || out.Term != 2 {
		t.Fatalf("an entry stored before compression: %v", err)
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog(&raft.Log{Term: 1, Data: []byte("x"), Extensions: []byte("e")}))
	f.Add(encodeLog(&raft.Log{Term: 1, Data: bytes.Repeat([]byte("order "), 200)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err == nil {
			// What decodes re-encodes to something that decodes to the same entry.
			var l2 raft.Log
			if err := decodeLog(encodeLog(&l), &l2); err != nil || !bytes.Equal(l.Data, l2.Data) || l.Type != l2.Type ||
				!bytes.Equal(l.Extensions, l2.Extensions) || l.Term != l2.Term {
				t.Fatalf("re-encoding %+v: %+v %v", l, l2, err)
			}
		}
	})
}

func TestMuxRoutesByGroup(t *testing.T) {
	m, err := ListenMux("127.0.0.1:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, _ := m.Layer(1)
	b, _ := m.Layer(2)
	if _, err := m.Layer(1); err == nil {
		t.Fatal("group registered twice")
	}
	for _, l := range []raft.StreamLayer{a, b} {
		c, err := l.Dial(raft.ServerAddress(m.Addr().String()), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "hello")
		defer c.Close()
	}
	for _, want := range []raft.StreamLayer{b, a} {
		c, err := want.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := c.Read(buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read %q %v", buf, err)
		}
		c.Close()
	}
	// A connection for an unknown group is closed.
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write(binary.BigEndian.AppendUint32(nil, 77))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("unknown group was not closed")
	}
}

// counter is a StateMachine that counts applies per key.
type counter struct{ prefix []byte }

func (c *counter) Apply(b *pebble.Batch, _ uint64, cmd []byte) []byte {
	k := append(append([]byte{}, c.prefix...), cmd...)
	var n uint64
	if v, closer, err := b.Get(k); err == nil {
		n = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	n++
	_ = b.Set(k, binary.BigEndian.AppendUint64(nil, n), nil)
	return binary.BigEndian.AppendUint64(nil, n)
}

func count(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func read(t *testing.T, h *Host, p *Partition, key string) uint64 {
	v, closer, err := h.DB().Get(append(append([]byte{}, p.Prefix...), key...))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	defer closer.Close()
	return binary.BigEndian.Uint64(v)
}

// A restarted host replays its Raft log but applies no entry twice, also
// across a snapshot; and it refuses another partition count.
func TestHostAppliesExactlyOnceAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	opts := Options{DataDir: dir, RaftAddr: addr, Partitions: 2, SnapshotThreshold: 16, Logger: testLogger(),
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond}
	newSM := func(_ uint32, prefix []byte) StateMachine { return &counter{prefix: prefix} }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Open(opts, newSM)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	p := h.PartitionOf("k")
	for i := 1; i <= 100; i++ {
		res, err := p.Propose(ctx, []byte("k"))
		if err != nil || count(res) != uint64(i) {
			t.Fatalf("propose %d: %v %v", i, res, err)
		}
	}
	// Snapshot (the log is compacted behind it), then 10 more.
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 101; i <= 110; i++ {
		if res, err := p.Propose(ctx, []byte("k")); err != nil || count(res) != uint64(i) {
			t.Fatalf("propose %d: %v %v", i, res, err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		h, err = Open(opts, newSM)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		p = h.PartitionOf("k")
		if got := read(t, h, p, "k"); got != 110 {
			t.Fatalf("round %d: counter %d after restart, want 110", round, got)
		}
		h.Close()
	}
	// A restore cut short by a crash (marker set, the range half rewritten,
	// here wiped): the next start restores the snapshot again, then replays.
	db, err := pebble.Open(filepath.Join(dir, "pebble"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Set(binary.BigEndian.AppendUint32([]byte("m/restoring/"), p.ID), nil, pebble.Sync)
	_ = db.DeleteRange(p.Prefix, prefixEnd(p.Prefix), pebble.Sync)
	db.Close()
	h, err = Open(opts, newSM)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(t, h, h.PartitionOf("k"), "k"); got != 110 {
		t.Fatalf("after an interrupted restore: counter %d, want 110", got)
	}
	if _, closer, err := h.DB().Get(binary.BigEndian.AppendUint32([]byte("m/restoring/"), p.ID)); err == nil {
		closer.Close()
		t.Fatal("restore marker left behind")
	}
	h.Close()
	opts.Partitions = 3
	if _, err := Open(opts, newSM); !errors.Is(err, ErrIncompatibleData) {
		t.Fatalf("reopen with 3 partitions: %v", err)
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type bufferSink struct {
	bytes.Buffer
	cancelled bool
}

func (b *bufferSink) ID() string    { return "test" }
func (b *bufferSink) Cancel() error { b.cancelled = true; return nil }
func (b *bufferSink) Close() error  { return nil }

// A snapshot of one partition restores into another database exactly,
// replacing what was there and leaving other partitions alone.
func TestSnapshotRestore(t *testing.T) {
	src, dst := memDB(t), memDB(t)
	prefix := []byte("p/\x00\x00\x00\x01/")
	f, _ := newFSM(src, 0, prefix, &counter{prefix: prefix})
	for i := uint64(1); i <= 5; i++ {
		f.ApplyBatch([]*raft.Log{{Index: i, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("k%d", i%2))}})
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	_ = dst.Set(append(append([]byte{}, prefix...), "stale"...), []byte("x"), nil)
	_ = dst.Set([]byte("p/\x00\x00\x00\x02/keep"), []byte("y"), nil)
	g, _ := newFSM(dst, 0, prefix, &counter{prefix: prefix})
	if err := g.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if g.applied != 5 {
		t.Fatalf("applied %d after restore", g.applied)
	}
	if _, _, err := dst.Get(append(append([]byte{}, prefix...), "stale"...)); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatal("restore kept a stale key")
	}
	if _, _, err := dst.Get([]byte("p/\x00\x00\x00\x02/keep")); err != nil {
		t.Fatal("restore touched another partition")
	}
	// Replayed entries are skipped; new ones apply.
	out := g.ApplyBatch([]*raft.Log{{Index: 5, Type: raft.LogCommand, Data: []byte("k1")}, {Index: 6, Type: raft.LogCommand, Data: []byte("k1")}})
	if out[0] != nil || count(out[1].([]byte)) != 4 {
		t.Fatalf("after restore: %v", out)
	}
}
