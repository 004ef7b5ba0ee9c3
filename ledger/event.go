package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// EncodingVersion is the version of the leaf encoding, its "v" field.
const EncodingVersion = 1

// LeafBytesMax bounds one leaf. The largest event is an order's "created"
// with every line: the configuration caps lines at 10,000 and the gateway
// bounds each line's fields, about 250 bytes encoded, so any order the
// gateway accepts fits (Event.Place asserts it).
const LeafBytesMax = 4 << 20

// Event kinds.
const (
	KindOrder = "order" // a change of an order's lifecycle
	KindStock = "stock" // a change of a SKU's stock at a warehouse
	// KindSubject is an erasure: a subject's data key is gone, the order's
	// personal fields with it.
	KindSubject = "subject"
	// KindAccess is a read of an order's personal fields.
	KindAccess = "access"
	// KindRetention is an order moved to an archive file or back.
	KindRetention = "retention"
	// KindRouting is a change of the routing catalog: a warehouse, a
	// strategy version, the live selection.
	KindRouting = "routing"
)

// Event is one committed change: the content of one leaf. See the package
// documentation for its canonical encoding.
type Event struct {
	V         int    `json:"v"`
	Partition uint32 `json:"partition"`
	RaftIndex uint64 `json:"raft_index"`
	N         uint32 `json:"n"`
	At        string `json:"at"`
	Kind      string `json:"kind"`
	Type      string `json:"type"`
	Order     string `json:"order,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	Status    string `json:"status,omitempty"`
	SKU       string `json:"sku,omitempty"`
	Warehouse string `json:"warehouse,omitempty"`
	Qty       int64  `json:"qty,omitempty"`
	Principal string `json:"principal,omitempty"`
	// Lines are an order's lines, on its "created" event.
	Lines   []Line            `json:"lines,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}

// Line is one line of an order as the ledger records it.
type Line struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice string `json:"unit_price,omitempty"`
	Warehouse string `json:"warehouse,omitempty"`
}

// Place stamps e with its place in the log (version, partition, Raft index,
// position, time) and returns its order and its leaf: the outbox calls it as
// it writes e.
func (e *Event) Place(p outbox.Place) (order string, leaf []byte) {
	e.V = EncodingVersion
	e.Partition = p.Partition
	e.RaftIndex = p.RaftIndex
	e.N = p.N
	e.At = placedAt(p.AtUnixNano)
	leaf = e.Encode()
	if len(leaf) > LeafBytesMax {
		// The gateway bounds what an order may hold; an event this large is a bug.
		panic(fmt.Sprintf("ledger: event of %d bytes", len(leaf)))
	}
	return e.Order, leaf
}

// formattedTime is a commit time and its "at" text.
type formattedTime struct {
	unixNano int64
	text     string
}

// lastPlaced is the time of the last event placed: a command's events share
// their commit time, and formatting it would be a good part of placing a
// small event.
var lastPlaced atomic.Pointer[formattedTime]

// placedAt is FormatTime(unixNano), from lastPlaced when it holds it.
func placedAt(unixNano int64) string {
	if f := lastPlaced.Load(); f != nil && f.unixNano == unixNano {
		return f.text
	}
	f := &formattedTime{unixNano: unixNano, text: FormatTime(unixNano)}
	lastPlaced.Store(f)
	return f.text
}

// FormatTime writes a commit time as the "at" field does.
func FormatTime(unixNano int64) string {
	return time.Unix(0, unixNano).UTC().Format(time.RFC3339Nano)
}

// ErrNotCanonical is returned for leaf bytes that are not the canonical
// encoding of an event.
var ErrNotCanonical = errors.New("leaf is not a canonical event")

// Encode returns the canonical bytes of e: its leaf.
func (e *Event) Encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// Only strings, integers and maps of strings: cannot fail.
		panic(fmt.Sprintf("ledger: encode event: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// DecodeLeaf reads leaf bytes, refusing anything but the canonical encoding
// of an event: unknown fields, other field order, whitespace, another time
// format.
func DecodeLeaf(leaf []byte) (*Event, error) {
	if len(leaf) > LeafBytesMax {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrNotCanonical, len(leaf), LeafBytesMax)
	}
	var e Event
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCanonical, err)
	}
	if e.V != EncodingVersion {
		return nil, fmt.Errorf("%w: version %d", ErrNotCanonical, e.V)
	}
	t, err := time.Parse(time.RFC3339Nano, e.At)
	if err != nil || FormatTime(t.UnixNano()) != e.At {
		return nil, fmt.Errorf("%w: time %q", ErrNotCanonical, e.At)
	}
	if !bytes.Equal(e.Encode(), leaf) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrNotCanonical)
	}
	return &e, nil
}

// Time is the event's commit time.
func (e *Event) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, e.At)
	return t
}
