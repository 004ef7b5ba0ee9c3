package actors

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/consul"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/remote"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/labstack/echo"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/batching"
	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/internal/gridpb/grains"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/screening"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Options configure the actor side of a node.
type Options struct {
	// ActorAddr is the Proto.Actor remote address. Default 127.0.0.1:7001.
	ActorAddr string
	// Provider is "automanaged" (default), "etcd" or "consul".
	Provider string
	// ConsulAddress is the Consul agent of the consul provider.
	ConsulAddress string
	// EtcdEndpoints and EtcdPrefix configure the etcd provider.
	EtcdEndpoints []string
	EtcdPrefix    string
	// ProviderPort is the automanaged membership provider's HTTP port
	// (it listens on all interfaces). Default 7002.
	ProviderPort int
	// ProviderHosts are the automanaged endpoints of every member, host:port.
	// Default: this node's own.
	ProviderHosts []string
	// GrainIdleTimeout passivates a SKU grain after this long without messages. Default 5m.
	GrainIdleTimeout time.Duration
	// OrderGrainIdleTimeout passivates an order grain likewise. Default 10s.
	OrderGrainIdleTimeout time.Duration
	// RequestTimeout bounds one grain call. Default 10s.
	RequestTimeout time.Duration
	// PendingTimeout is how long an unpaid order holds its stock. Default 15m.
	PendingTimeout time.Duration
	// OrphanGrace is added to PendingTimeout for the expiry of reservations
	// whose order was never recorded (a node died between the two). Default 1m.
	OrphanGrace time.Duration
	// SweepInterval is how often expired orders and orphan reservations are
	// swept and owed stock actions finished. Default 1s.
	SweepInterval time.Duration
	// ReconcileAfter is how old an owed stock action must be before the sweeper
	// finishes it for a grain that did not. Default 5s.
	ReconcileAfter time.Duration
	// StageLimits are the stuck-order alerts' stage limits, judged by the
	// sweeper on each partition's leader. nil: no alerts (cmd/ordergrid
	// passes config's alerts.stages, whose default is not empty).
	StageLimits []statemachine.StageLimit
	// ReserveBatchMax caps the reservations folded into one Raft entry. Default 4096.
	ReserveBatchMax int
	// Keyring holds the master keys that wrap subjects' data keys. nil:
	// orders with personal fields are refused.
	Keyring *privacy.Keyring
	// IdentityKey keys the hashes of delivery addresses and devices that
	// purchase limits count per and risk features read (the channels'
	// identity key, so a channel's fingerprints and these agree). nil:
	// limits per address or device hold the order (its buyer is unknown).
	IdentityKey []byte
	// HoldTimeout is how long an order held at intake waits for a
	// reviewer before it expires. Default 1h.
	HoldTimeout time.Duration
	// Screen judges the address and risk of each new order; nil: neither.
	Screen     *screening.Screener
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o *Options) withDefaults() {
	if o.ActorAddr == "" {
		o.ActorAddr = "127.0.0.1:7001"
	}
	if o.ProviderPort == 0 {
		o.ProviderPort = 7002
	}
	if o.GrainIdleTimeout <= 0 {
		o.GrainIdleTimeout = config.DefaultActorGrainIdleTimeout
	}
	if o.OrderGrainIdleTimeout <= 0 {
		o.OrderGrainIdleTimeout = config.DefaultActorOrderGrainIdleTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = config.DefaultActorRequestTimeout
	}
	if o.PendingTimeout <= 0 {
		o.PendingTimeout = config.DefaultOrdersPendingTimeout
	}
	if o.HoldTimeout <= 0 {
		o.HoldTimeout = config.DefaultHoldsTimeout
	}
	if o.OrphanGrace <= 0 {
		o.OrphanGrace = config.DefaultOrdersOrphanGrace
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = config.DefaultOrdersSweepInterval
	}
	if o.ReconcileAfter == 0 {
		o.ReconcileAfter = 5 * time.Second
	}
	if o.ReserveBatchMax == 0 {
		o.ReserveBatchMax = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Node is a member of the Proto.Actor cluster that hosts grains over the
// partitions of a cluster.Host.
type Node struct {
	opts    Options
	host    *cluster.Host
	system  *actor.ActorSystem
	cluster *actorcluster.Cluster
	metrics *metrics
	now     func() time.Time
	// parts places keys on partitions, and grains calls other grains: the
	// grains and the batches reach partitions and grains through them only.
	parts  partitionPlacement
	grains grainCalls
	routes routingState
	keys   subjectKeys
	// keyBatching stores new subjects' keys, batched per subject partition.
	keyBatching *batching.Coalescer[keyRequest, *gridpb.SubjectKeyRecord]
	// syncedBatching marks carried-out stock actions, batched per order partition.
	syncedBatching *batching.Coalescer[syncedMark, struct{}]
	// keyedHMAC pools HMACs keyed by Options.IdentityKey (screen.go).
	keyedHMAC sync.Pool

	stopOnce sync.Once
	stop     chan struct{}
	swept    sync.WaitGroup
}

// the generated grain kinds keep their factory in a package variable, so a
// process hosts one Node.
var startedNode struct {
	sync.Mutex
	started bool
}

// ErrNodeRunning is returned when a second Node is started in one process.
var ErrNodeRunning = errors.New("actors: a node already runs in this process")

// newNode is a node's grain side over parts, calling other grains through
// grains (nil: through the Proto.Actor cluster), before it joins a cluster.
func newNode(opts Options, parts partitionPlacement, grains grainCalls) *Node {
	opts.withDefaults()
	n := &Node{opts: opts, parts: parts, grains: grains, metrics: newMetrics(opts.Registerer), now: time.Now, stop: make(chan struct{})}
	if opts.Screen != nil {
		n.routes.configuredModel = opts.Screen.Model()
		n.routes.modelSum = sha256.Sum256(nil)
	}
	if n.grains == nil {
		n.grains = clusterGrainCalls{n}
	}
	n.keyBatching = n.newKeyBatching()
	n.syncedBatching = n.newSyncedBatching()
	return n
}

// Start joins the actor cluster and starts the sweeper. It returns once the
// cluster topology holds both grain kinds.
func Start(ctx context.Context, host *cluster.Host, opts Options) (*Node, error) {
	opts.withDefaults()
	startedNode.Lock()
	defer startedNode.Unlock()
	if startedNode.started {
		return nil, ErrNodeRunning
	}
	h, portStr, err := net.SplitHostPort(opts.ActorAddr)
	if err != nil {
		return nil, fmt.Errorf("actors: actor address %q: %w", opts.ActorAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("actors: actor port %q: %w", portStr, err)
	}
	if len(opts.ProviderHosts) == 0 {
		opts.ProviderHosts = []string{net.JoinHostPort(h, strconv.Itoa(opts.ProviderPort))}
	}
	n := newNode(opts, newHostPlacement(host), nil)
	n.host = host
	host.HandleLeaderCall(subjectOrdersCall, serveSubjectOrders)
	logger := opts.Logger.With(slog.String("component", "actor"))
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(levelFloor{h: logger.Handler(), min: slog.LevelWarn})
	}))
	skuKind := grains.NewSkuGrainKind(func() grains.SkuGrain { return &skuGrain{node: n} }, opts.GrainIdleTimeout)
	orderKind := grains.NewOrderGrainKind(func() grains.OrderGrain { return &orderGrain{node: n} }, opts.OrderGrainIdleTimeout)
	subjectKind := grains.NewSubjectGrainKind(func() grains.SubjectGrain { return &subjectGrain{node: n} }, opts.OrderGrainIdleTimeout)
	var provider actorcluster.ClusterProvider
	switch opts.Provider {
	case "", "automanaged":
		p, err := automanagedProvider(h, port, opts.ProviderPort, n.system, []string{skuKind.Kind, orderKind.Kind, subjectKind.Kind}, opts.ProviderHosts)
		if err != nil {
			return nil, err
		}
		provider = p
	case "etcd":
		p, err := etcd.NewWithConfig(opts.EtcdPrefix, clientv3.Config{Endpoints: opts.EtcdEndpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("actors: etcd provider: %w", err)
		}
		provider = p
	case "consul":
		p, err := consul.NewWithConfig(&consulapi.Config{Address: opts.ConsulAddress})
		if err != nil {
			return nil, fmt.Errorf("actors: consul provider: %w", err)
		}
		provider = p
	default:
		return nil, fmt.Errorf("actors: unknown membership provider %q", opts.Provider)
	}
	cfg := actorcluster.Configure(clusterName, provider, newPlacement(n), remote.Configure(h, port),
		actorcluster.WithKinds(skuKind, orderKind, subjectKind), actorcluster.WithRequestTimeout(opts.RequestTimeout))
	n.cluster = actorcluster.New(n.system, cfg)
	n.cluster.StartMember()
	n.metrics.watchActive(opts.Registerer, n.cluster)
	n.metrics.watchAlerts(opts.Registerer, host)
	startedNode.started = true
	for !n.TopologyReady() {
		select {
		case <-ctx.Done():
			n.Stop()
			return nil, fmt.Errorf("actors: topology never held the grain kinds: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	n.swept.Add(2)
	go sweeper{n: n}.loop()
	go n.routingLoop()
	return n, nil
}

// TopologyReady reports whether the cluster topology holds both grain kinds.
func (n *Node) TopologyReady() bool {
	ml := n.cluster.MemberList
	return ml.GetActivatorMember("SkuGrain", "") != "" && ml.GetActivatorMember("OrderGrain", "") != "" &&
		ml.GetActivatorMember("SubjectGrain", "") != ""
}

// Stop leaves the cluster and stops the sweeper.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		close(n.stop)
		n.swept.Wait()
		n.cluster.Shutdown(true)
		startedNode.Lock()
		startedNode.started = false
		startedNode.Unlock()
	})
}

func (n *Node) skuPartition(sku string) *partitionRef { return n.parts.partitionOf(SkuKey(sku)) }

func (n *Node) orderPartition(id string) *partitionRef { return n.parts.partitionOf(OrderKey(id)) }

func (n *Node) subjectPartition(id string) *partitionRef {
	return n.parts.partitionOf(SubjectKey(id))
}

// batchPrincipal is the command principal of an entry that folds several
// callers' items (reservations, settles, orders, transitions), each of
// which carries its own principal: the state machine records every item's
// event under the item's principal, and the command's principal is only
// the fallback for an item that carries none. So it is the callers' one
// principal when they all share it, and "" when they differ: a fallback
// must never name one caller for another's item.
func batchPrincipal[T any](items []T, principal func(T) string) string {
	if len(items) == 0 {
		return ""
	}
	first := principal(items[0])
	for _, it := range items[1:] {
		if principal(it) != first {
			return ""
		}
	}
	return first
}

// propose marshals cmd with the proposer's time and principal and replicates it.
func (n *Node) propose(ctx context.Context, p partition, principal string, cmd *gridpb.Command) (*statemachine.Result, error) {
	cmd.AtUnixNano = n.now().UnixNano()
	cmd.Principal = principal
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("actors: marshal command: %w", err)
	}
	resp, err := p.Propose(ctx, data)
	if errors.Is(err, cluster.ErrCommandTooLarge) {
		return nil, failure.MarkTooLarge(err) // crosses grain calls as TooLarge
	}
	if err != nil {
		return nil, err
	}
	res := &statemachine.Result{}
	if err := proto.Unmarshal(resp, res); err != nil {
		return nil, fmt.Errorf("actors: partition result: %w", err)
	}
	return res, nil
}

