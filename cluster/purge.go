package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Purging is an optional interface of a StateMachine whose commands can
// delete data that must then leave the disk, not only the live state: an
// erasure of personal data. After a batch in which PurgeRequested answers
// true has committed, the partition purges: it snapshots with no trailing
// log (so the Raft log entries before it are deleted), keeps only that
// snapshot, has Pebble flush and compact the partition's state and log key
// ranges, so deleted keys and log entries leave its files, and waits until
// every file the deleted data could be in (the write-ahead logs before the
// flush, the tables the compaction replaced) is gone from the disk. Pebble
// never recycles a WAL here (see deletingCleaner), so no log file keeps old
// records past its end.
//
// The promise is about files: a filesystem does not overwrite the blocks a
// deleted file used, so a raw image of the device may still hold them. Keep
// what such bytes need to be read (a master key) out of the data directory,
// and put the data directory on an encrypted volume when raw device images
// are part of the threat.
type Purging interface {
	// PurgeRequested reports, and clears, that a purge is due.
	PurgeRequested() bool
}

// ErrPurge is returned when a purge could not finish; the partition retries
// it on its next request.
var ErrPurge = errors.New("cluster: purge")

// Purge snapshots the partition with no trailing log, drops older snapshots
// and compacts the partition's key ranges in Pebble. It runs on its own
// goroutine after an erasure commits, on every replica; tests call it to
// wait for one.
func (p *Partition) Purge() error {
	p.purgeMu.Lock()
	defer p.purgeMu.Unlock()
	start := time.Now()
	cfg := p.raft.ReloadableConfig()
	trailing := cfg.TrailingLogs
	cfg.TrailingLogs = 0
	if err := p.raft.ReloadConfig(cfg); err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	snapErr := p.raft.Snapshot().Error()
	cfg.TrailingLogs = trailing
	if err := p.raft.ReloadConfig(cfg); err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	if snapErr != nil && !errors.Is(snapErr, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("%w: partition %d: snapshot: %w", ErrPurge, p.ID, snapErr)
	}
	if err := p.host.pruneSnapshots(p.ID); err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	db := p.host.db
	dir := filepath.Join(p.host.opts.DataDir, "pebble")
	before, err := pebbleFiles(dir)
	if err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	if err := db.Flush(); err != nil {
		return fmt.Errorf("%w: partition %d: flush: %w", ErrPurge, p.ID, err)
	}
	// The newest log is the one the database writes now (the flush's, or
	// a later one); every older one is flushed, or about to be.
	afterFlush, err := pebbleFiles(dir)
	if err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	if current := newestLog(afterFlush); current != "" {
		for name := range before {
			if strings.HasSuffix(name, ".log") && !fileNumLess(name, current) {
				delete(before, name)
			}
		}
	}
	logPrefix := NewRaftStore(db, p.ID).logPrefix
	for _, r := range [][2][]byte{{p.Prefix, prefixEnd(p.Prefix)}, {logPrefix, prefixEnd(logPrefix)}} {
		if err := db.Compact(context.Background(), r[0], r[1], true); err != nil {
			return fmt.Errorf("%w: partition %d: compact: %w", ErrPurge, p.ID, err)
		}
	}
	if err := waitObsoleteGone(db, dir, before, purgeDeleteTimeout); err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	if err := db.Delete(purgeMarkerKey(p.ID), pebble.Sync); err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrPurge, p.ID, err)
	}
	p.host.opts.Logger.Info("partition purged", slog.Uint64("partition", uint64(p.ID)), slog.Duration("took", time.Since(start)))
	return nil
}

// snapshotsRetained is how many snapshots a partition keeps between purges.
const snapshotsRetained = 2

func (h *Host) snapshotDir(id uint32) string {
	return filepath.Join(h.opts.DataDir, "snapshots", strconv.Itoa(int(id)))
}

// pruneSnapshots removes every snapshot of a partition but the newest.
func (h *Host) pruneSnapshots(id uint32) error {
	dir := h.snapshotDir(id)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	metas, err := snaps.List()
	if err != nil {
		return err
	}
	for i, m := range metas { // newest first
		if i == 0 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, "snapshots", m.ID)); err != nil {
			return err
		}
	}
	return nil
}

// purgeDeleteTimeout bounds how long a purge waits for Pebble to delete the
// files it made obsolete (it deletes them on a goroutine of its own).
const purgeDeleteTimeout = 30 * time.Second

// pebbleFiles lists the write-ahead logs and tables in a Pebble directory.
func pebbleFiles(dir string) (map[string]bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string]bool, len(entries))
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".sst") {
			files[name] = true
		}
	}
	return files, nil
}

// newestLog returns the highest-numbered write-ahead log among files.
func newestLog(files map[string]bool) string {
	newest := ""
	for name := range files {
		if strings.HasSuffix(name, ".log") && (newest == "" || fileNumLess(newest, name)) {
			newest = name
		}
	}
	return newest
}

// fileNumLess orders Pebble file names by number: they are numbers padded to
// at least six digits, so a longer name is a larger number.
func fileNumLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// waitObsoleteGone waits until every file of before that the flush and the
// compactions made obsolete has been deleted: every write-ahead log (the
// flush moved the database to a new one), and every table the current
// version no longer has.
func waitObsoleteGone(db *pebble.DB, dir string, before map[string]bool, timeout time.Duration) error {
	levels, err := db.SSTables()
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, level := range levels {
		for _, t := range level {
			live[fmt.Sprintf("%06d.sst", uint64(t.BackingSSTNum))] = true
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		now, err := pebbleFiles(dir)
		if err != nil {
			return err
		}
		var left []string
		for name := range before {
			if now[name] && !live[name] {
				left = append(left, name)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			sort.Strings(left)
			return fmt.Errorf("obsolete files still on disk after %s: %s", timeout, strings.Join(left, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
