// Command ordergrid runs an ordergrid node.
//
//	ordergrid serve [--config FILE] [--data-dir DIR] [--http-addr HOST:PORT] [--grpc-addr HOST:PORT] ...
//
// Every setting of package config is a flag; `ordergrid serve -h` lists them.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/bench/harness"
	"github.com/ordergrid/ordergrid/catalog"
	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/gateway"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/ledger"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/retention"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/statemachine"
	"github.com/ordergrid/ordergrid/stream"
	"github.com/ordergrid/ordergrid/tracking"
	"github.com/ordergrid/ordergrid/webhooks"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "verify":
		os.Exit(runVerify(os.Args[2:], os.Stdout, os.Stderr))
	case "ledger":
		os.Exit(runLedger(os.Args[2:], os.Stdout, os.Stderr))
	case "bench":
		os.Exit(harness.Main(os.Args[2:], os.Stdout, os.Stderr))
	case "token":
		os.Exit(runToken(os.Args[2:], os.Stdout, os.Stderr))
	case "archive":
		os.Exit(runArchive(os.Args[2:], os.Stdout, os.Stderr))
	case "routing":
		os.Exit(runRouting(os.Args[2:], os.Stdout, os.Stderr))
	case "audit":
		os.Exit(runAudit(os.Args[2:], os.Stdout, os.Stderr))
	case "privacy":
		os.Exit(runPrivacy(os.Args[2:], os.Stdout, os.Stderr))
	case "risk":
		os.Exit(runRisk(os.Args[2:], os.Stdout, os.Stderr))
	case "serve":
		cfg, err := config.Load(os.Args[2:], os.Environ())
		if err != nil {
			fmt.Fprintln(os.Stderr, "ordergrid: configuration:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "ordergrid:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "ordergrid: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

const usage = `usage:
  ordergrid serve [flags]                 run a node (ordergrid serve -h lists the flags)
  ordergrid verify BUNDLE --key KEY ...   check an order's proof bundle offline
  ordergrid ledger keygen --origin NAME --out FILE   make a log signing key
  ordergrid token new --name N --role R [--channels a,b] [--expires D]   make an API token
  ordergrid privacy keygen --id ID        make a master key line (personal data)
  ordergrid audit export --node URL --out FILE [filters]   stream the audit trail with proofs
  ordergrid archive verify|restore FILE ...   check or restore a retention archive
  ordergrid routing simulate|synth ...    try routing strategies on orders; make synthetic orders
  ordergrid risk synth|train|eval|explain ...   fraud/abuse risk model: synthetic data, train, evaluate, explain a score
  ordergrid bench [flags]                 load scenarios, audit, report (ordergrid bench -h)`

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// startupTimeout bounds how long a node may take to become ready.
const startupTimeout = 60 * time.Second

// shutdownMax bounds a clean shutdown after SIGTERM; past it the node exits.
const shutdownMax = 20 * time.Second

// gcPercentDefault trades memory for CPU: the hot path allocates per order
// and the heap is small next to the machine. GOGC in the environment wins.
const gcPercentDefault = 400

func serve(ctx context.Context, cfg config.Config) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercentDefault)
	}
	logger := newLogger(cfg.Log)
	slog.SetDefault(logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Listen first: a port in use fails fast, before any data is touched.
	httpLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	var grpcLn net.Listener
	if cfg.GRPC.Addr != "" {
		if grpcLn, err = net.Listen("tcp", cfg.GRPC.Addr); err != nil {
			return fmt.Errorf("grpc listen: %w", err)
		}
	}

	if err := chooseFreePorts(&cfg); err != nil {
		return err
	}
	// Tokens before any data: a bad tokens file fails at once.
	tokens, err := loadTokens(cfg, logger, os.Stdout)
	if err != nil {
		return err
	}
	keyring, err := loadKeyring(cfg, logger, os.Stderr)
	if err != nil {
		return err
	}
	channelConfig, identityKey, err := loadChannels(cfg, keyring)
	if err != nil {
		return err
	}
	screener, err := newScreener(cfg.Holds)
	if err != nil {
		return err
	}
	var seedWarehouses []*routing.Warehouse
	if cfg.Routing.WarehousesFile != "" {
		if seedWarehouses, err = loadWarehousesFile(cfg.Routing.WarehousesFile); err != nil {
			return err
		}
	}
	start := time.Now()
	logger.Info("opening partitions", slog.String("data_dir", cfg.DataDir), slog.Int("partitions", cfg.Raft.Partitions))
	var peers []cluster.Peer
	for _, p := range cfg.Raft.Peers {
		id, addr, _ := strings.Cut(p, "=")
		peers = append(peers, cluster.Peer{ID: id, RaftAddr: addr})
	}
	hooks := &statemachine.Hooks{}
	host, err := cluster.Open(cluster.Options{
		DataDir: cfg.DataDir, NodeID: cfg.NodeID, RaftAddr: cfg.Raft.Addr, Partitions: cfg.Raft.Partitions, Peers: peers,
		HeartbeatTimeout: cfg.Raft.HeartbeatTimeout, ElectionTimeout: cfg.Raft.ElectionTimeout,
		SnapshotThreshold: cfg.Raft.SnapshotThreshold, WALMinSyncInterval: cfg.Raft.WALMinSyncInterval, Logger: logger, Registerer: reg,
		Meta:   map[string]string{actors.MetaActorAddr: cfg.Actor.Addr},
		Groups: []cluster.Group{{Name: ledger.GroupName, Machine: ledger.NewMachine}},
	}, statemachine.WithHooks(hooks))
	if err != nil {
		return err
	}
	defer host.Close()
	readyCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	if err := host.WaitReady(readyCtx); err != nil {
		return err
	}
	logger.Info("partitions ready", slog.Duration("took", time.Since(start)))

	seq, err := startLedger(ctx, cfg.Ledger, host, logger, reg)
	if err != nil {
		return err
	}
	anchoring, err := startAnchoring(ctx, cfg.Ledger, seq, logger, reg)
	if err != nil {
		return err
	}

	node, err := actors.Start(readyCtx, host, actors.Options{
		ActorAddr: cfg.Actor.Addr, ProviderPort: cfg.Actor.ProviderPort, ProviderHosts: cfg.Actor.ProviderHosts,
		Provider: cfg.Actor.Provider, EtcdEndpoints: cfg.Actor.EtcdEndpoints, EtcdPrefix: cfg.Actor.EtcdPrefix,
		ConsulAddress:    cfg.Actor.ConsulAddress,
		GrainIdleTimeout: cfg.Actor.GrainIdleTimeout, OrderGrainIdleTimeout: cfg.Actor.OrderGrainIdleTimeout,
		RequestTimeout: cfg.Actor.RequestTimeout, Keyring: keyring,
		PendingTimeout: cfg.Orders.PendingTimeout, OrphanGrace: cfg.Orders.OrphanGrace, SweepInterval: cfg.Orders.SweepInterval,
		StageLimits: stageLimits(cfg.Alerts), Logger: logger, Registerer: reg,
		IdentityKey: identityKey, HoldTimeout: cfg.Holds.Timeout, Screen: screener,
	})
	if err != nil {
		return err
	}
	defer node.Stop()
	archiving, err := retention.New(retentionGrid{node}, seq.Log(), retention.Options{Retention: cfg.Orders.Retention,
		Dir: cmp.Or(cfg.Orders.ArchiveDir, filepath.Join(cfg.DataDir, "archive")), Interval: cfg.Orders.SweepInterval,
		Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	stopArchiving := archiving.Start(ctx)
	defer stopArchiving()
	hooks.OnErased(node.ForgetSubjectKey)
	routes := catalog.NewAdmin(node, logger)
	if len(seedWarehouses) > 0 {
		added, err := routes.SeedWarehouses(readyCtx, seedWarehouses)
		if err != nil {
			return fmt.Errorf("routing.warehouses_file: %w", err)
		}
		logger.Info("warehouses from the configuration", slog.Int("added", added), slog.Int("known", len(seedWarehouses)-added))
	}

	var serving atomic.Bool
	orders := intake.New(node, intake.Options{PartitionOf: node.OrderPartition, Registerer: reg, CoalesceOnLeader: cfg.Intake.CoalesceOnLeader})
	clients, err := newPlatformClients(channelConfig, logger, reg)
	if err != nil {
		return err
	}
	limits := gateway.Limits{LinesMax: cfg.Orders.LinesMax, QtyMax: cfg.Orders.QtyMax, BatchMax: cfg.Orders.BatchMax}
	store := intake.NewChannelStore(node)
	chanOpts := intake.ChannelOptions{Config: channelConfig, IdentityKey: identityKey, Logger: logger}
	if len(clients) > 0 {
		chanOpts.Decrypter = clients
	}
	flow := intake.NewChannelFlow(orders, store, chanOpts)
	fetcher, err := intake.NewFetcher(node, flow, intake.FetchOptions{Connections: clients.fetchConnections(channelConfig),
		Check: gateway.ChannelOrderCheck(limits), AttemptsFor: fetchAttempts, DecryptRetry: decryptRetry, Registerer: reg, Logger: logger})
	if err != nil {
		return err
	}
	fetchCtx, stopFetching := context.WithCancel(ctx)
	fetching := make(chan struct{})
	go func() { defer close(fetching); fetcher.Run(fetchCtx) }()
	defer func() { stopFetching(); <-fetching }()
	events := stream.NewHub(seq.Log(), stream.Options{Logger: logger, Registerer: reg})
	streamCtx, stopStream := context.WithCancel(ctx)
	streaming := make(chan struct{})
	go func() { defer close(streaming); events.Run(streamCtx) }()
	defer func() { stopStream(); <-streaming }()
	// Webhooks: each delivered by the leader of its partition, from the
	// node's copy of the log; never to the node's own addresses.
	self := []string{httpLn.Addr().String()}
	if grpcLn != nil {
		self = append(self, grpcLn.Addr().String())
	}
	webhookSvc, err := webhooks.New(node, events, webhooks.Options{SecretKey: keyring.Derive(webhooks.SecretKeyLabel), Self: self,
		WebhooksMax: cfg.Webhooks.Max, AttemptsMax: cfg.Webhooks.AttemptsMax, BackoffBase: cfg.Webhooks.BackoffBase,
		BackoffMax: cfg.Webhooks.BackoffMax, Registerer: reg, Logger: logger})
	if err != nil {
		return err
	}
	hookCtx, stopHooks := context.WithCancel(ctx)
	hooking := make(chan struct{})
	go func() { defer close(hooking); webhookSvc.Run(hookCtx) }()
	defer func() { stopHooks(); <-hooking }()
	be := backend(node, orders, routes, keyring, flow, store, fetcher, webhookSvc)
	be.Holds, be.Limits, be.Risk, be.RiskStore = node, routes, screener, routes
	gw := gateway.New(withOps(be, node, host, seq), gateway.Options{
		Tokens:       tokens,
		Channels:     channelConfig,
		Limits:       limits,
		BodyBytesMax: cfg.HTTP.BodyBytesMax, RequestTimeout: cfg.Actor.RequestTimeout + gateway.RequestTimeoutSlack,
		InFlightMax: cfg.HTTP.InFlightMax, LatencyTarget: cfg.HTTP.LatencyTarget, Profiling: cfg.HTTP.Pprof, Cluster: host,
		Events: events, TrackingKey: keyring.Derive(tracking.KeyLabel),
		Ledger: seq.Log(), AnchorStatus: anchoring.status, Checks: func() map[string]string { return ledgerChecks(seq, anchoring) },
		Ready:  func() bool { return serving.Load() && host.Ready() && node.TopologyReady() },
		Logger: logger, Gatherer: reg, Registerer: reg,
	})
	httpSrv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 2)
	go func() { errc <- httpSrv.Serve(httpLn) }()
	var grpcSrv *grpc.Server
	if grpcLn != nil {
		grpcSrv = grpc.NewServer(grpc.MaxRecvMsgSize(int(cfg.HTTP.BodyBytesMax)), grpc.UnaryInterceptor(gw.UnaryInterceptor()),
			grpc.StreamInterceptor(gw.StreamInterceptor()))
		pb.RegisterOrderServiceServer(grpcSrv, gw.Service)
		pb.RegisterInventoryServiceServer(grpcSrv, gw.Service)
		pb.RegisterPrivacyServiceServer(grpcSrv, gw.Service)
		pb.RegisterEventServiceServer(grpcSrv, gw.Service)
		go func() { errc <- grpcSrv.Serve(grpcLn) }()
	}
	serving.Store(true)
	fmt.Printf("ordergrid %s ready in %s\n", cfg.NodeID, time.Since(start).Round(time.Millisecond))
	fmt.Printf("  http  http://%s\n", httpLn.Addr())
	if grpcLn != nil {
		fmt.Printf("  grpc  %s\n", grpcLn.Addr())
	}
	fmt.Printf("  raft  %s (%d partitions)   actor %s   data %s\n", cfg.Raft.Addr, cfg.Raft.Partitions, cfg.Actor.Addr, cfg.DataDir)

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		// Every acknowledged change is in an fsynced Raft log, so a node
		// that cannot stop cleanly (a peer gone, a call stuck) may stop
		// like a crash rather than hang its supervisor.
		time.AfterFunc(shutdownMax, func() {
			logger.Error("shutdown took too long; exiting", slog.Duration("after", shutdownMax))
			os.Exit(1)
		})
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("server: %w", err)
		}
	}
	serving.Store(false)
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShut()
	gw.StopStreams()
	_ = httpSrv.Shutdown(shutCtx)
	if grpcSrv != nil {
		stopped := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutCtx.Done():
			grpcSrv.Stop() // streams still open: cut them
		}
	}
	return nil
}

// chooseFreePorts fills the internal addresses left empty with free loopback
// ports: a single node needs no fixed ones, and two nodes on one machine then
// need only their own --data-dir and --http-addr.
func chooseFreePorts(cfg *config.Config) error {
	free := func() (int, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("choosing a free port: %w", err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	if cfg.Raft.Addr == "" {
		cfg.Raft.Addr = cfg.PeerAddr(cfg.NodeID)
	}
	for _, addr := range []*string{&cfg.Raft.Addr, &cfg.Actor.Addr} {
		if *addr == "" {
			p, err := free()
			if err != nil {
				return err
			}
			*addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		}
	}
	if cfg.Actor.ProviderPort == 0 {
		p, err := free()
		if err != nil {
			return err
		}
		cfg.Actor.ProviderPort = p
	}
	return nil
}