// reader reads a partition's state on its leader, each read bounded by the
// request timeout.
func (n *Node) reader(p partition) statemachine.Reader {
	return partitionReader{p: p, timeout: n.opts.RequestTimeout}
}

type partitionReader struct {
	p       partition
	timeout time.Duration
}

func (r partitionReader) Get(key []byte) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	return r.p.Get(ctx, key)
}

func (r partitionReader) Scan(lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	return r.p.Scan(ctx, lo, hi, limit, fn)
}

func (n *Node) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), n.opts.RequestTimeout)
}

// skuClient returns the client of sku's grain.
func (n *Node) skuClient(sku string) *grains.SkuGrainGrainClient {
	return grains.GetSkuGrainGrainClient(n.cluster, sku)
}

// subjectClient returns the client of a data subject's grain.
func (n *Node) subjectClient(id string) *grains.SubjectGrainGrainClient {
	return grains.GetSubjectGrainGrainClient(n.cluster, id)
}

// orderClient returns the client of an order's grain.
func (n *Node) orderClient(id string) *grains.OrderGrainGrainClient {
	return grains.GetOrderGrainGrainClient(n.cluster, id)
}

// callOptions are the options of a grain call from outside the cluster.
func (n *Node) callOptions() []actorcluster.GrainCallOption {
	return []actorcluster.GrainCallOption{actorcluster.WithTimeout(n.opts.RequestTimeout), actorcluster.WithRetryCount(3)}
}

