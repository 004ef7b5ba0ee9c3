package merkle

import "fmt"

// MemTree is a Merkle tree held in memory: every complete subtree's hash by
// level. It is the in-memory twin of ledger's tiles, for tests and for
// verifiers that hold a whole small log.
type MemTree struct {
	levels [][]Hash // levels[L][i] is complete subtree (L, i)
}

// Append adds a leaf and returns its index.
func (t *MemTree) Append(leaf []byte) uint64 {
	h := LeafHash(leaf)
	if len(t.levels) == 0 {
		t.levels = append(t.levels, nil)
	}
	t.levels[0] = append(t.levels[0], h)
	index := uint64(len(t.levels[0]) - 1)
	for l, i := 0, index; i&1 == 1; l, i = l+1, i>>1 {
		if len(t.levels) == l+1 {
			t.levels = append(t.levels, nil)
		}
		t.levels[l+1] = append(t.levels[l+1], NodeHash(t.levels[l][i-1], t.levels[l][i]))
	}
	return index
}

// Size is the number of leaves.
func (t *MemTree) Size() uint64 {
	if len(t.levels) == 0 {
		return 0
	}
	return uint64(len(t.levels[0]))
}

// SubtreeHash implements HashReader.
func (t *MemTree) SubtreeHash(level uint8, index uint64) (Hash, error) {
	if int(level) >= len(t.levels) || index >= uint64(len(t.levels[level])) {
		return Hash{}, fmt.Errorf("%w: subtree (%d, %d) is not complete", ErrOutOfRange, level, index)
	}
	return t.levels[level][index], nil
}
