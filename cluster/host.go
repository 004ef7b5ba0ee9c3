package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// PartitionsMax bounds the number of partitions of a node.
const PartitionsMax = 1024

// Options configure a Host. Zero fields take the documented defaults.
type Options struct {
	// DataDir holds the Pebble database and Raft snapshots. Required.
	DataDir string
	// NodeID names this node in Raft configurations. Default "node1".
	NodeID string
	// RaftAddr is the TCP address all Raft groups share. Default 127.0.0.1:7000.
	RaftAddr string
	// Partitions is the number of Raft groups. Fixed for the life of the data
	// directory; reopening with another number is refused. Default 8.
	Partitions int
	// HeartbeatTimeout and ElectionTimeout as in hashicorp/raft. Default 500ms.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// SnapshotThreshold is the number of log entries between snapshots. Default 8192.
	SnapshotThreshold uint64
	// CacheBytes is Pebble's block cache. Default 256 MiB.
	CacheBytes int64
	// Logger receives the host's and Raft's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the Prometheus metrics. nil: not registered.
	Registerer prometheus.Registerer
}

func (o *Options) withDefaults() {
	if o.NodeID == "" {
		o.NodeID = "node1"
	}
	if o.RaftAddr == "" {
		o.RaftAddr = "127.0.0.1:7000"
	}
	if o.Partitions == 0 {
		o.Partitions = 8
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = 500 * time.Millisecond
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = 500 * time.Millisecond
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 8192
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 256 << 20
	}
}

// Host is one node's set of partitions over one Pebble database.
type Host struct {
	opts       Options
	db         *pebble.DB
	mux        *Mux
	partitions []*Partition
	metrics    *Metrics
}

// Open opens (or creates) the node's database and starts its partitions,
// bootstrapping each as a single-voter group on first start.
func Open(opts Options, newSM StateMachineFactory) (*Host, error) {
	opts.withDefaults()
	if opts.DataDir == "" {
		return nil, errors.New("cluster: DataDir is required")
	}
	if opts.Partitions < 1 || opts.Partitions > PartitionsMax {
		return nil, fmt.Errorf("cluster: partitions %d outside 1..%d", opts.Partitions, PartitionsMax)
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	po := pebbleOptions(opts)
	db, err := pebble.Open(filepath.Join(opts.DataDir, "pebble"), po)
	po.Cache.Unref() // the database holds its own reference
	if err != nil {
		return nil, fmt.Errorf("cluster: open pebble: %w", err)
	}
	h := &Host{opts: opts, db: db, metrics: newMetrics(opts.Registerer)}
	if err := h.checkPartitionCount(); err != nil {
		db.Close()
		return nil, err
	}
	h.mux, err = ListenMux(opts.RaftAddr, opts.Logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	for i := 0; i < opts.Partitions; i++ {
		p, err := h.startPartition(uint32(i), newSM)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.partitions = append(h.partitions, p)
	}
	return h, nil
}

func (h *Host) checkPartitionCount() error {
	key := []byte("m/partitions")
	v, closer, err := h.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return h.db.Set(key, []byte(strconv.Itoa(h.opts.Partitions)), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("cluster: read partition count: %w", err)
	}
	defer closer.Close()
	if string(v) != strconv.Itoa(h.opts.Partitions) {
		return fmt.Errorf("cluster: data directory has %s partitions, configuration says %d: %w", v, h.opts.Partitions, ErrIncompatibleData)
	}
	return nil
}

// ErrIncompatibleData is returned when the data directory was made with
// settings that cannot change.
var ErrIncompatibleData = errors.New("incompatible data directory")

func (h *Host) startPartition(id uint32, newSM StateMachineFactory) (*Partition, error) {
	prefix := binary.BigEndian.AppendUint32([]byte("p/"), id)
	prefix = append(prefix, '/')
	f, err := newFSM(h.db, prefix, newSM(id, prefix))
	if err != nil {
		return nil, err
	}
	f.onApply = h.metrics.observeApply
	store := NewRaftStore(h.db, id)
	snapDir := filepath.Join(h.opts.DataDir, "snapshots", strconv.Itoa(int(id)))
	hlog := hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("raft.p%d", id), Level: hclog.Warn, Output: os.Stderr})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(snapDir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot store %d: %w", id, err)
	}
	layer, err := h.mux.Layer(id)
	if err != nil {
		return nil, err
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(h.opts.NodeID)
	cfg.HeartbeatTimeout = h.opts.HeartbeatTimeout
	cfg.ElectionTimeout = h.opts.ElectionTimeout
	cfg.LeaderLeaseTimeout = h.opts.HeartbeatTimeout / 2
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.MaxAppendEntries = 1024
	cfg.BatchApplyCh = true
	cfg.SnapshotThreshold = h.opts.SnapshotThreshold
	cfg.SnapshotInterval = 30 * time.Second
	cfg.TrailingLogs = 4096
	// State lives in Pebble with its applied index: no restore on start.
	cfg.NoSnapshotRestoreOnStart = true
	cfg.Logger = hlog
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: partition %d state: %w", id, err)
	}
	if !existing {
		conf := raft.Configuration{Servers: []raft.Server{{ID: cfg.LocalID, Address: raft.ServerAddress(h.opts.RaftAddr)}}}
		if err := raft.BootstrapCluster(cfg, store, store, snaps, trans, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap partition %d: %w", id, err)
		}
	}
	r, err := raft.NewRaft(cfg, f, store, store, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start partition %d: %w", id, err)
	}
	return &Partition{ID: id, Prefix: prefix, raft: r, fsm: f, metrics: h.metrics}, nil
}

