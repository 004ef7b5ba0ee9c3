// Package merkle is RFC 6962 (and RFC 9162) Merkle tree hashing: leaf and
// node hashes, tree heads, inclusion and consistency proofs, and their
// verification, over any store that can answer the hash of a complete
// subtree.
//
// Hashes, per RFC 6962 section 2.1:
//
//	leaf hash   = SHA-256(0x00 || leaf bytes)
//	node hash   = SHA-256(0x01 || left || right)
//	empty tree  = SHA-256("")
//
// A complete subtree is named by its level (0 = leaves) and its index within
// that level: node (L, i) covers leaves [i·2^L, (i+1)·2^L). Every hash a proof
// needs is either a complete subtree's hash or is computed from them along the
// right edge, so a store only has to keep complete subtrees (see ledger's
// tiles). Proofs list hashes in RFC 6962 order (leaf to root), the order
// golang.org/x/mod/sumdb/tlog and Certificate Transparency clients expect;
// the tests check interoperability with tlog.
//
// The package is pure: no I/O beyond the HashReader it is given, so the
// chaincode and the offline verifier use the same code as the node.
package merkle

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"

	"github.com/minio/sha256-simd"
)

// HashSize is the size of a hash in bytes.
const HashSize = 32

// ProofHashesMax bounds the length of a proof: a tree of 2^63 leaves has
// proofs of at most 2·63 hashes.
const ProofHashesMax = 128

// Hash is a SHA-256 tree hash.
type Hash [HashSize]byte

// String is the hash in standard base64, as checkpoints and the API write it.
func (h Hash) String() string { return base64.StdEncoding.EncodeToString(h[:]) }

// ParseHash decodes a standard base64 hash, refusing non-canonical
// spellings (non-zero padding bits).
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != HashSize {
		return h, fmt.Errorf("%w: %q is not a base64 SHA-256 hash", ErrMalformed, s)
	}
	copy(h[:], b)
	return h, nil
}

var (
	// ErrMalformed is returned for a proof or hash that cannot be read.
	ErrMalformed = errors.New("malformed")
	// ErrProofMismatch is returned when a proof does not lead to the hash
	// it is checked against: the data or the proof was altered.
	ErrProofMismatch = errors.New("proof does not verify")
	// ErrOutOfRange is returned for an index or size beyond the tree.
	ErrOutOfRange = errors.New("out of range")
)

// LeafHash is the RFC 6962 hash of one leaf's bytes.
func LeafHash(leaf []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash is the RFC 6962 hash of an interior node.
func NodeHash(left, right Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot is the root hash of the tree with no leaves.
func EmptyRoot() Hash { return sha256.Sum256(nil) }

// HashReader answers the hash of complete subtree (level, index). Every
// requested subtree lies inside a tree the caller said exists.
type HashReader interface {
	SubtreeHash(level uint8, index uint64) (Hash, error)
}

// RangeHasher is a HashReader that answers RangeHash itself (to remember
// the ragged ranges of a tree's right edge across many proofs).
type RangeHasher interface {
	HashReader
	RangeHash(lo, hi uint64) (Hash, error)
}

// split is the largest power of two smaller than n (n >= 2): RFC 6962's k.
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// RangeHash is MTH(D[lo:hi]) for a range that starts on a boundary of its own
// size rounded up to a power of two, which is every range the RFC 6962
// definitions recurse into.
func RangeHash(r HashReader, lo, hi uint64) (Hash, error) {
	if rh, ok := r.(RangeHasher); ok {
		return rh.RangeHash(lo, hi)
	}
	n := hi - lo
	if n == 0 {
		return EmptyRoot(), nil
	}
	if n&(n-1) == 0 && lo%n == 0 {
		level := uint8(bits.TrailingZeros64(n))
		return r.SubtreeHash(level, lo>>level)
	}
	k := split(n)
	left, err := RangeHash(r, lo, lo+k)
	if err != nil {
		return Hash{}, err
	}
	right, err := RangeHash(r, lo+k, hi)
	if err != nil {
		return Hash{}, err
	}
	return NodeHash(left, right), nil
}

// Root is the root hash of the tree of the first size leaves.
func Root(r HashReader, size uint64) (Hash, error) { return RangeHash(r, 0, size) }

// InclusionProof is the audit path of leaf index in the tree of size leaves
// (RFC 6962 section 2.1.1), leaf to root.
func InclusionProof(r HashReader, index, size uint64) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d in a tree of %d", ErrOutOfRange, index, size)
	}
	var proof []Hash
	lo, hi := uint64(0), size
	// Walk down from the root, collecting siblings; reverse at the end.
	for hi-lo > 1 {
		k := split(hi - lo)
		var sib Hash
		var err error
		if index < lo+k {
			sib, err = RangeHash(r, lo+k, hi)
			hi = lo + k
		} else {
			sib, err = RangeHash(r, lo, lo+k)
			lo += k
		}
		if err != nil {
			return nil, err
		}
		proof = append(proof, sib)
	}
	reverse(proof)
	return proof, nil
}

