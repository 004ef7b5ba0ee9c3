// Package outbox is how a partition hands its committed events to the
// ledger, and the one owner of that hand-over's format: the partition's
// state machine writes with a Writer, the ledger's sequencer reads with
// Read, and the state machine drops what the ledger has appended with Trim.
//
// A partition's state machine writes each event of a command under
//
//	{partition prefix}w/{raft index u64}{n u32}  ->  {at u64}{len(order) u16}{order}{leaf}
//
// (integers big-endian; at is the commit time in Unix nanoseconds) in the
// same batch as the state the command changes, so an event is in the outbox
// exactly when its change is committed. The sequencer reads it in key order
// (commit order) from a Cursor that the ledger's own Raft group keeps:
// nothing is lost, nothing read twice.
//
// The outbox does not know what an event says: an Event places itself
// (partition, Raft index, position, time) and hands back its leaf, the
// bytes the ledger appends (package ledger defines them).
package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Space is the key space of the outbox under a partition's prefix.
const Space = "w/"

// orderBytesMax bounds an event's order id: its length is a u16.
const orderBytesMax = 1<<16 - 1

// Cursor is a position in a partition's outbox: the next event to read.
type Cursor struct {
	Index uint64
	N     uint32
}

func key(prefix []byte, c Cursor) []byte {
	k := make([]byte, 0, len(prefix)+len(Space)+12)
	k = append(k, prefix...)
	k = append(k, Space...)
	k = binary.BigEndian.AppendUint64(k, c.Index)
	return binary.BigEndian.AppendUint32(k, c.N)
}

// end is the first key past every outbox key under prefix.
func end(prefix []byte) []byte {
	hi := append(append([]byte{}, prefix...), Space...)
	hi[len(hi)-1]++ // "w0"
	return hi
}

// Place is where an event sits in the log: the partition that committed it,
// the Raft index of its command, its position among the command's events
// (from 0) and the commit time.
type Place struct {
	Partition  uint32
	RaftIndex  uint64
	N          uint32
	AtUnixNano int64
}

// Event is an event as the outbox sees it.
type Event interface {
	// Place stamps the event with its place and returns the id of the order
	// it concerns ("" for none) and its leaf.
	Place(Place) (order string, leaf []byte)
}

// Writer writes the events of one command into a partition's outbox.
type Writer struct {
	b      *pebble.Batch
	prefix []byte
	place  Place
}

// NewWriter returns the writer of the command at Raft index of partition,
// committed at atUnixNano, writing into b under prefix.
func NewWriter(b *pebble.Batch, partition uint32, prefix []byte, index uint64, atUnixNano int64) *Writer {
	return &Writer{b: b, prefix: prefix, place: Place{Partition: partition, RaftIndex: index, AtUnixNano: atUnixNano}}
}

// Add places e after the command's previous events and writes it.
func (w *Writer) Add(e Event) {
	order, leaf := e.Place(w.place)
	if len(order) > orderBytesMax {
		// The gateway bounds order ids far below this; a longer one is a bug.
		panic(fmt.Sprintf("outbox: order id of %d bytes", len(order)))
	}
	v := make([]byte, 0, 10+len(order)+len(leaf))
	v = binary.BigEndian.AppendUint64(v, uint64(w.place.AtUnixNano))
	v = binary.BigEndian.AppendUint16(v, uint16(len(order)))
	v = append(v, order...)
	v = append(v, leaf...)
	if err := w.b.Set(key(w.prefix, Cursor{w.place.RaftIndex, w.place.N}), v, nil); err != nil {
		panic(fmt.Sprintf("outbox: set: %v", err))
	}
	w.place.N++
}

// Entry is one event read from an outbox.
type Entry struct {
	At    Cursor
	Order string
	// AtUnixNano is the commit time.
	AtUnixNano int64
	Leaf       []byte
}

// Scanner reads a partition's committed state in key order, as
// cluster.LocalReader does: fn is called for the pairs in [lo, hi), at most
// limit, and must not keep k or v; an error from fn ends the scan and is
// returned.
type Scanner interface {
	Scan(lo, hi []byte, limit int, fn func(k, v []byte) error) error
}

// ErrMalformed is returned by Read for an outbox entry this package did not
// write.
var ErrMalformed = errors.New("malformed entry")

// errFull ends a scan that has read bytesMax.
var errFull = errors.New("read enough")

// Read reads up to leavesMax events (and about bytesMax bytes) of the
// outbox under prefix from cursor from, and returns them with the cursor
// after the last one.
func Read(r Scanner, prefix []byte, from Cursor, leavesMax, bytesMax int) ([]Entry, Cursor, error) {
	if leavesMax <= 0 || bytesMax <= 0 {
		return nil, from, nil // a Scanner's limit of 0 would mean all
	}
	var out []Entry
	size := 0
	next := from
	err := r.Scan(key(prefix, from), end(prefix), leavesMax, func(k, v []byte) error {
		if size >= bytesMax {
			return errFull
		}
		full := k
		k = k[len(prefix)+len(Space):]
		if len(k) != 12 || len(v) < 10 {
			return fmt.Errorf("%w %x", ErrMalformed, full)
		}
		c := Cursor{binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(k[8:])}
		ol := int(binary.BigEndian.Uint16(v[8:]))
		if len(v) < 10+ol {
			return fmt.Errorf("%w %x", ErrMalformed, full)
		}
		out = append(out, Entry{At: c, AtUnixNano: int64(binary.BigEndian.Uint64(v)),
			Order: string(v[10 : 10+ol]), Leaf: append([]byte{}, v[10+ol:]...)})
		size += len(v)
		next = Cursor{c.Index, c.N + 1}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, from, fmt.Errorf("outbox: %w", err)
	}
	return out, next, nil
}

// Trim deletes, in a partition's state machine batch b, the outbox entries
// under prefix below Raft index before. Call it only with an index the
// ledger's committed cursor for the partition has passed.
func Trim(b *pebble.Batch, prefix []byte, before uint64) error {
	return b.DeleteRange(key(prefix, Cursor{}), key(prefix, Cursor{Index: before}), nil)
}
