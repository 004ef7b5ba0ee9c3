package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// StateMachine is the domain's side of a partition. The partition calls Apply
// for each committed command, in log order, on every replica.
//
// Apply must be deterministic: it may read and write only through batch (an
// indexed batch, so it sees its own and earlier writes of the same batch),
// only keys under the partition's prefix, and must take time and randomness
// from the command, never from the machine. Its return value is handed to the
// proposer on the leader. An error in the command (bad stock, illegal
// transition) is a result, not a panic. The result is bytes because the
// proposer may be on another node.
type StateMachine interface {
	Apply(batch *pebble.Batch, index uint64, command []byte) []byte
}

// Loading is a StateMachine that keeps in memory what it derives from its
// state (an index, say). The partition calls Load when it opens and after
// a snapshot replaced the state; Apply keeps what Load built up to date.
type Loading interface {
	Load(state pebble.Reader) error
}

// StateMachineFactory makes the state machine of partition id, whose keys all
// start with prefix.
type StateMachineFactory func(id uint32, prefix []byte) StateMachine

// snapshotChunkBytes is how much restored state goes into one Pebble batch.
const snapshotChunkBytes = 4 << 20

// fsm adapts a StateMachine to raft.BatchingFSM, storing the applied index in
// the same batch as the state so a replay after restart is skipped.
type fsm struct {
	db         *pebble.DB
	prefix     []byte
	appliedKey []byte
	// restoringKey, outside the key range, is set while Restore rewrites
	// the range: a node that dies mid-restore restores again on start.
	restoringKey []byte
	// purgeKey, outside the key range, is set while a purge is owed.
	purgeKey []byte
	sm       StateMachine
	applied  uint64
	onApply  func(n int)
	onPurge  atomic.Pointer[func()]
	// progress publishes applied (visible in Pebble) to readers waiting
	// for a read index.
	progress appliedProgress
}

func (f *fsm) setPurge(fn func()) { f.onPurge.Store(&fn) }

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(db *pebble.DB, id uint32, prefix []byte, sm StateMachine) (*fsm, error) {
	f := &fsm{db: db, prefix: prefix, appliedKey: append(append([]byte{}, prefix...), "\x00applied"...), sm: sm,
		restoringKey: binary.BigEndian.AppendUint32([]byte("m/restoring/"), id), purgeKey: purgeMarkerKey(id)}
	v, closer, err := db.Get(f.appliedKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("partition state: applied index: %w", err)
	default:
		f.applied = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	f.progress.init(f.applied)
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// load lets a Loading state machine rebuild what it keeps in memory.
func (f *fsm) load() error {
	l, ok := f.sm.(Loading)
	if !ok {
		return nil
	}
	if err := l.Load(f.db); err != nil {
		return fmt.Errorf("partition state: load: %w", err)
	}
	return nil
}

func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	b := f.db.NewIndexedBatch()
	defer b.Close()
	last := f.applied
	n := 0
	for i, l := range logs {
		if l.Index <= f.applied {
			continue // replayed after a restart: already in the state
		}
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		out[i] = f.sm.Apply(b, l.Index, l.Data)
		n++
	}
	if last == f.applied {
		return out
	}
	if err := b.Set(f.appliedKey, binary.BigEndian.AppendUint64(nil, last), nil); err != nil {
		panic(fmt.Sprintf("partition state: batch set: %v", err))
	}
	// A purge is owed from the moment its erasure is in the state: the
	// marker commits with it, so a node that stops before the purge ran
	// purges when it starts again.
	pg, purging := f.sm.(Purging)
	purge := purging && pg.PurgeRequested()
	if purge {
		if err := b.Set(f.purgeKey, nil, nil); err != nil {
			panic(fmt.Sprintf("partition state: batch set: %v", err))
		}
	}
	// NoSync: the Raft log already holds these entries durably; a lost tail
	// of state is re-applied from it. Snapshot syncs before logs are compacted.
	if err := b.Commit(pebble.NoSync); err != nil {
		// The state can no longer follow the log: stop rather than diverge.
		panic(fmt.Sprintf("partition state: commit: %v", err))
	}
	f.applied = last
	f.progress.advance(last)
	if f.onApply != nil {
		f.onApply(n)
	}
	if purge {
		if fn := f.onPurge.Load(); fn != nil {
			(*fn)()
		}
	}
	return out
}

// Snapshot syncs the state to disk (Raft will compact the log behind it) and
// captures the partition's key range.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("partition snapshot: sync: %w", err)
	}
	return &fsmSnapshot{snap: f.db.NewSnapshot(), prefix: f.prefix}, nil
}

