package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Purging is an optional interface of a StateMachine whose commands can
// delete data that must then leave the disk, not only the live state: an
// erasure of personal data. After a batch in which PurgeRequested answers
// true has committed, the partition purges: it snapshots with no trailing
// log (so the Raft log entries before it are deleted), keeps only that
// snapshot, and has Pebble flush and compact the partition's state and log
// key ranges, so deleted keys and log entries leave its files.
//
// What Pebble cannot promise: a recycled write-ahead-log file may keep old
// bytes in its tail until they are overwritten. Keep what such data needs to
// be read (a master key) out of the data directory.
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
	if err := db.Flush(); err != nil {
		return fmt.Errorf("%w: partition %d: flush: %w", ErrPurge, p.ID, err)
	}
	logPrefix := NewRaftStore(db, p.ID).logPrefix
	for _, r := range [][2][]byte{{p.Prefix, prefixEnd(p.Prefix)}, {logPrefix, prefixEnd(logPrefix)}} {
		if err := db.Compact(context.Background(), r[0], r[1], true); err != nil {
			return fmt.Errorf("%w: partition %d: compact: %w", ErrPurge, p.ID, err)
		}
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
