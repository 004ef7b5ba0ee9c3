package merkle

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// tlogStore keeps golang.org/x/mod/sumdb/tlog's stored hashes: an
// independent RFC 6962 implementation to check ours against.
type tlogStore []tlog.Hash

func (s tlogStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = s[x]
	}
	return out, nil
}

func build(t testing.TB, n int) (*MemTree, tlogStore) {
	t.Helper()
	var mt MemTree
	var st tlogStore
	for i := 0; i < n; i++ {
		leaf := []byte(fmt.Sprintf("leaf %d", i))
		mt.Append(leaf)
		hs, err := tlog.StoredHashes(int64(i), leaf, st)
		if err != nil {
			t.Fatal(err)
		}
		st = append(st, hs...)
	}
	return &mt, st
}

func TestAgainstTlog(t *testing.T) {
	const n = 300
	mt, st := build(t, n)
	for size := uint64(1); size <= n; size++ {
		root, err := Root(mt, size)
		if err != nil {
			t.Fatal(err)
		}
		want, err := tlog.TreeHash(int64(size), st)
		if err != nil {
			t.Fatal(err)
		}
		if root != Hash(want) {
			t.Fatalf("root of %d: %s, tlog says %s", size, root, want)
		}
		for _, i := range sample(size) {
			p, err := InclusionProof(mt, i, size)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := tlog.ProveRecord(int64(size), int64(i), st)
			if err != nil {
				t.Fatal(err)
			}
			if !sameProof(p, tp) {
				t.Fatalf("inclusion %d in %d: %v, tlog %v", i, size, p, tp)
			}
			leaf := LeafHash([]byte(fmt.Sprintf("leaf %d", i)))
			if err := VerifyInclusion(leaf, i, size, p, root); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
		}
		for _, old := range sample(size) {
			old++ // 1..size
			p, err := ConsistencyProof(mt, old, size)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := tlog.ProveTree(int64(size), int64(old), st)
			if err != nil {
				t.Fatal(err)
			}
			if !sameProof(p, tp) {
				t.Fatalf("consistency %d..%d: %v, tlog %v", old, size, p, tp)
			}
			oldRoot, _ := Root(mt, old)
			if err := VerifyConsistency(old, size, p, oldRoot, root); err != nil {
				t.Fatalf("consistency %d..%d: %v", old, size, err)
			}
			if err := tlog.CheckTree(toTlog(p), int64(size), tlog.Hash(root), int64(old), tlog.Hash(oldRoot)); err != nil {
				t.Fatalf("tlog rejects our consistency proof %d..%d: %v", old, size, err)
			}
		}
	}
}

// sample is every index below 40, and a few beyond.
func sample(size uint64) []uint64 {
	var out []uint64
	for i := uint64(0); i < size && i < 40; i++ {
		out = append(out, i)
	}
	for _, i := range []uint64{size / 2, size - 2, size - 1} {
		if i < size && i >= 40 {
			out = append(out, i)
		}
	}
	return out
}

func sameProof(p []Hash, tp []tlog.Hash) bool {
	if len(p) != len(tp) {
		return false
	}
	for i := range p {
		if p[i] != Hash(tp[i]) {
			return false
		}
	}
	return true
}

func toTlog(p []Hash) tlog.TreeProof {
	out := make(tlog.TreeProof, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

// TestTamper changes every proof in every way a single bit can and expects a
// rejection each time.
func TestTamper(t *testing.T) {
	mt, _ := build(t, 77)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		size := 1 + rng.Uint64N(77)
		i := rng.Uint64N(size)
		root, _ := Root(mt, size)
		p, _ := InclusionProof(mt, i, size)
		leaf := LeafHash([]byte(fmt.Sprintf("leaf %d", i)))
		if len(p) > 0 {
			q := append([]Hash{}, p...)
			q[rng.IntN(len(q))][rng.IntN(HashSize)] ^= 1 << rng.IntN(8)
			if err := VerifyInclusion(leaf, i, size, q, root); !errors.Is(err, ErrProofMismatch) {
				t.Fatalf("altered proof accepted: %v", err)
			}
			if err := VerifyInclusion(leaf, i, size, p[:len(p)-1], root); err == nil {
				t.Fatal("short proof accepted")
			}
		}
		if err := VerifyInclusion(leaf, i, size, append(append([]Hash{}, p...), Hash{}), root); err == nil {
			t.Fatal("long proof accepted")
		}
		if size > 1 {
			other := (i + 1) % size
			if err := VerifyInclusion(leaf, other, size, p, root); err == nil {
				t.Fatalf("leaf %d accepted at index %d", i, other)
			}
		}
		old := 1 + rng.Uint64N(size)
		cp, _ := ConsistencyProof(mt, old, size)
		oldRoot, _ := Root(mt, old)
		if len(cp) > 0 {
			q := append([]Hash{}, cp...)
			q[rng.IntN(len(q))][rng.IntN(HashSize)] ^= 1 << rng.IntN(8)
			if err := VerifyConsistency(old, size, q, oldRoot, root); err == nil {
				t.Fatalf("altered consistency proof %d..%d accepted", old, size)
			}
		}
		bad := oldRoot
		bad[0] ^= 1
		if err := VerifyConsistency(old, size, cp, bad, root); err == nil {
			t.Fatalf("wrong old root accepted %d..%d", old, size)
		}
	}
}

func TestOutOfRange(t *testing.T) {
	mt, _ := build(t, 5)
	if _, err := InclusionProof(mt, 5, 5); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("index beyond the tree: %v", err)
	}
	if _, err := ConsistencyProof(mt, 4, 3); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("from > to: %v", err)
	}
	if _, err := ConsistencyProof(mt, 0, 3); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("from 0: %v", err)
	}
	if _, err := Root(mt, 9); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("root beyond the tree: %v", err)
	}
}

func BenchmarkInclusionProof(b *testing.B) {
	mt, _ := build(b, 1<<16)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := InclusionProof(mt, uint64(i)%(1<<16), 1<<16-3); err != nil {
			b.Fatal(err)
		}
	}
}