// DB is the node's database, for reads of partition state.
func (h *Host) DB() *pebble.DB { return h.db }

// Partitions returns every partition, by id.
func (h *Host) Partitions() []*Partition { return h.partitions }

// PartitionOf returns the partition that owns key.
func (h *Host) PartitionOf(key string) *Partition {
	return h.partitions[PartitionIndex(key, len(h.partitions))]
}

// PartitionIndex is hash(key) mod n, the placement rule of every key.
func PartitionIndex(key string, n int) int {
	f := fnv.New32a()
	_, _ = io.WriteString(f, key)
	return int(f.Sum32() % uint32(n))
}

// WaitReady waits until every partition has a leader and has applied every
// entry committed before the call.
func (h *Host) WaitReady(ctx context.Context) error {
	for _, p := range h.partitions {
		for !p.HasLeader() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("partition %d has no leader: %w", p.ID, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if p.IsLeader() {
			if err := p.Barrier(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ready reports whether every partition has a leader.
func (h *Host) Ready() bool {
	for _, p := range h.partitions {
		if !p.HasLeader() {
			return false
		}
	}
	return true
}

// Close stops every partition and closes the database.
func (h *Host) Close() error {
	var errs []error
	for _, p := range h.partitions {
		if err := p.raft.Shutdown().Error(); err != nil {
			errs = append(errs, err)
		}
	}
	if h.mux != nil {
		errs = append(errs, h.mux.Close())
	}
	errs = append(errs, h.db.Close())
	return errors.Join(errs...)
}

// pebbleOptions: bloom filters on every level (most reads are point reads
// of keys that do not exist yet: a new order, a new reservation) and a block
// cache sized by CacheBytes.
func pebbleOptions(opts Options) *pebble.Options {
	po := &pebble.Options{
		Logger: quietPebbleLogger{opts.Logger},
		Cache:  pebble.NewCache(opts.CacheBytes),
		// Large memtables: most of what is written (Raft log entries,
		// expiry index entries) is deleted again before it would be flushed.
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		LBaseMaxBytes:               256 << 20,
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	return po
}

// quietPebbleLogger sends Pebble's informational chatter to debug.
type quietPebbleLogger struct{ l *slog.Logger }

func (q quietPebbleLogger) Infof(format string, args ...any) {
	q.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (q quietPebbleLogger) Errorf(format string, args ...any) {
	q.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (q quietPebbleLogger) Fatalf(format string, args ...any) {
	q.l.Error("pebble: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
