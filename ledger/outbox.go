package ledger

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The outbox is how a partition hands its committed events to the ledger.
// A partition's state machine writes each event of a command under
//
//	{partition prefix}w/{raft index u64}{n u32}  ->  {at u64}{len(order) u16}{order}{leaf}
//
// in the same batch as the state the command changes, so an event is in the
// outbox exactly when its change is committed. The sequencer reads it in key
// order (commit order) from a cursor that the ledger's own Raft group keeps:
// nothing is lost, nothing read twice.
const outboxSpace = "w/"

// Cursor is a position in a partition's outbox: the next event to read.
type Cursor struct {
	Index uint64
	N     uint32
}

func outboxKey(prefix []byte, c Cursor) []byte {
	k := make([]byte, 0, len(prefix)+len(outboxSpace)+12)
	k = append(k, prefix...)
	k = append(k, outboxSpace...)
	k = binary.BigEndian.AppendUint64(k, c.Index)
	return binary.BigEndian.AppendUint32(k, c.N)
}

// Outbox writes the events of one command into a partition's outbox.
type Outbox struct {
	b         *pebble.Batch
	prefix    []byte
	partition uint32
	index     uint64
	at        int64
	atText    string
	n         uint32
}

// NewOutbox returns the outbox of the command at Raft index of partition,
// committed at atUnixNano, writing into b under prefix.
func NewOutbox(b *pebble.Batch, partition uint32, prefix []byte, index uint64, atUnixNano int64) *Outbox {
	return &Outbox{b: b, prefix: prefix, partition: partition, index: index, at: atUnixNano}
}

// Add stamps e with its place in the log (version, partition, Raft index,
// position, time) and writes it.
func (o *Outbox) Add(e *Event) {
	if o.atText == "" {
		o.atText = FormatTime(o.at)
	}
	e.V = EncodingVersion
	e.Partition = o.partition
	e.RaftIndex = o.index
	e.N = o.n
	e.At = o.atText
	leaf := e.Encode()
	if len(leaf) > LeafBytesMax || len(e.Order) > 1<<16-1 {
		// The gateway bounds what an order may hold; an event this large is a bug.
		panic(fmt.Sprintf("ledger: event of %d bytes", len(leaf)))
	}
	v := make([]byte, 0, 10+len(e.Order)+len(leaf))
	v = binary.BigEndian.AppendUint64(v, uint64(o.at))
	v = binary.BigEndian.AppendUint16(v, uint16(len(e.Order)))
	v = append(v, e.Order...)
	v = append(v, leaf...)
	if err := o.b.Set(outboxKey(o.prefix, Cursor{o.index, o.n}), v, nil); err != nil {
		panic(fmt.Sprintf("ledger: outbox set: %v", err))
	}
	o.n++
}

// OutboxEntry is one event read from an outbox.
type OutboxEntry struct {
	At    Cursor
	Order string
	// AtUnixNano is the commit time.
	AtUnixNano int64
	Leaf       []byte
}

// ReadOutbox reads up to leavesMax events (and about bytesMax bytes) of the
// outbox under prefix from cursor from, and returns them with the cursor
// after the last one.
func ReadOutbox(r pebble.Reader, prefix []byte, from Cursor, leavesMax, bytesMax int) ([]OutboxEntry, Cursor, error) {
	hi := append(append([]byte{}, prefix...), outboxSpace...)
	hi[len(hi)-1]++ // "w0": just past every outbox key
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: outboxKey(prefix, from), UpperBound: hi})
	if err != nil {
		return nil, from, fmt.Errorf("outbox: %w", err)
	}
	var out []OutboxEntry
	size := 0
	next := from
	for ok := it.First(); ok && len(out) < leavesMax && size < bytesMax; ok = it.Next() {
		k, v := it.Key(), it.Value()
		k = k[len(prefix)+len(outboxSpace):]
		if len(k) != 12 || len(v) < 10 {
			_ = it.Close()
			return nil, from, fmt.Errorf("outbox: malformed entry %x", it.Key())
		}
		c := Cursor{binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(k[8:])}
		ol := int(binary.BigEndian.Uint16(v[8:]))
		if len(v) < 10+ol {
			_ = it.Close()
			return nil, from, fmt.Errorf("outbox: malformed entry %x", it.Key())
		}
		e := OutboxEntry{At: c, AtUnixNano: int64(binary.BigEndian.Uint64(v)),
			Order: string(v[10 : 10+ol]), Leaf: append([]byte{}, v[10+ol:]...)}
		out = append(out, e)
		size += len(v)
		next = Cursor{c.Index, c.N + 1}
	}
	if err := it.Close(); err != nil {
		return nil, from, fmt.Errorf("outbox: %w", err)
	}
	return out, next, nil
}

// LastOutboxIndex is the Raft index of the newest event in the outbox under
// prefix, 0 when it is empty.
func LastOutboxIndex(r pebble.Reader, prefix []byte) (uint64, error) {
	lo := append(append([]byte{}, prefix...), outboxSpace...)
	hi := append([]byte{}, lo...)
	hi[len(hi)-1]++
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, nil
	}
	k := it.Key()[len(lo):]
	if len(k) != 12 {
		return 0, fmt.Errorf("outbox: malformed key %x", it.Key())
	}
	return binary.BigEndian.Uint64(k), nil
}

// TrimOutbox deletes, in a partition's state machine batch b, the outbox
// entries under prefix below Raft index before. Call it only with an index
// the ledger's committed cursor for the partition has passed.
func TrimOutbox(b *pebble.Batch, prefix []byte, before uint64) error {
	return b.DeleteRange(outboxKey(prefix, Cursor{}), outboxKey(prefix, Cursor{Index: before}), nil)
}
