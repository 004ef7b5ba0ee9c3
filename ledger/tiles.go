package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// The tree is stored as tiles, after the tlog-tiles layout: tile (T, N) holds
// the hashes of tree level 8·T, nodes 256·N up to 256·N+w-1 (w <= 256), as
// w·32 bytes under
//
//	{ledger prefix}t/{T u8}{N u64}
//
// A complete subtree at level 8·T+k (k < 8) is the hash of 2^k consecutive
// hashes of one tile, so any proof of a tree of 2^64 leaves needs at most
// eight tile reads per level of tiles it touches; full tiles never change and
// are cached.
const (
	tileHeight    = 8
	tileWidth     = 1 << tileHeight
	tileSpace     = "t/"
	tileCacheMax  = 4096 // full tiles cached: 32 MiB at most
	tileLevelsMax = 8    // 8 levels of 8: 2^64 leaves
)

func tileKey(prefix []byte, level uint8, index uint64) []byte {
	k := make([]byte, 0, len(prefix)+len(tileSpace)+9)
	k = append(k, prefix...)
	k = append(k, tileSpace...)
	k = append(k, level)
	return binary.BigEndian.AppendUint64(k, index)
}

// tileCache keeps full tiles, which never change.
type tileCache struct {
	mu    sync.Mutex
	tiles map[[9]byte][]byte
}

func newTileCache() *tileCache { return &tileCache{tiles: make(map[[9]byte][]byte)} }

func cacheKey(level uint8, index uint64) [9]byte {
	var k [9]byte
	k[0] = level
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

func (c *tileCache) get(level uint8, index uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tiles[cacheKey(level, index)]
}

func (c *tileCache) put(level uint8, index uint64, tile []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tiles) >= tileCacheMax {
		for k := range c.tiles { // evict an arbitrary tenth
			delete(c.tiles, k)
			if len(c.tiles) < tileCacheMax*9/10 {
				break
			}
		}
	}
	c.tiles[cacheKey(level, index)] = tile
}

// tileReader answers complete subtree hashes from the tiles under prefix.
type tileReader struct {
	r      pebble.Reader
	prefix []byte
	cache  *tileCache // nil: no caching (the state machine reads its own batch)
}

var _ merkle.HashReader = tileReader{}

func (t tileReader) tile(level uint8, index uint64) ([]byte, error) {
	if t.cache != nil {
		if b := t.cache.get(level, index); b != nil {
			return b, nil
		}
	}
	v, closer, err := t.r.Get(tileKey(t.prefix, level, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tile (%d, %d): %w", level, index, err)
	}
	b := append([]byte{}, v...)
	closer.Close()
	if t.cache != nil && len(b) == tileWidth*merkle.HashSize {
		t.cache.put(level, index, b)
	}
	return b, nil
}

// SubtreeHash implements merkle.HashReader.
func (t tileReader) SubtreeHash(level uint8, index uint64) (merkle.Hash, error) {
	tl, k := level/tileHeight, level%tileHeight
	if tl >= tileLevelsMax {
		return merkle.Hash{}, fmt.Errorf("%w: level %d", merkle.ErrOutOfRange, level)
	}
	start := index << k
	count := uint64(1) << k
	b, err := t.tile(tl, start/tileWidth)
	if err != nil {
		return merkle.Hash{}, err
	}
	off := start % tileWidth
	if uint64(len(b)) < (off+count)*merkle.HashSize {
		return merkle.Hash{}, fmt.Errorf("%w: subtree (%d, %d) is not in the tree", merkle.ErrOutOfRange, level, index)
	}
	return hashUp(b[off*merkle.HashSize : (off+count)*merkle.HashSize]), nil
}

// hashUp is the root of the complete tree whose leaves' hashes (a power of
// two of them) are row.
func hashUp(row []byte) merkle.Hash {
	n := len(row) / merkle.HashSize
	if n == 1 {
		return merkle.Hash(row)
	}
	var scratch [tileWidth / 2]merkle.Hash
	for i := 0; i < n/2; i++ {
		scratch[i] = merkle.NodeHash(merkle.Hash(row[2*i*merkle.HashSize:]), merkle.Hash(row[(2*i+1)*merkle.HashSize:]))
	}
	for w := n / 2; w > 1; w /= 2 {
		for i := 0; i < w/2; i++ {
			scratch[i] = merkle.NodeHash(scratch[2*i], scratch[2*i+1])
		}
	}
	return scratch[0]
}

// tileWriter appends leaf hashes to the tiles of a tree of size leaves,
// inside one batch: it reads the partial tile of each level once, and writes
// each changed tile once at flush.
type tileWriter struct {
	b       *pebble.Batch
	prefix  []byte
	size    uint64
	cur     [tileLevelsMax][]byte // the open tile of each level
	loaded  [tileLevelsMax]bool
	changed [tileLevelsMax]bool
}

func newTileWriter(b *pebble.Batch, prefix []byte, size uint64) *tileWriter {
	return &tileWriter{b: b, prefix: prefix, size: size}
}

// count is the number of hashes at tile level tl of a tree of size leaves.
func countAt(size uint64, tl uint8) uint64 { return size >> (uint(tl) * tileHeight) }

func (w *tileWriter) open(tl uint8) error {
	if w.loaded[tl] {
		return nil
	}
	n := countAt(w.size, tl)
	w.loaded[tl] = true
	if n%tileWidth == 0 {
		w.cur[tl] = make([]byte, 0, tileWidth*merkle.HashSize)
		return nil
	}
	b, err := tileReader{r: w.b, prefix: w.prefix}.tile(tl, n/tileWidth)
	if err != nil {
		return err
	}
	if uint64(len(b)) != (n%tileWidth)*merkle.HashSize {
		return fmt.Errorf("tile (%d, %d) has %d bytes, the tree of %d needs %d", tl, n/tileWidth, len(b), w.size, (n%tileWidth)*merkle.HashSize)
	}
	w.cur[tl] = append(make([]byte, 0, tileWidth*merkle.HashSize), b...)
	return nil
}

// add appends one leaf hash.
func (w *tileWriter) add(h merkle.Hash) error {
	// Hashes at tile level tl before this leaf: countAt(size, tl).
	for tl := uint8(0); tl < tileLevelsMax; tl++ {
		if err := w.open(tl); err != nil {
			return err
		}
		w.cur[tl] = append(w.cur[tl], h[:]...)
		w.changed[tl] = true
		if len(w.cur[tl]) < tileWidth*merkle.HashSize {
			break
		}
		// The tile is full: write it, and its root becomes a hash of the next level.
		index := countAt(w.size, tl) / tileWidth
		if err := w.b.Set(tileKey(w.prefix, tl, index), w.cur[tl], nil); err != nil {
			return err
		}
		h = hashUp(w.cur[tl])
		w.cur[tl] = make([]byte, 0, tileWidth*merkle.HashSize)
		w.changed[tl] = false
	}
	w.size++
	return nil
}

// flush writes the open tiles that changed.
func (w *tileWriter) flush() error {
	for tl := uint8(0); tl < tileLevelsMax; tl++ {
		if !w.changed[tl] || len(w.cur[tl]) == 0 {
			continue
		}
		index := countAt(w.size, tl) / tileWidth
		if err := w.b.Set(tileKey(w.prefix, tl, index), w.cur[tl], nil); err != nil {
			return err
		}
		w.changed[tl] = false
	}
	return nil
}
