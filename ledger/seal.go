package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// SealFormat is the first line of a seal. It holds a space, which no log
// origin does, so a seal never reads as a checkpoint.
const SealFormat = "ordergrid seal/1"

// Seal is the log key's signed statement that a selection of leaves is
// complete: of the tree the checkpoint (Origin, Size, Root) commits to, the
// leaves that Scope selects are exactly Count leaves, the last at index
// Last, and Digest is SHA-256 over, for each in log order, its index (8
// bytes, big-endian) and its leaf hash. A bundle carries the seal of its
// order, an export the seal of its filters, so a verifier detects a
// removed, repeated or changed entry, and a cut tail, without the log.
//
// The signed text is, each line ending in a newline:
//
//	ordergrid seal/1
//	<origin>
//	<tree size>
//	<root hash, standard base64>
//	<scope: "order <id, query-escaped>", "export", or "export <filters, URL-encoded, keys sorted>">
//	<count>
//	<last index; 0 when count is 0>
//	<digest, standard base64>
type Seal struct {
	Origin string
	Size   uint64
	Root   merkle.Hash
	Scope  string
	Count  uint64
	Last   uint64
	Digest merkle.Hash
}

// ErrSeal is wrapped by every seal failure: the entries are not the ones
// the log's key sealed, or there is no valid seal.
var ErrSeal = errors.New("seal")

// OrderScope is the seal scope of an order's bundle.
func OrderScope(order string) string { return "order " + url.QueryEscape(order) }

// ExportScope is the seal scope of an export with these filters (as the
// export header states them); "export" when unfiltered.
func ExportScope(filters map[string]string) string {
	if len(filters) == 0 {
		return "export"
	}
	q := url.Values{}
	for k, v := range filters {
		q.Set(k, v)
	}
	return "export " + q.Encode()
}

// exportFilters reads the filters back from an export scope.
func exportFilters(scope string) (map[string]string, error) {
	if scope == "export" {
		return nil, nil
	}
	raw, ok := strings.CutPrefix(scope, "export ")
	if !ok {
		return nil, fmt.Errorf("%w: scope %q is not an export's", ErrSeal, scope)
	}
	q, err := url.ParseQuery(raw)
	if err != nil || len(q) == 0 {
		return nil, fmt.Errorf("%w: scope %q", ErrSeal, scope)
	}
	out := map[string]string{}
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, fmt.Errorf("%w: scope %q repeats %s", ErrSeal, scope, k)
		}
		out[k] = vs[0]
	}
	if ExportScope(out) != scope {
		return nil, fmt.Errorf("%w: scope %q is not canonical", ErrSeal, scope)
	}
	return out, nil
}

// text is the statement the log's key signs.
func (s Seal) text() string {
	return strings.Join([]string{SealFormat, s.Origin, strconv.FormatUint(s.Size, 10), s.Root.String(), s.Scope,
		strconv.FormatUint(s.Count, 10), strconv.FormatUint(s.Last, 10), s.Digest.String()}, "\n") + "\n"
}

// parseSeal reads a seal's text in canonical form.
func parseSeal(text string) (Seal, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 8 || lines[0] != SealFormat {
		return Seal{}, fmt.Errorf("%w: not an %s statement", ErrSeal, SealFormat)
	}
	var s Seal
	var err error
	s.Origin, s.Scope = lines[1], lines[4]
	nums := []*uint64{&s.Size, &s.Count, &s.Last}
	for i, at := range []int{2, 5, 6} {
		if *nums[i], err = strconv.ParseUint(lines[at], 10, 64); err != nil {
			return Seal{}, fmt.Errorf("%w: line %d: %v", ErrSeal, at+1, err)
		}
	}
	if s.Root, err = merkle.ParseHash(lines[3]); err != nil {
		return Seal{}, fmt.Errorf("%w: root: %w", ErrSeal, err)
	}
	if s.Digest, err = merkle.ParseHash(lines[7]); err != nil {
		return Seal{}, fmt.Errorf("%w: digest: %w", ErrSeal, err)
	}
	if s.text() != text {
		return Seal{}, fmt.Errorf("%w: not in canonical form", ErrSeal)
	}
	return s, nil
}