// ConsistencyProof proves that the tree of size leaves extends the tree of
// old leaves (RFC 6962 section 2.1.2). It is empty when old == size.
func ConsistencyProof(r HashReader, old, size uint64) ([]Hash, error) {
	if old < 1 || old > size {
		return nil, fmt.Errorf("%w: consistency from %d to %d", ErrOutOfRange, old, size)
	}
	var proof []Hash
	lo, hi := uint64(0), size
	m := old
	complete := true // RFC 6962's b: the old tree is a complete subtree seen so far
	for {
		n := hi - lo
		if m == n {
			if !complete {
				h, err := RangeHash(r, lo, hi)
				if err != nil {
					return nil, err
				}
				proof = append(proof, h)
			}
			break
		}
		k := split(n)
		var sib Hash
		var err error
		if m <= k {
			sib, err = RangeHash(r, lo+k, hi)
			hi = lo + k
		} else {
			sib, err = RangeHash(r, lo, lo+k)
			lo += k
			m -= k
			complete = false
		}
		if err != nil {
			return nil, err
		}
		proof = append(proof, sib)
	}
	reverse(proof)
	return proof, nil
}

func reverse(h []Hash) {
	for i, j := 0, len(h)-1; i < j; i, j = i+1, j-1 {
		h[i], h[j] = h[j], h[i]
	}
}

// VerifyInclusion checks that leafHash is leaf index of the tree of size
// leaves with the given root (RFC 9162 section 2.1.3.2).
func VerifyInclusion(leafHash Hash, index, size uint64, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: leaf %d in a tree of %d", ErrOutOfRange, index, size)
	}
	if len(proof) > ProofHashesMax {
		return fmt.Errorf("%w: %d proof hashes", ErrMalformed, len(proof))
	}
	fn, sn := index, size-1
	r := leafHash
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: proof longer than the path", ErrProofMismatch)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: proof shorter than the path", ErrProofMismatch)
	}
	if r != root {
		return fmt.Errorf("%w: leaf %d does not lead to the root of tree %d", ErrProofMismatch, index, size)
	}
	return nil
}

// VerifyConsistency checks that the tree of size leaves with root newRoot
// extends the tree of old leaves with root oldRoot (RFC 9162 section 2.1.4.2).
func VerifyConsistency(old, size uint64, proof []Hash, oldRoot, newRoot Hash) error {
	switch {
	case old < 1 || old > size:
		return fmt.Errorf("%w: consistency from %d to %d", ErrOutOfRange, old, size)
	case len(proof) > ProofHashesMax:
		return fmt.Errorf("%w: %d proof hashes", ErrMalformed, len(proof))
	case old == size:
		if len(proof) != 0 {
			return fmt.Errorf("%w: a tree is consistent with itself by an empty proof", ErrProofMismatch)
		}
		if oldRoot != newRoot {
			return fmt.Errorf("%w: two roots for tree %d", ErrProofMismatch, size)
		}
		return nil
	}
	if len(proof) == 0 {
		return fmt.Errorf("%w: empty proof", ErrProofMismatch)
	}
	if old&(old-1) == 0 {
		// The old tree is a complete subtree: its root starts the path.
		proof = append([]Hash{oldRoot}, proof...)
	}
	fn, sn := old-1, size-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: proof longer than the path", ErrProofMismatch)
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: proof shorter than the path", ErrProofMismatch)
	}
	if fr != oldRoot {
		return fmt.Errorf("%w: proof does not lead to the root of tree %d", ErrProofMismatch, old)
	}
	if sr != newRoot {
		return fmt.Errorf("%w: proof does not lead to the root of tree %d", ErrProofMismatch, size)
	}
	return nil
}

// EncodeProof writes a proof as base64 strings, as the API does.
func EncodeProof(p []Hash) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = h.String()
	}
	return out
}

// DecodeProof reads a proof written by EncodeProof.
func DecodeProof(s []string) ([]Hash, error) {
	if len(s) > ProofHashesMax {
		return nil, fmt.Errorf("%w: %d proof hashes", ErrMalformed, len(s))
	}
	out := make([]Hash, len(s))
	for i, x := range s {
		h, err := ParseHash(x)
		if err != nil {
			return nil, fmt.Errorf("proof hash %d: %w", i, err)
		}
		out[i] = h
	}
	return out, nil
}
