package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/merkle"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// GroupName is the name of the ledger's Raft group among cluster.Options.Groups.
const GroupName = "ledger"

// Keys of the ledger group's state, under its prefix:
//
//	n                          tree size, u64
//	c/{partition u32}          cursor into the partition's outbox (u64 index, u32 n)
//	l/{leaf index u64}         leaf bytes
//	o/{order}\x00{leaf u64}    the order's leaves
//	t/{level u8}{index u64}    tiles (see tiles.go)
//	k                          LedgerKey: the log's key
//	p/{size u64}               signed checkpoint of that size
//	P                          size of the newest checkpoint, u64
//	a/{size u64}               AnchorRecord of the checkpoint of that size
//	A                          size of the newest anchored checkpoint, u64
type keys struct{ prefix []byte }

func (k keys) key(s string, tail ...byte) []byte {
	out := make([]byte, 0, len(k.prefix)+len(s)+len(tail))
	out = append(out, k.prefix...)
	out = append(out, s...)
	return append(out, tail...)
}
func (k keys) size() []byte { return k.key("n") }
func (k keys) cursor(partition uint32) []byte {
	return k.key("c/", binary.BigEndian.AppendUint32(nil, partition)...)
}
func (k keys) leaf(i uint64) []byte { return k.key("l/", binary.BigEndian.AppendUint64(nil, i)...) }
func (k keys) orderPrefix(order string) []byte {
	return append(k.key("o/", []byte(order)...), 0)
}
func (k keys) orderLeaf(order string, i uint64) []byte {
	return binary.BigEndian.AppendUint64(k.orderPrefix(order), i)
}
func (k keys) logKey() []byte { return k.key("k") }
func (k keys) checkpoint(size uint64) []byte {
	return k.key("p/", binary.BigEndian.AppendUint64(nil, size)...)
}
func (k keys) latestCheckpoint() []byte { return k.key("P") }
func (k keys) anchor(size uint64) []byte {
	return k.key("a/", binary.BigEndian.AppendUint64(nil, size)...)
}
func (k keys) latestAnchor() []byte { return k.key("A") }

// Machine is the state machine of the ledger's Raft group: it appends
// sequenced leaves to the tree, keeps the log's key, and accepts
// checkpoints and anchor records it can confirm. It is deterministic: every
// replica holds the same tree, byte for byte.
type Machine struct {
	k keys

	mu       sync.Mutex
	verifier *checkpoint.Verifier // of the key in state, parsed once
	vkey     string
}

var _ cluster.StateMachine = (*Machine)(nil)

// NewMachine returns the ledger group's state machine. It has the shape of a
// cluster.StateMachineFactory.
func NewMachine(_ uint32, prefix []byte) cluster.StateMachine {
	return &Machine{k: keys{prefix: append([]byte{}, prefix...)}}
}

// Apply implements cluster.StateMachine.
func (m *Machine) Apply(b *pebble.Batch, _ uint64, data []byte) []byte {
	var res ledgerpb.LedgerResult
	if err := m.apply(b, data, &res); err != nil {
		res.Error = err.Error()
	}
	out, err := proto.Marshal(&res)
	if err != nil {
		panic(fmt.Sprintf("ledger: marshal result: %v", err))
	}
	return out
}

// Errors in LedgerResult.Error, for the sequencer to tell apart.
var (
	errStaleCursor = errors.New("stale cursor")
	errNotNewer    = errors.New("checkpoint not newer than the last")
)

func (m *Machine) apply(b *pebble.Batch, data []byte, res *ledgerpb.LedgerResult) error {
	var cmd ledgerpb.LedgerCommand
	if err := proto.Unmarshal(data, &cmd); err != nil {
		return fmt.Errorf("undecodable ledger command: %w", err)
	}
	switch c := cmd.Kind.(type) {
	case *ledgerpb.LedgerCommand_Append:
		return m.append(b, c.Append, res)
	case *ledgerpb.LedgerCommand_Key:
		return m.setKey(b, c.Key)
	case *ledgerpb.LedgerCommand_Checkpoint:
		return m.checkpoint(b, c.Checkpoint.Signed, res)
	case *ledgerpb.LedgerCommand_Anchor:
		return m.anchor(b, c.Anchor)
	default:
		return errors.New("empty ledger command")
	}
}