// openSeal checks a signed seal: the log's key signed it, and it is of
// checkpoint c's tree.
func openSeal(signed string, v *checkpoint.Verifier, c checkpoint.Checkpoint) (Seal, error) {
	text, err := v.OpenStatement([]byte(signed))
	if err != nil {
		return Seal{}, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	s, err := parseSeal(text)
	if err != nil {
		return Seal{}, err
	}
	if s.Origin != c.Origin || s.Size != c.Size || s.Root != c.Root {
		return Seal{}, fmt.Errorf("%w: of the tree of %d leaves of %s, not the checkpoint's", ErrSeal, s.Size, s.Origin)
	}
	return s, nil
}

// sealDigest accumulates what a seal states of a run of leaves.
type sealDigest struct {
	h     hash.Hash
	count uint64
	last  uint64
	buf   [8]byte
}

func newSealDigest() *sealDigest { return &sealDigest{h: sha256.New()} }

// add takes the next selected leaf, in log order.
func (d *sealDigest) add(index uint64, leafHash merkle.Hash) {
	binary.BigEndian.PutUint64(d.buf[:], index)
	d.h.Write(d.buf[:])
	d.h.Write(leafHash[:])
	d.count++
	d.last = index
}

func (d *sealDigest) seal(c checkpoint.Checkpoint, scope string) Seal {
	s := Seal{Origin: c.Origin, Size: c.Size, Root: c.Root, Scope: scope, Count: d.count, Last: d.last}
	copy(s.Digest[:], d.h.Sum(nil))
	return s
}

// check compares what a verifier saw (d) with the seal; what names the
// bundle or export in messages.
func (s Seal) check(d *sealDigest, what string) error {
	switch {
	case d.count < s.Count && (d.count == 0 || d.last < s.Last):
		return fmt.Errorf("%w: the %s is cut: it ends at leaf %d with %d entries, the seal says %d ending at leaf %d: leaf %d is missing",
			ErrSeal, what, d.last, d.count, s.Count, s.Last, s.Last)
	case d.count != s.Count:
		return fmt.Errorf("%w: the %s holds %d entries, the seal %d: an entry was removed or added", ErrSeal, what, d.count, s.Count)
	case d.last != s.Last:
		return fmt.Errorf("%w: the %s ends at leaf %d, the seal at leaf %d", ErrSeal, what, d.last, s.Last)
	}
	var got merkle.Hash
	copy(got[:], d.h.Sum(nil))
	if got != s.Digest {
		return fmt.Errorf("%w: the %s's entries are not the sealed ones (one was swapped)", ErrSeal, what)
	}
	return nil
}

// sealer signs seals with the log's key: the key in a file (the
// sequencer's SignerKey) or the one replicated in the ledger group.
type sealer struct {
	mu        sync.Mutex
	signerKey string // from a file; empty: the replicated key
	signer    *checkpoint.Signer
	verifier  string // the verifier key signer was checked against
}

// ErrCannotSeal is returned when this node cannot sign seals: the log's
// signer key lives in a file this node does not have.
var ErrCannotSeal = errors.New("this node cannot seal (it has no copy of the log's signer key)")

// signer is the signer of the log's key; it checks that a key from a file
// is the log's.
func (l *Log) signer() (*checkpoint.Signer, error) {
	lk, err := l.Key()
	if err != nil {
		return nil, err
	}
	l.sealer.mu.Lock()
	defer l.sealer.mu.Unlock()
	if l.sealer.signer != nil && l.sealer.verifier == lk.VerifierKey {
		return l.sealer.signer, nil
	}
	key := l.sealer.signerKey
	if key == "" {
		key = lk.SignerKey
	}
	if key == "" {
		return nil, ErrCannotSeal
	}
	s, err := checkpoint.NewSigner(strings.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCannotSeal, err)
	}
	if err := sameKey(s, lk.VerifierKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCannotSeal, err)
	}
	l.sealer.signer, l.sealer.verifier = s, lk.VerifierKey
	return s, nil
}

// sign signs a seal with the log's key.
func (l *Log) sign(s Seal) (string, error) {
	signer, err := l.signer()
	if err != nil {
		return "", err
	}
	signed, err := signer.SignStatement(s.text())
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return string(signed), nil
}
