package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/golang/snappy"
	"github.com/hashicorp/raft"
)

// errStableNotFound is what hashicorp/raft expects from a StableStore for a
// missing key: it compares the error's text with "not found".
var errStableNotFound = errors.New("not found")

// logEntryBytesMax bounds one Raft entry as stored; larger entries are a bug
// in the proposer (commands are capped well below this).
const logEntryBytesMax = 64 << 20

// RaftStore is a raft.LogStore and raft.StableStore for one Raft group, kept
// under the group's key prefix in a Pebble database shared by all groups of a
// node. Log writes are synced; concurrent groups share fsyncs through Pebble's
// group commit.
type RaftStore struct {
	db        *pebble.DB
	logPrefix []byte
	kvPrefix  []byte
}

var (
	_ raft.LogStore    = (*RaftStore)(nil)
	_ raft.StableStore = (*RaftStore)(nil)
)

// NewRaftStore returns the store of group in db.
func NewRaftStore(db *pebble.DB, group uint32) *RaftStore {
	base := binary.BigEndian.AppendUint32([]byte("r/"), group)
	return &RaftStore{
		db:        db,
		logPrefix: append(append([]byte{}, base...), "/l/"...),
		kvPrefix:  append(append([]byte{}, base...), "/s/"...),
	}
}

func (s *RaftStore) logKey(index uint64) []byte {
	k := make([]byte, 0, len(s.logPrefix)+8)
	return binary.BigEndian.AppendUint64(append(k, s.logPrefix...), index)
}

// FirstIndex returns the first index in the log, 0 when empty.
func (s *RaftStore) FirstIndex() (uint64, error) {
	return s.edgeIndex(true)
}

// LastIndex returns the last index in the log, 0 when empty.
func (s *RaftStore) LastIndex() (uint64, error) {
	return s.edgeIndex(false)
}

func (s *RaftStore) edgeIndex(first bool) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.logPrefix, UpperBound: prefixEnd(s.logPrefix)})
	if err != nil {
		return 0, fmt.Errorf("raft store: iterator: %w", err)
	}
	defer it.Close()
	var ok bool
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	if !ok {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[len(s.logPrefix):]), nil
}

// GetLog reads the entry at index into log, or returns raft.ErrLogNotFound.
func (s *RaftStore) GetLog(index uint64, log *raft.Log) error {
	v, closer, err := s.db.Get(s.logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raft store: get log %d: %w", index, err)
	}
	defer closer.Close()
	if err := decodeLog(v, log); err != nil {
		return fmt.Errorf("raft store: log %d: %w", index, err)
	}
	log.Index = index
	return nil
}

// StoreLog stores one entry.
func (s *RaftStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores entries in one synced batch.
func (s *RaftStore) StoreLogs(logs []*raft.Log) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, l := range logs {
		if err := b.Set(s.logKey(l.Index), encodeLog(l), nil); err != nil {
			return fmt.Errorf("raft store: batch: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raft store: commit %d entries: %w", len(logs), err)
	}
	return nil
}

// DeleteRange deletes entries min..max inclusive.
func (s *RaftStore) DeleteRange(min, max uint64) error {
	if err := s.db.DeleteRange(s.logKey(min), s.logKey(max+1), pebble.Sync); err != nil {
		return fmt.Errorf("raft store: delete %d..%d: %w", min, max, err)
	}
	return nil
}

// Set stores a stable value, synced.
func (s *RaftStore) Set(key, val []byte) error {
	k := append(append([]byte{}, s.kvPrefix...), key...)
	if err := s.db.Set(k, val, pebble.Sync); err != nil {
		return fmt.Errorf("raft store: set %q: %w", key, err)
	}
	return nil
}

// Get returns a stable value, or an error whose text is "not found".
func (s *RaftStore) Get(key []byte) ([]byte, error) {
	k := append(append([]byte{}, s.kvPrefix...), key...)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errStableNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raft store: get %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// SetUint64 stores a stable integer.
func (s *RaftStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns a stable integer, or an error whose text is "not found".
func (s *RaftStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft store: %q holds %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Log entry encoding: term u64, type u8, appended-at unix nanos i64,
// data length u32, data, extensions length u32, extensions.
// A stored entry: term (8 bytes), type (1; its high bit set when the data
// is snappy-compressed), appended-at (8), data length (4), data, extensions
// length (4), extensions. Entries stored before compression existed have
// the high bit clear and decode as they are.
const (
	// logCompressedFlag marks an entry whose data is snappy-compressed.
	logCompressedFlag = 0x80
	// logCompressBytesMin is the least data worth compressing: batch
	// commands (orders, reservations, ledger leaves) compress to a half or
	// less; small entries are left as they are.
	logCompressBytesMin = 512
)

func encodeLog(l *raft.Log) []byte {
	data, typ := l.Data, byte(l.Type)
	if len(data) >= logCompressBytesMin {
		if c := snappy.Encode(nil, data); len(c) < len(data)-len(data)/8 {
			data, typ = c, typ|logCompressedFlag
		}
	}
	b := make([]byte, 0, 8+1+8+4+len(data)+4+len(l.Extensions))
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, typ)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	return append(b, l.Extensions...)
}

var errCorruptLog = errors.New("corrupt log entry")

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 8+1+8+4 || len(b) > logEntryBytesMax {
		return errCorruptLog
	}
	l.Term = binary.BigEndian.Uint64(b)
	typ := b[8]
	l.Type = raft.LogType(typ &^ logCompressedFlag)
	if at := int64(binary.BigEndian.Uint64(b[9:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	} else {
		l.AppendedAt = time.Time{}
	}
	n := int(binary.BigEndian.Uint32(b[17:]))
	rest := b[21:]
	if n > len(rest)-4 {
		return errCorruptLog
	}
	if typ&logCompressedFlag != 0 {
		size, err := snappy.DecodedLen(rest[:n])
		if err != nil || size > logEntryBytesMax || size < logCompressBytesMin {
			return errCorruptLog
		}
		if l.Data, err = snappy.Decode(make([]byte, size), rest[:n]); err != nil {
			return errCorruptLog
		}
	} else {
		l.Data = append([]byte(nil), rest[:n]...)
	}
	rest = rest[n:]
	m := int(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if m != len(rest) {
		return errCorruptLog
	}
	l.Extensions = nil
	if m > 0 {
		l.Extensions = append([]byte(nil), rest...)
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