// interruptedRestore reports whether a Restore of this partition did not
// finish: its state is partial and must be restored again.
func (f *fsm) interruptedRestore() (bool, error) {
	_, closer, err := f.db.Get(f.restoringKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("partition state: restore marker: %w", err)
	}
	closer.Close()
	return true, nil
}

// Restore replaces the partition's key range with a snapshot's. It is
// crash-safe: a marker is synced first and removed, with the applied index
// written last, in the final synced batch; a node that finds the marker on
// start restores the snapshot again (see startPartition).
func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	if err := f.db.Set(f.restoringKey, nil, pebble.Sync); err != nil {
		return fmt.Errorf("partition restore: marker: %w", err)
	}
	if err := f.db.DeleteRange(f.prefix, prefixEnd(f.prefix), pebble.NoSync); err != nil {
		return fmt.Errorf("partition restore: clear: %w", err)
	}
	br := bufio.NewReader(r)
	b := f.db.NewBatch()
	var applied []byte
	for {
		k, v, err := readFrame(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Close()
			return fmt.Errorf("partition restore: %w", err)
		}
		if len(k) < len(f.prefix) || string(k[:len(f.prefix)]) != string(f.prefix) {
			b.Close()
			return fmt.Errorf("partition restore: key outside the partition")
		}
		if string(k) == string(f.appliedKey) {
			applied = v // written last: only a complete state carries it
			continue
		}
		_ = b.Set(k, v, nil)
		if b.Len() > snapshotChunkBytes {
			err := b.Commit(pebble.NoSync)
			b.Close()
			if err != nil {
				return fmt.Errorf("partition restore: commit: %w", err)
			}
			b = f.db.NewBatch()
		}
	}
	defer b.Close()
	if len(applied) != 8 {
		return errors.New("partition restore: the snapshot has no applied index")
	}
	_ = b.Set(f.appliedKey, applied, nil)
	_ = b.Delete(f.restoringKey, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("partition restore: commit: %w", err)
	}
	f.applied = binary.BigEndian.Uint64(applied)
	f.progress.advance(f.applied)
	return f.load()
}

type fsmSnapshot struct {
	snap   *pebble.Snapshot
	prefix []byte
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: prefixEnd(s.prefix)})
	if err != nil {
		sink.Cancel()
		return err
	}
	w := bufio.NewWriter(sink)
	for ok := it.First(); ok; ok = it.Next() {
		if err := writeFrame(w, it.Key(), it.Value()); err != nil {
			it.Close()
			sink.Cancel()
			return err
		}
	}
	err = errors.Join(it.Close(), w.Flush())
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.snap.Close() }

func writeFrame(w *bufio.Writer, k, v []byte) error {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(k)))
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(v)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(k); err != nil {
		return err
	}
	_, err := w.Write(v)
	return err
}

func readFrame(r *bufio.Reader) (k, v []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, err
	}
	kl, vl := binary.BigEndian.Uint32(hdr[:]), binary.BigEndian.Uint32(hdr[4:])
	if kl > logEntryBytesMax || vl > logEntryBytesMax {
		return nil, nil, errors.New("snapshot frame too large")
	}
	buf := make([]byte, kl+vl)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, nil, fmt.Errorf("snapshot frame: %w", io.ErrUnexpectedEOF)
	}
	return buf[:kl], buf[kl:], nil
}
