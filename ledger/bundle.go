package ledger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// Limits of bundles.
const (
	// BundleEntriesMax bounds the events of one order in a bundle.
	BundleEntriesMax = 10_000
	// BundleBytesMax bounds a bundle a verifier reads.
	BundleBytesMax = 64 << 20
)

// Bundle is everything a partner needs to check an order's history offline:
// the events, each with its leaf and inclusion proof, against one signed
// checkpoint, and where that checkpoint is anchored.
type Bundle struct {
	Order      string        `json:"order"`
	Checkpoint string        `json:"checkpoint"`
	Entries    []BundleEntry `json:"entries"`
	// Seal is the log key's signed statement (see Seal) of how many leaves
	// the order has in the checkpoint's tree, the last one's index and a
	// digest of them all: a bundle with an entry removed, repeated or cut
	// off the end does not match it.
	Seal string `json:"seal"`
	// Anchor is the Fabric transaction that anchored the bundle's
	// checkpoint; null while it is not anchored yet.
	Anchor *Anchor `json:"anchor"`
}

// BundleEntry is one event of the order.
type BundleEntry struct {
	Index uint64   `json:"index"`
	Leaf  string   `json:"leaf"`
	Proof []string `json:"proof"`
	// Event is the leaf decoded, for people; a verifier checks it matches.
	Event json.RawMessage `json:"event"`
}

// Anchor is an anchor record as the API shows it.
type Anchor struct {
	Size          uint64 `json:"size"`
	RootHash      string `json:"root_hash"`
	Channel       string `json:"channel"`
	Chaincode     string `json:"chaincode"`
	TransactionID string `json:"transaction_id"`
	BlockNumber   uint64 `json:"block_number"`
	AnchoredAt    string `json:"anchored_at"`
}

// AnchorView is the API's view of an anchor record.
func AnchorView(a *ledgerpb.AnchorRecord) *Anchor {
	if a == nil {
		return nil
	}
	return &Anchor{Size: a.Size, RootHash: a.RootHash, Channel: a.Channel, Chaincode: a.Chaincode,
		TransactionID: a.TransactionId, BlockNumber: a.BlockNumber, AnchoredAt: FormatTime(a.AtUnixNano)}
}

// Bundle builds the proof bundle of order: against the newest anchored
// checkpoint that holds every one of its events when there is one, else
// the newest checkpoint (with the events it holds), sealed with the log's
// key. An order of more than BundleEntriesMax events has no bundle (its
// audit export has every event).
func (l *Log) Bundle(order string) (*Bundle, error) {
	idx, err := l.OrderLeaves(order, BundleEntriesMax+1)
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("order %q: %w in the ledger", order, ErrNotFound)
	}
	if len(idx) > BundleEntriesMax {
		return nil, fmt.Errorf("%w: order %q has more than %d events, too many for a bundle; export them (order filter)", merkle.ErrOutOfRange, order, BundleEntriesMax)
	}
	last := idx[len(idx)-1]
	size, signed, err := l.LatestCheckpoint()
	if err != nil {
		return nil, err
	}
	var anchor *ledgerpb.AnchorRecord
	if a, err := l.LatestAnchor(); err == nil && a.Size > last {
		if s, err := l.Checkpoint(a.Size); err == nil {
			size, signed, anchor = a.Size, s, a
		}
	}
	if idx[0] >= size {
		return nil, fmt.Errorf("order %q: %w in a checkpoint yet (its events are sequenced, the next checkpoint holds them)", order, ErrNotFound)
	}
	c, err := l.openCheckpoint(signed)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Order: order, Checkpoint: string(signed), Anchor: AnchorView(anchor)}
	d := newSealDigest()
	for _, i := range idx {
		if i >= size {
			break
		}
		leaf, err := l.Leaf(i)
		if err != nil {
			return nil, err
		}
		proof, err := l.InclusionProof(i, size)
		if err != nil {
			return nil, err
		}
		d.add(i, merkle.LeafHash(leaf))
		b.Entries = append(b.Entries, BundleEntry{Index: i, Leaf: base64.StdEncoding.EncodeToString(leaf),
			Proof: merkle.EncodeProof(proof), Event: json.RawMessage(leaf)})
	}
	if b.Seal, err = l.sign(d.seal(c, OrderScope(order))); err != nil {
		return nil, fmt.Errorf("seal of order %q: %w", order, err)
	}
	return b, nil
}

// openCheckpoint reads one of the log's own signed checkpoints.
func (l *Log) openCheckpoint(signed []byte) (checkpoint.Checkpoint, error) {
	v, err := l.Verifier()
	if err != nil {
		return checkpoint.Checkpoint{}, err
	}
	c, err := v.Open(signed)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("the log's checkpoint: %w", err)
	}
	return c, nil
}

// ErrBundle is returned for a bundle that does not verify.
var ErrBundle = errors.New("bundle does not verify")

// VerifiedEntry is one event of a verified bundle.
type VerifiedEntry struct {
	Index uint64
	Event *Event
}

