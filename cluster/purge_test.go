package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// secretStore keeps one value per command "set:<value>" and deletes every
// value on "erase", asking for a purge: the shape of a subject key and its
// erasure.
type secretStore struct {
	prefix []byte
	purge  bool
}

func (s *secretStore) Apply(b *pebble.Batch, _ uint64, cmd []byte) []byte {
	key := append(append([]byte{}, s.prefix...), "secret"...)
	switch {
	case bytes.HasPrefix(cmd, []byte("set:")):
		_ = b.Set(key, cmd[len("set:"):], nil)
	case string(cmd) == "erase":
		_ = b.Delete(key, nil)
		s.purge = true
	case string(cmd) == "erase-unpurged": // as if the node stopped before its purge ran
		_ = b.Delete(key, nil)
		_ = b.Set(purgeMarkerKey(0), nil, nil)
	default: // filler
		_ = b.Set(append(append([]byte{}, s.prefix...), cmd...), bytes.Repeat([]byte{'f'}, 512), nil)
	}
	return nil
}

func (s *secretStore) PurgeRequested() bool {
	p := s.purge
	s.purge = false
	return p
}

// filesHolding lists the files under root whose bytes contain secret.
func filesHolding(t *testing.T, root string, secret []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, secret) {
			found = append(found, strings.TrimPrefix(path, root))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// After a purge, a deleted value is in no file of the data directory: not in
// a write-ahead log (live, obsolete or recycled), a table, the Raft log or a
// snapshot, even when the log that first held it was long flushed and its
// file would have been kept for reuse.
func TestPurgeLeavesNoCopyInAnyFile(t *testing.T) {
	dir := t.TempDir()
	opts := Options{DataDir: dir, RaftAddr: freeAddr(t), Partitions: 1, Logger: testLogger(),
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond}
	h, err := Open(opts, func(uint32, []byte) StateMachine { return &secretStore{} })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	secret := []byte(hex.EncodeToString(raw))
	p := h.Partitions()[0]
	if _, err := p.Propose(ctx, append([]byte("set:"), secret...)); err != nil {
		t.Fatal(err)
	}
	if found := filesHolding(t, dir, secret); len(found) == 0 {
		t.Fatal("control: the secret is in no file before the erasure; the search is broken")
	}
	// Rotate the write-ahead log a few times, so the log that took the
	// secret is obsolete (Pebble would keep it for recycling).
	for round := 0; round < 4; round++ {
		for i := 0; i < 20; i++ {
			if _, err := p.Propose(ctx, []byte("filler-"+strings.Repeat("x", round)+string(rune('a'+i)))); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.DB().Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Propose(ctx, []byte("erase")); err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(); err != nil {
		t.Fatal(err)
	}
	if found := filesHolding(t, dir, secret); len(found) > 0 {
		t.Fatalf("after the purge the secret is still in %v", found)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if found := filesHolding(t, dir, secret); len(found) > 0 {
		t.Fatalf("after the purge and a clean stop the secret is still in %v", found)
	}
}

// A purge owed when the node stopped (its marker committed with the
// erasure) runs when the node starts again.
func TestPurgeOwedAtStopRunsAtStart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{DataDir: dir, RaftAddr: freeAddr(t), Partitions: 1, Logger: testLogger(),
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond}
	newSM := func(uint32, []byte) StateMachine { return &secretStore{} }
	h, err := Open(opts, newSM)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	secret := []byte(fmt.Sprintf("owed-%d-secret", time.Now().UnixNano()))
	p := h.Partitions()[0]
	for _, cmd := range [][]byte{append([]byte("set:"), secret...), []byte("erase-unpurged")} {
		if _, err := p.Propose(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if found := filesHolding(t, dir, secret); len(found) == 0 {
		t.Fatal("control: without the purge the secret is in no file; the test proves nothing")
	}
	h, err = Open(opts, newSM)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	deadline := time.Now().Add(45 * time.Second)
	for {
		_, closer, err := h.DB().Get(purgeMarkerKey(0))
		if err != nil {
			break // the purge is done: its last step deletes the marker
		}
		closer.Close()
		if time.Now().After(deadline) {
			t.Fatal("no purge after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if found := filesHolding(t, dir, secret); len(found) > 0 {
		t.Fatalf("after the owed purge the secret is still in %v", found)
	}
}