func readU64(r pebble.Reader, k []byte) (uint64, bool, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("ledger: value of %q is %d bytes, want 8", k, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func readCursor(r pebble.Reader, k keys, partition uint32) (outbox.Cursor, error) {
	v, closer, err := r.Get(k.cursor(partition))
	if errors.Is(err, pebble.ErrNotFound) {
		return outbox.Cursor{}, nil
	}
	if err != nil {
		return outbox.Cursor{}, err
	}
	defer closer.Close()
	if len(v) != 12 {
		return outbox.Cursor{}, fmt.Errorf("ledger: cursor of partition %d is %d bytes", partition, len(v))
	}
	return outbox.Cursor{Index: binary.BigEndian.Uint64(v), N: binary.BigEndian.Uint32(v[8:])}, nil
}

func must(err error) {
	if err != nil {
		// A batch write cannot fail but on a closed database: stop, never diverge.
		panic(fmt.Sprintf("ledger: write: %v", err))
	}
}

func (m *Machine) append(b *pebble.Batch, a *ledgerpb.LedgerAppend, res *ledgerpb.LedgerResult) error {
	cur, err := readCursor(b, m.k, a.Partition)
	if err != nil {
		panic(err)
	}
	size, _, err := readU64(b, m.k.size())
	if err != nil {
		panic(err)
	}
	res.Size = size
	if cur != (outbox.Cursor{Index: a.FromIndex, N: a.FromN}) {
		return fmt.Errorf("%w: partition %d is at %d.%d, batch starts at %d.%d", errStaleCursor, a.Partition, cur.Index, cur.N, a.FromIndex, a.FromN)
	}
	next := outbox.Cursor{Index: a.NextIndex, N: a.NextN}
	if next.Index < cur.Index || (next.Index == cur.Index && next.N < cur.N) {
		return fmt.Errorf("cursor of partition %d would move back", a.Partition)
	}
	tw := newTileWriter(b, m.k.prefix, size)
	for _, l := range a.Leaves {
		if len(l.Leaf) > LeafBytesMax {
			return fmt.Errorf("leaf of %d bytes", len(l.Leaf))
		}
	}
	for _, l := range a.Leaves {
		must(b.Set(m.k.leaf(size), l.Leaf, nil))
		if l.Order != "" {
			must(b.Set(m.k.orderLeaf(l.Order, size), nil, nil))
		}
		if err := tw.add(merkle.LeafHash(l.Leaf)); err != nil {
			panic(fmt.Sprintf("ledger: tiles: %v", err))
		}
		size++
	}
	if err := tw.flush(); err != nil {
		panic(fmt.Sprintf("ledger: tiles: %v", err))
	}
	must(b.Set(m.k.size(), binary.BigEndian.AppendUint64(nil, size), nil))
	c := binary.BigEndian.AppendUint64(nil, next.Index)
	must(b.Set(m.k.cursor(a.Partition), binary.BigEndian.AppendUint32(c, next.N), nil))
	res.Size = size
	return nil
}

func readKey(r pebble.Reader, k keys) (*ledgerpb.LedgerKey, error) {
	v, closer, err := r.Get(k.logKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	var lk ledgerpb.LedgerKey
	if err := proto.Unmarshal(v, &lk); err != nil {
		return nil, fmt.Errorf("ledger key: %w", err)
	}
	return &lk, nil
}

func (m *Machine) setKey(b *pebble.Batch, lk *ledgerpb.LedgerKey) error {
	old, err := readKey(b, m.k)
	if err != nil {
		panic(err)
	}
	if old != nil {
		if old.VerifierKey == lk.VerifierKey {
			return nil
		}
		return fmt.Errorf("the log already has the key %s", old.VerifierKey)
	}
	if _, err := checkpoint.NewVerifier(lk.VerifierKey); err != nil {
		return err
	}
	if lk.SignerKey != "" {
		vkey, err := checkpoint.VerifierKeyOf(lk.SignerKey)
		if err != nil {
			return err
		}
		if vkey != lk.VerifierKey {
			return errors.New("the signer key is not the verifier key's")
		}
	}
	v, _ := proto.MarshalOptions{Deterministic: true}.Marshal(lk)
	must(b.Set(m.k.logKey(), v, nil))
	return nil
}

// checkpointBody is the body of a signed checkpoint: the text before the
// blank line that starts the signatures.
func checkpointBody(signed []byte) []byte {
	if i := bytes.Index(signed, []byte("\n\n")); i >= 0 {
		return signed[:i+1]
	}
	return signed
}

func (m *Machine) verifierOf(vkey string) (*checkpoint.Verifier, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.verifier != nil && m.vkey == vkey {
		return m.verifier, nil
	}
	v, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	m.verifier, m.vkey = v, vkey
	return v, nil
}

func (m *Machine) checkpoint(b *pebble.Batch, signed []byte, res *ledgerpb.LedgerResult) error {
	lk, err := readKey(b, m.k)
	if err != nil {
		panic(err)
	}
	if lk == nil {
		return errors.New("the log has no key yet")
	}
	v, err := m.verifierOf(lk.VerifierKey)
	if err != nil {
		return err
	}
	c, err := v.Open(signed)
	if err != nil {
		return err
	}
	size, _, err := readU64(b, m.k.size())
	if err != nil {
		panic(err)
	}
	latest, _, err := readU64(b, m.k.latestCheckpoint())
	if err != nil {
		panic(err)
	}
	switch {
	case c.Size == 0 || c.Size > size:
		return fmt.Errorf("checkpoint of size %d, the tree has %d leaves", c.Size, size)
	case c.Size <= latest:
		return fmt.Errorf("%w: size %d, last %d", errNotNewer, c.Size, latest)
	}
	root, err := merkle.Root(tileReader{r: b, prefix: m.k.prefix}, c.Size)
	if err != nil {
		panic(fmt.Sprintf("ledger: root of %d: %v", c.Size, err))
	}
	if root != c.Root {
		return fmt.Errorf("checkpoint of size %d has root %s, the tree has %s", c.Size, c.Root, root)
	}
	must(b.Set(m.k.checkpoint(c.Size), signed, nil))
	must(b.Set(m.k.latestCheckpoint(), binary.BigEndian.AppendUint64(nil, c.Size), nil))
	res.Size = c.Size
	return nil
}

func (m *Machine) anchor(b *pebble.Batch, a *ledgerpb.AnchorRecord) error {
	signed, closer, err := b.Get(m.k.checkpoint(a.Size))
	if err != nil {
		return fmt.Errorf("no checkpoint of size %d to anchor: %w", a.Size, err)
	}
	c, err := checkpoint.Parse(checkpointBody(signed))
	closer.Close()
	if err != nil {
		panic(fmt.Sprintf("ledger: stored checkpoint %d: %v", a.Size, err))
	}
	if c.Root.String() != a.RootHash {
		return fmt.Errorf("anchor of %d leaves with root %s, the log's checkpoint has %s", a.Size, a.RootHash, c.Root)
	}
	v, _ := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	must(b.Set(m.k.anchor(a.Size), v, nil))
	latest, _, err := readU64(b, m.k.latestAnchor())
	if err != nil {
		panic(err)
	}
	if a.Size > latest {
		must(b.Set(m.k.latestAnchor(), binary.BigEndian.AppendUint64(nil, a.Size), nil))
	}
	return nil
}