// Verified is what VerifyBundle proved: these events are leaves of the tree
// the log's key signed, and by the log key's seal they are all of the
// order's leaves in that tree.
type Verified struct {
	Order      string
	Checkpoint checkpoint.Checkpoint
	Entries    []VerifiedEntry
	Anchor     *Anchor
	// Seal is the bundle's seal, checked; Sealed says there was one (always,
	// from VerifyBundle).
	Seal   Seal
	Sealed bool
}

// VerifyBundle checks a bundle offline against the log's verifier key: the
// checkpoint's signature, every leaf's inclusion proof, that every decoded
// event is its leaf and belongs to the bundle's order, and the seal: the
// entries are exactly the order's leaves in the checkpoint's tree (none
// removed, repeated or cut off the end), as the log's key states.
func VerifyBundle(data []byte, v *checkpoint.Verifier) (*Verified, error) {
	return verifyBundle(data, v, true)
}

// VerifyArchivedBundle is VerifyBundle for the bundles in retention
// archives: an archive written before bundles were sealed holds bundles
// without a seal, and they still verify (every entry, not the tail);
// Verified.Sealed says whether the seal was there and checked. Partners'
// bundles go through VerifyBundle, which requires the seal.
func VerifyArchivedBundle(data []byte, v *checkpoint.Verifier) (*Verified, error) {
	return verifyBundle(data, v, false)
}

func verifyBundle(data []byte, v *checkpoint.Verifier, sealRequired bool) (*Verified, error) {
	if len(data) > BundleBytesMax {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBundle, len(data), BundleBytesMax)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: not a bundle: %v", ErrBundle, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the bundle", ErrBundle)
	}
	c, err := v.Open([]byte(b.Checkpoint))
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrBundle, err)
	}
	if len(b.Entries) == 0 || len(b.Entries) > BundleEntriesMax {
		return nil, fmt.Errorf("%w: %d entries", ErrBundle, len(b.Entries))
	}
	if b.Order == "" {
		return nil, fmt.Errorf("%w: no order", ErrBundle)
	}
	out := &Verified{Order: b.Order, Checkpoint: c, Anchor: b.Anchor, Sealed: b.Seal != "" || sealRequired}
	if out.Sealed {
		if out.Seal, err = openSeal(b.Seal, v, c); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBundle, err)
		}
		if out.Seal.Scope != OrderScope(b.Order) {
			return nil, fmt.Errorf("%w: the seal is of %q, the bundle of order %q", ErrBundle, out.Seal.Scope, b.Order)
		}
	}
	d := newSealDigest()
	seen := map[[3]uint64]bool{}
	var seq uint64 // the order's events run 1, 2, 3, … with none left out
	for i, e := range b.Entries {
		if i > 0 && e.Index <= b.Entries[i-1].Index {
			return nil, fmt.Errorf("%w: entry %d: indexes must increase", ErrBundle, i)
		}
		ev, lh, err := verifyEntry(e, c)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (leaf %d): %w", ErrBundle, i, e.Index, err)
		}
		if ev.Order != b.Order {
			return nil, fmt.Errorf("%w: entry %d is an event of order %q, the bundle is of %q", ErrBundle, i, ev.Order, b.Order)
		}
		id := [3]uint64{uint64(ev.Partition), ev.RaftIndex, uint64(ev.N)}
		if seen[id] {
			return nil, fmt.Errorf("%w: entry %d repeats an event", ErrBundle, i)
		}
		seen[id] = true
		if ev.Kind == KindOrder {
			if seq++; ev.Seq != seq || (seq == 1 && ev.Type != "created") {
				return nil, fmt.Errorf("%w: entry %d is the order's event %d (%s), expected event %d: an event is missing", ErrBundle, i, ev.Seq, ev.Type, seq)
			}
		}
		d.add(e.Index, lh)
		out.Entries = append(out.Entries, VerifiedEntry{Index: e.Index, Event: ev})
	}
	if out.Sealed {
		if err := out.Seal.check(d, "bundle"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBundle, err)
		}
	}
	return out, nil
}

// verifyEntry checks one entry against checkpoint c and returns its event
// and leaf hash.
func verifyEntry(e BundleEntry, c checkpoint.Checkpoint) (*Event, merkle.Hash, error) {
	leaf, err := base64.StdEncoding.Strict().DecodeString(e.Leaf)
	if err != nil {
		return nil, merkle.Hash{}, fmt.Errorf("leaf is not base64: %w", err)
	}
	proof, err := merkle.DecodeProof(e.Proof)
	if err != nil {
		return nil, merkle.Hash{}, err
	}
	lh := merkle.LeafHash(leaf)
	if err := merkle.VerifyInclusion(lh, e.Index, c.Size, proof, c.Root); err != nil {
		return nil, merkle.Hash{}, err
	}
	ev, err := DecodeLeaf(leaf)
	if err != nil {
		return nil, merkle.Hash{}, err
	}
	// The event shown to people must be the leaf itself (whitespace aside):
	// any other spelling (keys in another case, a repeated key) could be
	// read differently by another JSON reader.
	var shown bytes.Buffer
	if err := json.Compact(&shown, e.Event); err != nil {
		return nil, merkle.Hash{}, fmt.Errorf("event: %w", err)
	}
	if !bytes.Equal(shown.Bytes(), leaf) {
		return nil, merkle.Hash{}, errors.New("the decoded event differs from its leaf")
	}
	return ev, lh, nil
}