// automanagedProvider is the automanaged membership provider with its
// health endpoint listening on the actor address's host, not on every
// interface as the library's own does (a loopback node stays on loopback),
// and without the web framework's start banner.
func automanagedProvider(host string, actorPort, providerPort int, system *actor.ActorSystem, kinds, peers []string) (*automanaged.AutoManagedProvider, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(providerPort)))
	if err != nil {
		return nil, fmt.Errorf("actors: membership provider: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Listener = ln                                // the provider's Start serves it rather than listening on 0.0.0.0
	e.GET("/_health", func(c echo.Context) error { // what the library's own endpoint answers
		return c.JSON(http.StatusOK, automanaged.NewNode(clusterName, system.ID, host, actorPort, providerPort, kinds))
	})
	return automanaged.NewWithTesting(2*time.Second, providerPort, e, peers...), nil
}

// clusterName names the Proto.Actor cluster.
const clusterName = "ordergrid"

// levelFloor drops Proto.Actor's records below min (it logs every request
// at info), and the ERROR its automanaged provider logs on every clean stop.
type levelFloor struct {
	h   slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}

func (l levelFloor) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == automanagedStopped && cleanStop(r) {
		return nil
	}
	return l.h.Handle(ctx, r)
}

// automanagedStopped is the message the automanaged provider logs, at
// ERROR, whenever its health endpoint stops, a clean stop included.
const automanagedStopped = "Automanaged server stopping..!"

