package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
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
	// Peers are every voter of a new cluster, this node included, as
	// id=raft-address. Every node of a new cluster is started with the same
	// list and bootstraps every partition with all of them as voters. Empty:
	// a single node. A node not in the list joins later, added by an admin
	// call on a member.
	Peers []Peer
	// Meta is published in this node's status to its peers (the actor
	// layer puts its address there).
	Meta map[string]string
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
	// WALMinSyncInterval is the least time between two fsyncs of the
	// write-ahead log that every group's log and state share: syncs asked
	// for sooner are done as one (Pebble's WALMinSyncInterval). 0: none.
	WALMinSyncInterval time.Duration
	// Logger receives the host's and Raft's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the Prometheus metrics. nil: not registered.
	Registerer prometheus.Registerer
	// Network is where the host listens for its peers (on RaftAddr) and
	// how it reaches them, for Raft and for the internal RPC. Default: TCP
	// (TCPNetwork). Tests put hosts on an in-memory network they can cut
	// (package cluster/clustertest).
	Network Network
	// Groups are Raft groups beside the partitions, each with its own state
	// machine and one key range, replicated on the same voters (the ledger's
	// sequencer is one). Keys are never hashed onto them. Their ids follow
	// the partitions' in the order given; the list is fixed for the life of
	// the data directory, like Partitions.
	Groups []Group
}

