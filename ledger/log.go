package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/merkle"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// Errors of reads, for the API to map to statuses.
var (
	// ErrNotFound is returned for an order, checkpoint or leaf the log does
	// not have.
	ErrNotFound = errors.New("not found")
	// ErrNoKey is returned before the log's key is made (a new log's
	// sequencer makes it on start).
	ErrNoKey = errors.New("the log has no key yet")
)

// Log reads the ledger group's state on this node's replica. The log only
// grows, so a replica that is behind serves a smaller tree, never a wrong one.
type Log struct {
	r      pebble.Reader
	k      keys
	cache  *tileCache
	sealer sealer
}

// NewLog reads the ledger state under prefix (the ledger group's) from r.
func NewLog(r pebble.Reader, prefix []byte) *Log {
	return &Log{r: r, k: keys{prefix: append([]byte{}, prefix...)}, cache: newTileCache()}
}

func (l *Log) hashes() merkle.HashReader {
	return tileReader{r: l.r, prefix: l.k.prefix, cache: l.cache}
}

// Size is the number of leaves.
func (l *Log) Size() (uint64, error) {
	n, _, err := readU64(l.r, l.k.size())
	return n, err
}

// Cursor is where the sequencer will read partition's outbox next.
func (l *Log) Cursor(partition uint32) (outbox.Cursor, error) { return readCursor(l.r, l.k, partition) }

// Key is the log's key; ErrNoKey before it has one.
func (l *Log) Key() (*ledgerpb.LedgerKey, error) {
	k, err := readKey(l.r, l.k)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, ErrNoKey
	}
	return k, nil
}

// Verifier is the checker of the log's checkpoints.
func (l *Log) Verifier() (*checkpoint.Verifier, error) {
	k, err := l.Key()
	if err != nil {
		return nil, err
	}
	return checkpoint.NewVerifier(k.VerifierKey)
}

// get reads a copy of the value of k; ErrNotFound (naming what) without one.
func (l *Log) get(k []byte, what string) ([]byte, error) {
	v, closer, err := l.r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// Leaf returns the bytes of leaf i.
func (l *Log) Leaf(i uint64) ([]byte, error) { return l.get(l.k.leaf(i), fmt.Sprintf("leaf %d", i)) }

// LatestCheckpoint is the newest signed checkpoint and its size.
func (l *Log) LatestCheckpoint() (uint64, []byte, error) {
	size, ok, err := readU64(l.r, l.k.latestCheckpoint())
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, fmt.Errorf("checkpoint: %w (the log is empty)", ErrNotFound)
	}
	signed, err := l.Checkpoint(size)
	return size, signed, err
}

// Checkpoint is the signed checkpoint of a tree of size leaves, if one was made.
func (l *Log) Checkpoint(size uint64) ([]byte, error) {
	return l.get(l.k.checkpoint(size), fmt.Sprintf("checkpoint of size %d", size))
}

// Root is the root hash of the tree of size leaves.
func (l *Log) Root(size uint64) (merkle.Hash, error) {
	n, err := l.Size()
	if err != nil {
		return merkle.Hash{}, err
	}
	if size > n {
		return merkle.Hash{}, fmt.Errorf("%w: size %d, the tree has %d leaves", merkle.ErrOutOfRange, size, n)
	}
	return merkle.Root(l.hashes(), size)
}

// InclusionProof proves leaf index in the tree of size leaves.
func (l *Log) InclusionProof(index, size uint64) ([]merkle.Hash, error) {
	n, err := l.Size()
	if err != nil {
		return nil, err
	}
	if size > n {
		return nil, fmt.Errorf("%w: size %d, the tree has %d leaves", merkle.ErrOutOfRange, size, n)
	}
	return merkle.InclusionProof(l.hashes(), index, size)
}

// ConsistencyProof proves that the tree of size to extends the tree of size
// from. to must be the size of a checkpoint (so the caller can get its root).
func (l *Log) ConsistencyProof(from, to uint64) ([]merkle.Hash, error) {
	if from > to || from == 0 {
		return nil, fmt.Errorf("%w: from %d, to %d", merkle.ErrOutOfRange, from, to)
	}
	if _, err := l.Checkpoint(to); err != nil {
		return nil, err
	}
	return merkle.ConsistencyProof(l.hashes(), from, to)
}

// OrderLeaves are the indexes of the leaves of order, in log order.
func (l *Log) OrderLeaves(order string, max int) ([]uint64, error) {
	lo := l.k.orderPrefix(order)
	hi := append(append([]byte{}, lo[:len(lo)-1]...), 1)
	it, err := l.r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	var out []uint64
	for ok := it.First(); ok && len(out) < max; ok = it.Next() {
		k := it.Key()[len(lo):]
		if len(k) == 8 {
			out = append(out, binary.BigEndian.Uint64(k))
		}
	}
	return out, it.Close()
}

// Anchor is the anchor record of the checkpoint of size leaves.
func (l *Log) Anchor(size uint64) (*ledgerpb.AnchorRecord, error) {
	v, err := l.get(l.k.anchor(size), fmt.Sprintf("anchor of size %d", size))
	if err != nil {
		return nil, err
	}
	var a ledgerpb.AnchorRecord
	if err := proto.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("anchor of size %d: %w", size, err)
	}
	return &a, nil
}

// LatestAnchor is the anchor of the largest anchored checkpoint.
func (l *Log) LatestAnchor() (*ledgerpb.AnchorRecord, error) {
	size, ok, err := readU64(l.r, l.k.latestAnchor())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("anchor: %w", ErrNotFound)
	}
	return l.Anchor(size)
}

// Anchors are the newest anchor records, newest first, at most max.
func (l *Log) Anchors(max int) ([]*ledgerpb.AnchorRecord, error) {
	lo := l.k.key("a/")
	hi := l.k.key("a0")
	it, err := l.r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	var out []*ledgerpb.AnchorRecord
	for ok := it.Last(); ok && len(out) < max; ok = it.Prev() {
		var a ledgerpb.AnchorRecord
		if err := proto.Unmarshal(it.Value(), &a); err != nil {
			_ = it.Close()
			return nil, err
		}
		out = append(out, &a)
	}
	return out, it.Close()
}