// cleanStop reports whether r's error is the HTTP server's clean close.
func cleanStop(r slog.Record) bool {
	clean := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, http.ErrServerClosed) {
			clean = true
		}
		return !clean
	})
	return clean
}
func (l levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h: l.h.WithAttrs(a), min: l.min}
}
func (l levelFloor) WithGroup(g string) slog.Handler {
	return levelFloor{h: l.h.WithGroup(g), min: l.min}
}

// ReadOrder reads an order's record from its partition.
func (n *Node) ReadOrder(id string) (*gridpb.OrderRecord, bool, error) {
	p := n.orderPartition(id)
	return statemachine.ReadOrder(n.reader(p), p.Prefix, id)
}

// SubjectOrderIDs returns the ids of a data subject's orders (every
// partition's index, and an erased subject's tombstone); found is false for a
// subject ordergrid has never seen.
func (n *Node) SubjectOrderIDs(subject string) (ids []string, found bool, err error) {
	sp := n.subjectPartition(subject)
	ts, erased, err := statemachine.ReadTombstone(n.reader(sp), sp.Prefix, subject)
	if err != nil {
		return nil, false, err
	}
	_, hasKey, err := statemachine.ReadSubjectKey(n.reader(sp), sp.Prefix, subject)
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{}
	for _, id := range ts.GetOrderIds() {
		seen[id] = true
	}
	for _, p := range n.host.Partitions() {
		got, err := n.subjectOrders(p, subject)
		if err != nil {
			return nil, false, err
		}
		for _, id := range got {
			seen[id] = true
		}
	}
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, erased || hasKey || len(ids) > 0, nil
}

// OrderEvents returns an order's events from its partition.
func (n *Node) OrderEvents(id string) ([]*gridpb.EventRecord, error) {
	p := n.orderPartition(id)
	return statemachine.ReadEvents(n.reader(p), p.Prefix, id)
}

// SkuEventsMax bounds the stock events one read returns.
const SkuEventsMax = 10_000

// SkuEvents returns a SKU's stock events from its partition, oldest first.
func (n *Node) SkuEvents(sku string) ([]*gridpb.EventRecord, error) {
	p := n.skuPartition(sku)
	return statemachine.ReadStockEvents(n.reader(p), p.Prefix, sku, SkuEventsMax)
}