// Group is a named Raft group beside the partitions.
type Group struct {
	Name    string
	Machine StateMachineFactory
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
	if o.Network == nil {
		o.Network = TCPNetwork{}
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

// Peer is one voter of a cluster.
type Peer struct {
	ID       string
	RaftAddr string
}

// leaderBalanceInterval is how often a node hands partitions it leads to
// their preferred leader.
const leaderBalanceInterval = 3 * time.Second

// Host is one node's set of partitions over one Pebble database.
type Host struct {
	opts Options
	db   *pebble.DB
	mux  *Mux
	rpc  *grpc.Server
	// partitions holds every group: the hashed partitions first, then
	// opts.Groups.
	partitions []*Partition
	metrics    *Metrics

	clientsMu sync.Mutex
	clients   map[string]clusterpb.PartitionServiceClient
	conns     []*grpc.ClientConn

	// leaderCalls are the domain's handlers of LeaderCall, by method.
	leaderCalls sync.Map // string -> LeaderHandler

	stop     chan struct{}
	stopOnce sync.Once
	loops    sync.WaitGroup

	// purging counts the purges running; closing (under purgingMu) starts
	// no more.
	purgingMu sync.Mutex
	closing   bool
	purging   sync.WaitGroup
}

// Open opens (or creates) the node's database and starts its partitions,
// bootstrapping each as a single-voter group on first start.
func Open(opts Options, newSM StateMachineFactory) (*Host, error) {
	opts.withDefaults()
	if opts.DataDir == "" {
		return nil, errors.New("cluster: DataDir is required")
	}
	if err := opts.validatePeers(); err != nil {
		return nil, err
	}
	if opts.Partitions < 1 || opts.Partitions+len(opts.Groups) > PartitionsMax {
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
	h := &Host{opts: opts, db: db, metrics: newMetrics(opts.Registerer),
		clients: make(map[string]clusterpb.PartitionServiceClient), stop: make(chan struct{})}
	if err := h.checkPartitionCount(); err != nil {
		db.Close()
		return nil, err
	}
	registerPebble(opts.Registerer, db)
	ln, err := opts.Network.Listen(opts.RaftAddr)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cluster: listen %s: %w", opts.RaftAddr, err)
	}
	h.mux = ServeMux(ln, opts.Logger)
	h.mux.Dial = opts.Network.Dial
	for i := 0; i < opts.Partitions; i++ {
		p, err := h.startPartition(uint32(i), newSM)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.partitions = append(h.partitions, p)
	}
	for i, g := range opts.Groups {
		p, err := h.startPartition(uint32(opts.Partitions+i), g.Machine)
		if err != nil {
			h.Close()
			return nil, err
		}
		p.Name = g.Name
		h.partitions = append(h.partitions, p)
	}
	rpcLayer, err := h.mux.Layer(rpcGroup)
	if err != nil {
		h.Close()
		return nil, err
	}
	h.rpc = grpc.NewServer(grpc.MaxRecvMsgSize(logEntryBytesMax))
	clusterpb.RegisterPartitionServiceServer(h.rpc, &rpcServer{h: h})
	// Open returns once Serve is accepting: it reads gRPC's global logger as
	// it starts, and the actor library, started next, replaces that logger
	// (an unordered write and read otherwise, which the race detector sees).
	serving := &acceptingListener{Listener: rpcLayer, accepting: make(chan struct{})}
	go func() { _ = h.rpc.Serve(serving) }()
	select {
	case <-serving.accepting:
	case <-time.After(5 * time.Second):
	}
	if len(opts.Peers) > 1 {
		h.loops.Add(1)
		go h.balanceLoop()
	}
	return h, nil
}

func (o *Options) validatePeers() error {
	seen := map[string]bool{}
	for _, p := range o.Peers {
		if p.ID == "" || p.RaftAddr == "" {
			return fmt.Errorf("cluster: peer %q=%q needs an id and a raft address", p.ID, p.RaftAddr)
		}
		if seen[p.ID] {
			return fmt.Errorf("cluster: peer %s listed twice", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// bootstrapServers is the configuration a new partition starts with, or nil
// when this node is to join an existing cluster instead.
func (h *Host) bootstrapServers() []raft.Server {
	if len(h.opts.Peers) == 0 {
		return []raft.Server{{ID: raft.ServerID(h.opts.NodeID), Address: raft.ServerAddress(h.opts.RaftAddr)}}
	}
	var out []raft.Server
	self := false
	for _, p := range h.opts.Peers {
		self = self || p.ID == h.opts.NodeID
		out = append(out, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	if !self {
		return nil
	}
	return out
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
	f, err := newFSM(h.db, id, prefix, newSM(id, prefix))
	if err != nil {
		return nil, err
	}
	interrupted, err := f.interruptedRestore()
	if err != nil {
		return nil, err
	}
	f.onApply = h.metrics.observeApply
	store := NewRaftStore(h.db, id)
	snapDir := h.snapshotDir(id)
	hlog := hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("raft.p%d", id), Level: hclog.Warn,
		Output: raftLogWriter{h.opts.Logger}, DisableTime: true, Exclude: firstElection})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(snapDir, snapshotsRetained, hlog)
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot store %d: %w", id, err)
	}
	layer, err := h.mux.Layer(id)
	if err != nil {
		return nil, err
	}
	// MaxRPCsInFlight 1 turns off pipelined replication. hashicorp/raft
	// v1.8.0's pipeline deadlocks when a follower answers an append with
	// Success=false (its log diverged, or a newer term) while the leader
	// sends the next one: the decoder has returned, the transport's
	// response goroutine blocks on its unread done channel, the sender on
	// its in-progress channel, and the pipeline's deferred Close never
	// runs. The leader then never replicates to that follower again (its
	// heartbeats go on, so no election repairs it) and Raft's Shutdown
	// never returns. TestSimulation met it after a link held a follower's
	// answers for a few seconds. Unpipelined, each follower still gets up
	// to MaxAppendEntries entries per round trip.
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, MaxRPCsInFlight: 1, Timeout: 10 * time.Second, Logger: hlog,
	})
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(h.opts.NodeID)
	cfg.HeartbeatTimeout = h.opts.HeartbeatTimeout
	cfg.ElectionTimeout = h.opts.ElectionTimeout
	cfg.LeaderLeaseTimeout = h.opts.HeartbeatTimeout / 2
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.MaxAppendEntries = 256
	cfg.BatchApplyCh = true
	cfg.SnapshotThreshold = h.opts.SnapshotThreshold
	cfg.SnapshotInterval = 30 * time.Second
	cfg.TrailingLogs = 4096
	// State lives in Pebble with its applied index: no restore on start,
	// unless a restore was cut short (then the state is partial).
	cfg.NoSnapshotRestoreOnStart = !interrupted
	if interrupted {
		h.opts.Logger.Warn("partition state: a snapshot restore was interrupted; restoring it again", slog.Uint64("partition", uint64(id)))
	}
	cfg.Logger = hlog
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: partition %d state: %w", id, err)
	}
	if servers := h.bootstrapServers(); !existing && servers != nil {
		conf := raft.Configuration{Servers: servers}
		if err := raft.BootstrapCluster(cfg, store, store, snaps, trans, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap partition %d: %w", id, err)
		}
	}
	r, err := raft.NewRaft(cfg, f, store, store, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start partition %d: %w", id, err)
	}
	p := &Partition{ID: id, Prefix: prefix, host: h, raft: r, fsm: f, metrics: h.metrics}
	// Not on the FSM's goroutine: a snapshot needs it.
	f.setPurge(func() { h.startPurge(p, 0) })
	if _, closer, err := h.db.Get(f.purgeKey); err == nil {
		closer.Close()
		h.opts.Logger.Warn("a purge after an erasure was owed when the node stopped; purging once the log is replayed", slog.Uint64("partition", uint64(id)))
		h.startPurge(p, r.LastIndex())
	}
	return p, nil
}

// purgeAttemptsMax bounds the attempts of one purge; the first waits
// nothing, each next one twice as long as the one before, from 1 s.
const purgeAttemptsMax = 6

// purgeMarkerKey is set, in the batch that applies an erasure, while the
// partition owes a purge.
func purgeMarkerKey(id uint32) []byte { return binary.BigEndian.AppendUint32([]byte("m/purge/"), id) }

// startPurge purges p on a goroutine of its own once p has applied its log
// up to index (0 at once; at start, the log it held, since a snapshot taken
// before cannot cover, and so cannot delete, entries not applied yet),
// unless the host is closing (the marker makes the next start purge).
func (h *Host) startPurge(p *Partition, index uint64) {
	h.purgingMu.Lock()
	defer h.purgingMu.Unlock()
	if h.closing {
		return
	}
	h.purging.Add(1)
	go func() {
		defer h.purging.Done()
		for p.raft.AppliedIndex() < index {
			select {
			case <-h.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		h.purgeWithRetries(p)
	}()
}

// purgeWithRetries purges p, retrying a failure with backoff until it
// succeeds, the attempts run out (the next erasure purges again) or the host
// stops.
func (h *Host) purgeWithRetries(p *Partition) {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		err := p.Purge()
		if err == nil {
			h.metrics.purges.WithLabelValues("ok").Inc()
			return
		}
		h.metrics.purges.WithLabelValues("failed").Inc()
		if attempt == purgeAttemptsMax {
			h.opts.Logger.Error("purge after an erasure failed; erased data may still be in the partition's files until the next erasure purges again",
				slog.Uint64("partition", uint64(p.ID)), slog.Int("attempts", attempt), slog.Any("error", err))
			return
		}
		h.opts.Logger.Warn("purge after an erasure failed; retrying", slog.Uint64("partition", uint64(p.ID)),
			slog.Duration("backoff", backoff), slog.Any("error", err))
		select {
		case <-h.stop:
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// firstElection excludes the warning Raft logs when a group that never had
// a leader holds its first election: every partition at every start.
func firstElection(_ hclog.Level, msg string, args ...any) bool {
	if msg != "heartbeat timeout reached, starting election" {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "last-leader-id" {
			return fmt.Sprint(args[i+1]) == ""
		}
	}
	return false
}

// raftLogWriter sends Raft's log lines ("[WARN]  raft.p3: message: k=v")
// to the node's logger at their level, so they look like the node's own.
type raftLogWriter struct{ l *slog.Logger }

func (w raftLogWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	level := slog.LevelWarn
	for tag, lv := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug} {
		if rest, ok := strings.CutPrefix(line, tag); ok {
			level, line = lv, strings.TrimSpace(rest)
			break
		}
	}
	w.l.Log(context.Background(), level, line, slog.String("component", "raft"))
	return len(b), nil
}

// acceptingListener closes accepting when Accept is first called.
type acceptingListener struct {
	net.Listener
	once      sync.Once
	accepting chan struct{}
}

func (l *acceptingListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.accepting) })
	return l.Listener.Accept()
}

// NodeID is this node's id in Raft configurations.
func (h *Host) NodeID() string { return h.opts.NodeID }

// DB is the node's database, for reads of partition state.
func (h *Host) DB() *pebble.DB { return h.db }

// Partitions returns every partition keys hash onto, by id.
func (h *Host) Partitions() []*Partition { return h.partitions[:h.opts.Partitions] }

// Group returns the group named name in Options.Groups, or nil.
func (h *Host) Group(name string) *Partition {
	for _, p := range h.partitions[h.opts.Partitions:] {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// PartitionOf returns the partition that owns key.
func (h *Host) PartitionOf(key string) *Partition {
	return h.partitions[PartitionIndex(key, h.opts.Partitions)]
}

// PartitionIndex is hash(key) mod n, the placement rule of every key.
func PartitionIndex(key string, n int) int {
	f := fnv.New32a()
	_, _ = io.WriteString(f, key)
	return int(f.Sum32() % uint32(n))
}

// WaitReady waits until every partition has a leader and this replica has
// applied everything its leader had committed when asked: a node that was
// down catches up (from the log or a snapshot) before it serves.
func (h *Host) WaitReady(ctx context.Context) error {
	for _, p := range h.partitions {
		for !p.HasLeader() {
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return fmt.Errorf("partition %d has no leader: %w", p.ID, ctx.Err())
			}
		}
		if err := h.catchUp(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (h *Host) catchUp(ctx context.Context, p *Partition) error {
	for {
		if p.IsLeader() {
			// A barrier refused because leadership is moving (the
			// balancer hands the partition on) waits for the next leader.
			err := p.Barrier(ctx)
			if err == nil || !leadershipMoving(err) {
				return err
			}
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return err
			}
			continue
		}
		target, err := h.leaderCommitIndex(ctx, p)
		if err == nil {
			for p.raft.AppliedIndex() < target {
				if !sleepCtx(ctx, 20*time.Millisecond) {
					return fmt.Errorf("partition %d: applied %d of %d: %w", p.ID, p.raft.AppliedIndex(), target, ctx.Err())
				}
			}
			return nil
		}
		if p.IsLeader() {
			continue
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return fmt.Errorf("partition %d: leader's commit index: %w", p.ID, err)
		}
	}
}

// leadershipMoving reports whether err says this replica's leadership is
// being handed on or was lost: a caller asks the next leader.
func leadershipMoving(err error) bool {
	return errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrNotLeader)
}

func (h *Host) leaderCommitIndex(ctx context.Context, p *Partition) (uint64, error) {
	client, err := p.leaderClient(ctx)
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := client.Status(cctx, &clusterpb.StatusRequest{})
	if err != nil {
		return 0, fromStatus(err)
	}
	for _, ps := range st.Partitions {
		if ps.Id == p.ID && ps.State == raft.Leader.String() {
			return ps.CommitIndex, nil
		}
	}
	return 0, fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader)
}

// ClusterStatus is every reachable node's view of its partitions, this
// node's first. Unreachable peers are listed with an error.
func (h *Host) ClusterStatus(ctx context.Context, withHash bool) ([]*clusterpb.StatusResponse, map[string]error) {
	out := []*clusterpb.StatusResponse{h.LocalStatus(withHash)}
	errs := map[string]error{}
	for _, peer := range h.Members() {
		if peer.ID == h.opts.NodeID {
			continue
		}
		c, err := h.peerClient(peer.RaftAddr)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var st *clusterpb.StatusResponse
			st, err = c.Status(cctx, &clusterpb.StatusRequest{WithStateHash: withHash})
			cancel()
			if err == nil {
				out = append(out, st)
				continue
			}
		}
		errs[peer.ID] = err
	}
	return out, errs
}

// Members are the voters of the cluster, as partition 0's configuration has them.
func (h *Host) Members() []Peer {
	f := h.partitions[0].raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []Peer
	for _, s := range f.Configuration().Servers {
		out = append(out, Peer{ID: string(s.ID), RaftAddr: string(s.Address)})
	}
	return out
}

// AddVoter adds a node as a voter of every partition; RemoveServer removes
// one. Each change runs on the partition's leader, wherever it is.
func (h *Host) AddVoter(ctx context.Context, id, raftAddr string) error {
	return h.membership(ctx, "add_voter", id, raftAddr)
}

// RemoveServer removes a node from every partition.
func (h *Host) RemoveServer(ctx context.Context, id string) error {
	return h.membership(ctx, "remove_server", id, "")
}

func (h *Host) membership(ctx context.Context, op, id, addr string) error {
	for _, p := range h.partitions {
		var err error
		for attempt := 0; attempt < forwardAttemptsMax; attempt++ {
			if p.IsLeader() {
				err = p.changeMembership(op, id, addr)
			} else {
				var c clusterpb.PartitionServiceClient
				if c, err = p.leaderClient(ctx); err == nil {
					_, err = c.Membership(ctx, &clusterpb.MembershipRequest{Partition: p.ID, Op: op, NodeId: id, RaftAddr: addr})
					err = fromStatus(err)
				}
			}
			if err == nil || (!errors.Is(err, ErrNotLeader) && !errors.Is(err, errUnreachable)) {
				break
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("partition %d: %s %s: %w", p.ID, op, id, err)
		}
	}
	return nil
}

// balanceLoop hands each partition this node leads to its preferred leader
// (voters sorted by id, partition i to voter i mod n), so leaders spread
// over the nodes and come back after a node returns.
func (h *Host) balanceLoop() {
	defer h.loops.Done()
	t := time.NewTicker(leaderBalanceInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		for _, p := range h.partitions {
			if !p.IsLeader() {
				continue
			}
			f := p.raft.GetConfiguration()
			if f.Error() != nil {
				continue
			}
			var voters []raft.Server
			for _, s := range f.Configuration().Servers {
				if s.Suffrage == raft.Voter {
					voters = append(voters, s)
				}
			}
			if len(voters) < 2 {
				continue
			}
			sort.Slice(voters, func(i, j int) bool { return voters[i].ID < voters[j].ID })
			want := voters[int(p.ID)%len(voters)]
			if want.ID == raft.ServerID(h.opts.NodeID) || !h.caughtUp(p, want) {
				continue
			}
			h.metrics.transfers.Inc()
			_ = p.raft.LeadershipTransferToServer(want.ID, want.Address).Error()
		}
	}
}

// caughtUp reports whether a follower is reachable and has applied close to
// everything the leader committed, so a transfer to it is quick.
func (h *Host) caughtUp(p *Partition, s raft.Server) bool {
	c, err := h.peerClient(string(s.Address))
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.Status(ctx, &clusterpb.StatusRequest{})
	if err != nil {
		return false
	}
	for _, ps := range st.Partitions {
		if ps.Id == p.ID {
			return ps.AppliedIndex+64 >= p.raft.CommitIndex()
		}
	}
	return false
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
	h.stopOnce.Do(func() { close(h.stop) })
	h.loops.Wait()
	h.purgingMu.Lock()
	h.closing = true
	h.purgingMu.Unlock()
	h.purging.Wait()
	if h.rpc != nil {
		h.rpc.Stop()
	}
	for _, c := range h.conns {
		c.Close()
	}
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
		// Obsolete files are deleted, never kept for reuse: a recycled WAL
		// keeps the bytes of the log it was past its new end, and an erased
		// subject's wrapped key must leave every file (see Purge).
		Cleaner: newDeletingCleaner(),
	}
	if d := opts.WALMinSyncInterval; d > 0 {
		po.WALMinSyncInterval = func() time.Duration { return d }
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	return po
}

// deletingCleaner deletes Pebble's obsolete files at once and turns off the
// recycling of write-ahead-log files: a recycled WAL is overwritten from its
// start and keeps the records of the log it was past the new log's end, so an
// erased subject's wrapped key could outlive the purge there (see Purge).
//
// Pebble stops recycling when its cleaner needs the files' contents, which
// it learns from an unexported marker method that only its ArchiveCleaner
// has. The marker is promoted from an ArchiveCleaner embedded one level
// deeper than the Cleaner that does the work, so Clean is DeleteCleaner's.
type deletingCleaner struct {
	pebble.Cleaner
	wantsFileContents
}

type wantsFileContents struct{ pebble.ArchiveCleaner }

func newDeletingCleaner() deletingCleaner {
	return deletingCleaner{Cleaner: pebble.DeleteCleaner{}}
}

func (deletingCleaner) String() string { return "delete, no WAL recycling" }

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
