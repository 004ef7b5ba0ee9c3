// Package config is ordergrid's one configuration: a typed struct loaded from
// defaults, then an optional YAML file, then ORDERGRID_* environment
// variables, then command-line flags, and validated as a whole.
//
// Every setting has one key, used in all three sources: the YAML path
// ("http.addr"), the environment variable (ORDERGRID_HTTP_ADDR) and the flag
// (--http-addr). Durations are Go durations ("15m", "500ms").
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/lifecycle"
)

// Config is the configuration of one node.
type Config struct {
	// DataDir holds the node's Pebble database and Raft snapshots. Default "./data".
	DataDir string `yaml:"data_dir"`
	// NodeID names the node in Raft configurations. Default "node1".
	NodeID   string   `yaml:"node_id"`
	HTTP     HTTP     `yaml:"http"`
	GRPC     GRPC     `yaml:"grpc"`
	Raft     Raft     `yaml:"raft"`
	Actor    Actor    `yaml:"actor"`
	Orders   Orders   `yaml:"orders"`
	Ledger   Ledger   `yaml:"ledger"`
	Auth     Auth     `yaml:"auth"`
	Privacy  Privacy  `yaml:"privacy"`
	Routing  Routing  `yaml:"routing"`
	Channels Channels `yaml:"channels"`
	Intake   Intake   `yaml:"intake"`
	Alerts   Alerts   `yaml:"alerts"`
	Webhooks Webhooks `yaml:"webhooks"`
	Holds    Holds    `yaml:"holds"`
	Log      Log      `yaml:"log"`
}

// Holds are the checks of a new order at intake and the review queue of
// the orders they hold: purchase limits (the /v1/limits rules), address
// checks and the risk score.
type Holds struct {
	// Timeout is how long a held order waits for a reviewer before it
	// expires (its stock released): 1m..7d. Default DefaultHoldsTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Address is the action on an address finding (incomplete, ambiguous,
	// a PO box or bonded zone the order's warehouses cannot ship to, a
	// region none serves): hold, refuse or accept (checks off). Default hold.
	Address string `yaml:"address"`
	// AddressRefuse are the address finding codes that refuse the order
	// whatever Address says (e.g. po_box, bonded_zone). Default none.
	AddressRefuse []string `yaml:"address_refuse"`
	// RiskModel is the risk model file (ordergrid risk train); empty: the
	// model that ships with ordergrid; "off": no score.
	RiskModel string `yaml:"risk_model"`
	// RiskHold and RiskRefuse are the score thresholds (0..1, hold <=
	// refuse): a score at or over one holds or refuses. A score is below 1,
	// so 1 turns either off. Defaults DefaultRiskHold (0.9) and
	// DefaultRiskRefuse (1: the shipped model, trained on synthetic
	// history, holds for a person and refuses nothing by itself).
	RiskHold   float64 `yaml:"risk_hold"`
	RiskRefuse float64 `yaml:"risk_refuse"`
	// Timezone is the IANA zone of the risk feature hour_of_day. Default Asia/Shanghai.
	Timezone string `yaml:"timezone"`
}

// Defaults of holds.
const (
	DefaultHoldsTimeout = time.Hour
	DefaultRiskHold     = 0.9
	DefaultRiskRefuse   = 1
)

// Alerts are the stuck-order alerts: an order that stays in a stage (a
// status) longer than the stage's limit gets an alert_raised event, and an
// alert_cleared one when it moves on.
type Alerts struct {
	// Stages are the stage limits, at most AlertStagesMax, one per status:
	// a status that is neither closed (delivered, cancelled, expired,
	// refunded, merged) nor pending_payment (its pay-by expiry governs
	// it), a limit of at least 1s, an optional name for the events. In the
	// environment or a flag: "status=limit[:name],…" (e.g.
	// "paid=30m:paid-not-picked,shipped=24h"). Default DefaultAlertStages;
	// an empty list turns alerts off.
	Stages []AlertStage `yaml:"stages"`
}

// AlertStage is one stage limit.
type AlertStage struct {
	// Status is the stage.
	Status string `yaml:"status"`
	// Limit is how long an order may stay in it.
	Limit time.Duration `yaml:"limit"`
	// Name names the limit in the alert's event. Default "".
	Name string `yaml:"name"`
}

// AlertStagesMax bounds alerts.stages.
const AlertStagesMax = 32

// DefaultAlertStages is alerts.stages' default: paid 30m (not picked),
// picked 2h (not packed), packed 4h (not shipped), shipped 24h (no carrier
// scan), in_transit 72h, on_hold 2h (a held order unreviewed).
func DefaultAlertStages() []AlertStage {
	return []AlertStage{
		{Status: "paid", Limit: 30 * time.Minute, Name: "paid-not-picked"},
		{Status: "picked", Limit: 2 * time.Hour, Name: "picked-not-packed"},
		{Status: "packed", Limit: 4 * time.Hour, Name: "packed-not-shipped"},
		{Status: "shipped", Limit: 24 * time.Hour, Name: "shipped-no-scan"},
		{Status: "in_transit", Limit: 72 * time.Hour, Name: "in-transit-too-long"},
		{Status: "on_hold", Limit: 2 * time.Hour, Name: "on-hold-unreviewed"},
	}
}

// Webhooks are the webhook subscriptions (/v1/webhooks) and their
// deliveries.
type Webhooks struct {
	// Max bounds the webhooks of the grid (1..WebhooksMaxMax). Default
	// DefaultWebhooksMax.
	Max int `yaml:"max"`
	// AttemptsMax is how many attempts a batch gets before its range is
	// dead-lettered (1..100). Default DefaultWebhookAttemptsMax.
	AttemptsMax int `yaml:"attempts_max"`
	// BackoffBase and BackoffMax shape the wait before a retry: base·2^n,
	// capped, with full jitter. Defaults 1s and 5m.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
}

// Defaults and bounds of webhooks.
const (
	DefaultWebhooksMax        = 100
	WebhooksMaxMax            = 10_000
	DefaultWebhookAttemptsMax = 8
)

// Intake is how new orders and order events are batched.
type Intake struct {
	// CoalesceOnLeader makes a node hand every batch it forms for an order
	// partition it does not lead to that partition's leader, where the
	// batches of all nodes go out as one stream (one batch in flight per
	// partition in the cluster). Off, each node proposes its own batches
	// (one in flight per partition per node). Every node takes forwarded
	// batches either way. Default false: on three nodes sharing two cores
	// it measured about 5% fewer orders a second at a higher p99
	// (BENCHMARKS.md).
	CoalesceOnLeader bool `yaml:"coalesce_on_leader"`
}

// Channels is how orders come in from the sales channels' own formats.
type Channels struct {
	// File is a YAML file with the channel connections (channel, name,
	// secret, app_key, token), the identity_key (base64 of 32 bytes; default:
	// derived from the first master key), the merge policies (window,
	// default, pairs) and the price rule (window, rule). Empty: no
	// connection, so POST /v1/channels/{channel}/orders answers 401. Default "".
	File string `yaml:"file"`
}

// Routing is how orders are routed to warehouses.
type Routing struct {
	// WarehousesFile is a YAML file with a list "warehouses:" of warehouse
	// documents (the fields of PUT /v1/warehouses/{id}). At start the node
	// adds each one the grid does not know yet; changes after that are made
	// through the API and a restart does not undo them. Default "" (none:
	// while no warehouse is registered, every warehouse holding stock is
	// routed to, as up, without cost or limits).
	WarehousesFile string `yaml:"warehouses_file"`
}

// Privacy is how personal data is protected.
type Privacy struct {
	// MasterKeysFile holds the master keys that wrap every subject's data
	// key, one "<id> <base64 32 bytes>" per line, the last one active (made
	// with `ordergrid privacy keygen`). Keep it out of the data directory:
	// with it, an erased subject's key could be read from what a disk still
	// holds. Every node of a cluster needs the same keys. Empty, and no
	// ORDERGRID_MASTER_KEYS: the node makes {data_dir}/master.keys (for
	// trying ordergrid out, not for production). Default "".
	MasterKeysFile string `yaml:"master_keys_file"`
	// RequireExternalMasterKey refuses to start when the master keys would
	// be kept in the data directory: the node's own {data_dir}/master.keys,
	// or a master_keys_file inside data_dir. Whoever holds the data
	// directory (a disk image, a backup) then holds the keys too. On in
	// production; scripts/cluster-up.sh turns it on. Default false.
	RequireExternalMasterKey bool `yaml:"require_external_master_key"`
}

// Auth is who may call the API.
type Auth struct {
	// TokensFile is a YAML file of API tokens (name, role, channels, the
	// token's SHA-256, optional expiry), made with `ordergrid token new`.
	// Empty, and no ORDERGRID_BOOTSTRAP_TOKEN: the node makes an admin token,
	// keeps it in {data_dir}/bootstrap-admin.token and prints it. Default "".
	TokensFile string `yaml:"tokens_file"`
}

// Ledger is the verifiable audit log and its anchoring on Fabric.
type Ledger struct {
	// Origin names the log in its checkpoints and its key. Used when a new
	// log makes its key. Default "ordergrid.local/ledger".
	Origin string `yaml:"origin"`
	// SigningKeyFile holds the log's signer key (made by `ordergrid ledger
	// keygen`); every node of a cluster gets the same file. Empty: the first
	// node makes the key and the ledger group replicates it. Default "".
	SigningKeyFile string `yaml:"signing_key_file"`
	// SequenceInterval is how often the sequencer reads idle partitions. Default 20ms.
	SequenceInterval time.Duration `yaml:"sequence_interval"`
	// CheckpointInterval is how often a grown log gets a signed checkpoint. Default 1s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	Fabric             Fabric        `yaml:"fabric"`
}

// Fabric is where checkpoints are anchored: a Fabric peer's Gateway
// service and the anchoring chaincode. Anchoring is off while PeerEndpoint
// is empty.
type Fabric struct {
	// PeerEndpoint is the peer's host:port. Default "" (anchoring off).
	PeerEndpoint string `yaml:"peer_endpoint"`
	// PeerHostOverride is the TLS server name of the peer, when it differs
	// from the endpoint's host. Default "".
	PeerHostOverride string `yaml:"peer_host_override"`
	// TLSCAFile is the PEM CA of the peer's TLS certificate. Empty: plain
	// gRPC, for a local network without TLS. Default "".
	TLSCAFile string `yaml:"tls_ca_file"`
	// MSPID is the client identity's organisation. Default "Org1MSP".
	MSPID string `yaml:"msp_id"`
	// CertFile and KeyFile are the client identity's PEM certificate and private key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Channel and Chaincode name where anchors go. Default "ordergrid", "anchors".
	Channel   string `yaml:"channel"`
	Chaincode string `yaml:"chaincode"`
	// AnchorInterval is how often the newest checkpoint is anchored when the
	// log has grown. Default 5s.
	AnchorInterval time.Duration `yaml:"anchor_interval"`
}

// HTTP is the JSON API.
type HTTP struct {
	// Addr to listen on. Default "127.0.0.1:8080".
	Addr string `yaml:"addr"`
	// BodyBytesMax is the largest request body accepted. Default 4 MiB.
	BodyBytesMax int64 `yaml:"body_bytes_max"`
	// InFlightMax is the most requests served at once; more get 429. Default 10000.
	InFlightMax int `yaml:"in_flight_max"`
	// LatencyTarget makes the in-flight limit adaptive: below in_flight_max
	// it shrinks while requests take longer than this on average and grows
	// back while they do not, so a surge is shed with fast 429s instead of
	// queued. Default 0 (a fixed limit).
	LatencyTarget time.Duration `yaml:"latency_target"`
	// Pprof serves Go's profiler under /debug/pprof/. Default false.
	Pprof bool `yaml:"pprof"`
}

// GRPC is the gRPC API.
type GRPC struct {
	// Addr to listen on; empty disables gRPC. Default "127.0.0.1:9090".
	Addr string `yaml:"addr"`
}

// Raft is the replicated partitions.
type Raft struct {
	// Addr is the one TCP address all Raft groups share. Default "": a free
	// loopback port, chosen at start (enough for a single node; a cluster
	// member needs a fixed address).
	Addr string `yaml:"addr"`
	// Peers are every voter of a new cluster, this node included, each
	// "id=host:port" (its raft.addr). The same list on every node of a new
	// cluster; empty for a single node. A node not in the list starts empty
	// and waits to be added (POST /v1/cluster/nodes on a member). Default empty.
	Peers []string `yaml:"peers"`
	// Partitions is the number of Raft groups; fixed once data exists. Default 8.
	Partitions int `yaml:"partitions"`
	// HeartbeatTimeout as in hashicorp/raft. Default 500ms.
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// ElectionTimeout as in hashicorp/raft. Default 500ms.
	ElectionTimeout time.Duration `yaml:"election_timeout"`
	// SnapshotThreshold is the log entries between snapshots. Default 8192.
	SnapshotThreshold uint64 `yaml:"snapshot_threshold"`
	// WALMinSyncInterval is the least time between two fsyncs of the node's
	// write-ahead log: syncs asked for sooner wait for it and are done as
	// one, so the node's partitions share fsyncs under load (a sync asked
	// for after a quiet spell goes out at once). 0: every sync at once.
	// Default 0; at most 10ms. (Measured on a 2-core VM, BENCHMARKS.md: 1ms
	// saves about a tenth of the node's CPU per order and adds about as much
	// latency in a closed loop.)
	WALMinSyncInterval time.Duration `yaml:"wal_min_sync_interval"`
}

// Actor is the Proto.Actor cluster membership.
type Actor struct {
	// Addr is the actor remote's address. Default "": a free loopback port.
	Addr string `yaml:"addr"`
	// Provider is the membership provider: automanaged (the members poll each
	// other over HTTP; for a fixed local cluster), etcd or consul. Default "automanaged".
	Provider string `yaml:"provider"`
	// EtcdEndpoints are the etcd servers of the etcd provider, host:port.
	EtcdEndpoints []string `yaml:"etcd_endpoints"`
	// EtcdPrefix is the key prefix of this cluster's members in etcd. Default "/ordergrid".
	EtcdPrefix string `yaml:"etcd_prefix"`
	// ConsulAddress is the Consul agent of the consul provider, host:port. Default "127.0.0.1:8500".
	ConsulAddress string `yaml:"consul_address"`
	// ProviderPort is the automanaged provider's port (all interfaces).
	// Default 0: a free port, chosen at start.
	ProviderPort int `yaml:"provider_port"`
	// ProviderHosts are every member's provider endpoint, host:port. Default: this node's.
	ProviderHosts []string `yaml:"provider_hosts"`
	// GrainIdleTimeout passivates an idle SKU grain (and its stock cache). Default 5m.
	GrainIdleTimeout time.Duration `yaml:"grain_idle_timeout"`
	// OrderGrainIdleTimeout passivates an idle order grain. Order grains keep
	// no state between calls and a flash sale makes one per order, so they go
	// soon. Default 10s.
	OrderGrainIdleTimeout time.Duration `yaml:"order_grain_idle_timeout"`
	// RequestTimeout bounds one grain call. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// Orders are the rules of intake and the order lifecycle.
type Orders struct {
	// PendingTimeout is how long an unpaid order holds stock. Default 15m.
	PendingTimeout time.Duration `yaml:"pending_timeout"`
	// OrphanGrace is added to PendingTimeout before reservations of orders
	// never recorded are released. Default 1m.
	OrphanGrace time.Duration `yaml:"orphan_grace"`
	// SweepInterval is how often expiries are swept. Default 1s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// LinesMax is the most lines an order may have. Default 100.
	LinesMax int `yaml:"lines_max"`
	// QtyMax is the largest quantity of one line. Default 1000000.
	QtyMax int64 `yaml:"qty_max"`
	// BatchMax is the most orders in one batch request. Default 1000.
	BatchMax int `yaml:"batch_max"`
	// Retention moves orders closed (delivered, cancelled, expired,
	// refunded) longer ago than this out of hot state into compressed
	// archive files with their proofs. Default 0 (keep everything).
	Retention time.Duration `yaml:"retention"`
	// ArchiveDir is where archive files go. Default "" ({data_dir}/archive).
	ArchiveDir string `yaml:"archive_dir"`
}

// Log is the node's logging.
type Log struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `yaml:"level"`
	// Format is text or json. Default "text".
	Format string `yaml:"format"`
}

// The defaults that the packages a Config configures also fill in for a
// zero value (gateway.Options, actors.Options): written out here only, so a
// zero setting of an embedder means the same as an absent one here, never
// "refuse everything".
const (
	// DefaultHTTPBodyBytesMax is http.body_bytes_max's default: 4 MiB.
	DefaultHTTPBodyBytesMax = 4 << 20
	// DefaultHTTPInFlightMax is http.in_flight_max's default.
	DefaultHTTPInFlightMax = 10_000
	// DefaultActorRequestTimeout is actor.request_timeout's default.
	DefaultActorRequestTimeout = 10 * time.Second
	// DefaultActorGrainIdleTimeout is actor.grain_idle_timeout's default.
	DefaultActorGrainIdleTimeout = 5 * time.Minute
	// DefaultActorOrderGrainIdleTimeout is actor.order_grain_idle_timeout's default.
	DefaultActorOrderGrainIdleTimeout = 10 * time.Second
	// DefaultOrdersPendingTimeout is orders.pending_timeout's default.
	DefaultOrdersPendingTimeout = 15 * time.Minute
	// DefaultOrdersOrphanGrace is orders.orphan_grace's default.
	DefaultOrdersOrphanGrace = time.Minute
	// DefaultOrdersSweepInterval is orders.sweep_interval's default.
	DefaultOrdersSweepInterval = time.Second
	// DefaultOrdersLinesMax is orders.lines_max's default.
	DefaultOrdersLinesMax = 100
	// DefaultOrdersQtyMax is orders.qty_max's default.
	DefaultOrdersQtyMax = 1_000_000
	// DefaultOrdersBatchMax is orders.batch_max's default.
	DefaultOrdersBatchMax = 1000
)

// Default returns the defaults.
func Default() Config {
	return Config{
		DataDir: "./data",
		NodeID:  "node1",
		HTTP:    HTTP{Addr: "127.0.0.1:8080", BodyBytesMax: DefaultHTTPBodyBytesMax, InFlightMax: DefaultHTTPInFlightMax},
		GRPC:    GRPC{Addr: "127.0.0.1:9090"},
		Raft: Raft{Partitions: 8, HeartbeatTimeout: 500 * time.Millisecond,
			ElectionTimeout: 500 * time.Millisecond, SnapshotThreshold: 8192},
		Actor: Actor{Provider: "automanaged", EtcdPrefix: "/ordergrid", ConsulAddress: "127.0.0.1:8500", GrainIdleTimeout: DefaultActorGrainIdleTimeout, OrderGrainIdleTimeout: DefaultActorOrderGrainIdleTimeout, RequestTimeout: DefaultActorRequestTimeout},
		Orders: Orders{PendingTimeout: DefaultOrdersPendingTimeout, OrphanGrace: DefaultOrdersOrphanGrace, SweepInterval: DefaultOrdersSweepInterval,
			LinesMax: DefaultOrdersLinesMax, QtyMax: DefaultOrdersQtyMax, BatchMax: DefaultOrdersBatchMax},
		Ledger: Ledger{Origin: "ordergrid.local/ledger", SequenceInterval: 20 * time.Millisecond, CheckpointInterval: time.Second,
			Fabric: Fabric{MSPID: "Org1MSP", Channel: "ordergrid", Chaincode: "anchors", AnchorInterval: 5 * time.Second}},
		Alerts:   Alerts{Stages: DefaultAlertStages()},
		Webhooks: Webhooks{Max: DefaultWebhooksMax, AttemptsMax: DefaultWebhookAttemptsMax, BackoffBase: time.Second, BackoffMax: 5 * time.Minute},
		Holds: Holds{Timeout: DefaultHoldsTimeout, Address: "hold", RiskHold: DefaultRiskHold, RiskRefuse: DefaultRiskRefuse,
			Timezone: "Asia/Shanghai"},
		Log: Log{Level: "info", Format: "text"},
	}
}

// Load builds the configuration from defaults, the YAML file named by
// --config or ORDERGRID_CONFIG (if any), ORDERGRID_* variables of environ
// and the flags in args, then validates it.
func Load(args []string, environ []string) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", envLookup(environ, "ORDERGRID_CONFIG"), "YAML configuration file")
	fields := c.fields()
	flagVals := make(map[string]*flagValue, len(fields))
	for _, f := range fields {
		fv := &flagValue{isBool: f.v.Kind() == reflect.Bool}
		flagVals[f.key] = fv
		fs.Var(fv, f.flagName(), f.key+" (default "+f.current()+")")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config file %s: %w", *configPath, err)
		}
	}
	fields = c.fields()
	for _, f := range fields {
		if v, ok := envLookupOK(environ, f.envName()); ok {
			if err := f.set(v); err != nil {
				return c, fmt.Errorf("%s (%s): %w", f.key, f.envName(), err)
			}
		}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, f := range fields {
		if set[f.flagName()] {
			if err := f.set(flagVals[f.key].value); err != nil {
				return c, fmt.Errorf("%s (--%s): %w", f.key, f.flagName(), err)
			}
		}
	}
	return c, c.Validate()
}

// Validate reports every invalid setting, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.NodeID == "" {
		bad("node_id", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%q is not host:port", c.HTTP.Addr)
	}
	// Empty means off (grpc) or a free port chosen at start (raft, actor).
	for key, addr := range map[string]string{"grpc.addr": c.GRPC.Addr, "raft.addr": c.Raft.Addr, "actor.addr": c.Actor.Addr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port", addr)
		}
	}
	if c.HTTP.BodyBytesMax < 1024 || c.HTTP.BodyBytesMax > 256<<20 {
		bad("http.body_bytes_max", "%d outside 1024..268435456", c.HTTP.BodyBytesMax)
	}
	if c.HTTP.InFlightMax < 1 || c.HTTP.InFlightMax > 1_000_000 {
		bad("http.in_flight_max", "%d outside 1..1000000", c.HTTP.InFlightMax)
	}
	if c.HTTP.LatencyTarget < 0 || c.HTTP.LatencyTarget > time.Minute {
		bad("http.latency_target", "%s outside 0..1m", c.HTTP.LatencyTarget)
	}
	seen := map[string]bool{}
	for i, p := range c.Raft.Peers {
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" {
			bad(fmt.Sprintf("raft.peers[%d]", i), "%q is not id=host:port", p)
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(fmt.Sprintf("raft.peers[%d]", i), "%q is not id=host:port", p)
		}
		if seen[id] {
			bad(fmt.Sprintf("raft.peers[%d]", i), "node %s is listed twice", id)
		}
		seen[id] = true
	}
	if c.Raft.Partitions < 1 || c.Raft.Partitions > 1024 {
		bad("raft.partitions", "%d outside 1..1024", c.Raft.Partitions)
	}
	if c.Raft.HeartbeatTimeout < 5*time.Millisecond {
		bad("raft.heartbeat_timeout", "%s is below 5ms", c.Raft.HeartbeatTimeout)
	}
	if c.Raft.ElectionTimeout < c.Raft.HeartbeatTimeout {
		bad("raft.election_timeout", "%s is below raft.heartbeat_timeout", c.Raft.ElectionTimeout)
	}
	if c.Raft.WALMinSyncInterval < 0 || c.Raft.WALMinSyncInterval > 10*time.Millisecond {
		bad("raft.wal_min_sync_interval", "%s outside 0..10ms", c.Raft.WALMinSyncInterval)
	}
	if c.Raft.SnapshotThreshold < 16 {
		bad("raft.snapshot_threshold", "%d is below 16", c.Raft.SnapshotThreshold)
	}
	switch c.Actor.Provider {
	case "automanaged":
	case "etcd":
		if len(c.Actor.EtcdEndpoints) == 0 {
			bad("actor.etcd_endpoints", "the etcd provider needs at least one endpoint")
		}
		if !strings.HasPrefix(c.Actor.EtcdPrefix, "/") {
			bad("actor.etcd_prefix", "%q must start with /", c.Actor.EtcdPrefix)
		}
	case "consul":
		if _, _, err := net.SplitHostPort(c.Actor.ConsulAddress); err != nil {
			bad("actor.consul_address", "%q is not host:port", c.Actor.ConsulAddress)
		}
	default:
		bad("actor.provider", "%q is not automanaged, etcd or consul", c.Actor.Provider)
	}
	if c.Actor.ProviderPort < 0 || c.Actor.ProviderPort > 65535 {
		bad("actor.provider_port", "%d is not a port", c.Actor.ProviderPort)
	}
	if c.Actor.GrainIdleTimeout < time.Second {
		bad("actor.grain_idle_timeout", "%s is below 1s", c.Actor.GrainIdleTimeout)
	}
	if c.Actor.OrderGrainIdleTimeout < time.Second {
		bad("actor.order_grain_idle_timeout", "%s is below 1s", c.Actor.OrderGrainIdleTimeout)
	}
	if c.Actor.RequestTimeout < 100*time.Millisecond {
		bad("actor.request_timeout", "%s is below 100ms", c.Actor.RequestTimeout)
	}
	if c.Orders.PendingTimeout < time.Second {
		bad("orders.pending_timeout", "%s is below 1s", c.Orders.PendingTimeout)
	}
	if c.Orders.OrphanGrace < 0 {
		bad("orders.orphan_grace", "%s is negative", c.Orders.OrphanGrace)
	}
	if c.Orders.SweepInterval < 10*time.Millisecond {
		bad("orders.sweep_interval", "%s is below 10ms", c.Orders.SweepInterval)
	}
	if c.Orders.LinesMax < 1 || c.Orders.LinesMax > 10_000 {
		bad("orders.lines_max", "%d outside 1..10000", c.Orders.LinesMax)
	}
	if c.Orders.QtyMax < 1 || c.Orders.QtyMax > 1_000_000_000 {
		bad("orders.qty_max", "%d outside 1..1000000000", c.Orders.QtyMax)
	}
	if c.Orders.BatchMax < 1 || c.Orders.BatchMax > 10_000 {
		bad("orders.batch_max", "%d outside 1..10000", c.Orders.BatchMax)
	}
	if err := checkpoint.ValidOrigin(c.Ledger.Origin); err != nil {
		bad("ledger.origin", "%v", err)
	}
	if c.Ledger.SequenceInterval < time.Millisecond || c.Ledger.SequenceInterval > time.Minute {
		bad("ledger.sequence_interval", "%s outside 1ms..1m", c.Ledger.SequenceInterval)
	}
	if c.Ledger.CheckpointInterval < 10*time.Millisecond || c.Ledger.CheckpointInterval > time.Hour {
		bad("ledger.checkpoint_interval", "%s outside 10ms..1h", c.Ledger.CheckpointInterval)
	}
	if f := c.Ledger.Fabric; f.PeerEndpoint != "" {
		if _, _, err := net.SplitHostPort(f.PeerEndpoint); err != nil {
			bad("ledger.fabric.peer_endpoint", "%q is not host:port", f.PeerEndpoint)
		}
		for key, v := range map[string]string{"ledger.fabric.msp_id": f.MSPID, "ledger.fabric.cert_file": f.CertFile,
			"ledger.fabric.key_file": f.KeyFile, "ledger.fabric.channel": f.Channel, "ledger.fabric.chaincode": f.Chaincode} {
			if v == "" {
				bad(key, "must be set when ledger.fabric.peer_endpoint is")
			}
		}
		if f.AnchorInterval < 100*time.Millisecond || f.AnchorInterval > time.Hour {
			bad("ledger.fabric.anchor_interval", "%s outside 100ms..1h", f.AnchorInterval)
		}
	}
	if c.Orders.Retention != 0 && c.Orders.Retention < time.Second {
		bad("orders.retention", "%s: 0 (off) or at least 1s", c.Orders.Retention)
	}
	if w := c.Webhooks; w.Max < 1 || w.Max > WebhooksMaxMax {
		bad("webhooks.max", "%d outside 1..%d", w.Max, WebhooksMaxMax)
	}
	if w := c.Webhooks; w.AttemptsMax < 1 || w.AttemptsMax > 100 {
		bad("webhooks.attempts_max", "%d outside 1..100", w.AttemptsMax)
	}
	if w := c.Webhooks; w.BackoffBase < time.Millisecond || w.BackoffBase > time.Hour {
		bad("webhooks.backoff_base", "%s outside 1ms..1h", w.BackoffBase)
	}
	if w := c.Webhooks; w.BackoffMax < c.Webhooks.BackoffBase || w.BackoffMax > 24*time.Hour {
		bad("webhooks.backoff_max", "%s: at least webhooks.backoff_base (%s), at most 24h", w.BackoffMax, w.BackoffBase)
	}
	if len(c.Alerts.Stages) > AlertStagesMax {
		bad("alerts.stages", "%d stages, at most %d", len(c.Alerts.Stages), AlertStagesMax)
	}
	stages := map[string]bool{}
	for i, st := range c.Alerts.Stages {
		key := fmt.Sprintf("alerts.stages[%d]", i)
		switch {
		case !lifecycle.IsEventType(st.Status) && st.Status != lifecycle.StatusExpired:
			bad(key+".status", "%q is not an order status", st.Status)
		case !lifecycle.HasStageLimit(st.Status):
			bad(key+".status", "%q has no stage limit: it is closed or pending_payment (the pay-by expiry governs that)", st.Status)
		case stages[st.Status]:
			bad(key+".status", "%q is listed twice", st.Status)
		}
		stages[st.Status] = true
		if st.Limit < time.Second || st.Limit > 365*24*time.Hour {
			bad(key+".limit", "%s outside 1s..8760h", st.Limit)
		}
		if len(st.Name) > 64 || strings.ContainsAny(st.Name, ",:=") {
			bad(key+".name", "%q: at most 64 characters, without , : or =", st.Name)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if h := c.Holds; h.Timeout < time.Minute || h.Timeout > 7*24*time.Hour {
		bad("holds.timeout", "%s outside 1m..168h", h.Timeout)
	}
	switch c.Holds.Address {
	case "hold", "refuse", "accept":
	default:
		bad("holds.address", "%q is not hold, refuse or accept", c.Holds.Address)
	}
	// Written so that NaN fails too.
	if h := c.Holds; !(h.RiskHold > 0 && h.RiskHold <= 1) {
		bad("holds.risk_hold", "%v outside (0, 1]", h.RiskHold)
	}
	if h := c.Holds; !(h.RiskRefuse >= h.RiskHold && h.RiskRefuse <= 1) {
		bad("holds.risk_refuse", "%v: at least holds.risk_hold (%v), at most 1", h.RiskRefuse, h.RiskHold)
	}
	if _, err := time.LoadLocation(c.Holds.Timezone); err != nil || c.Holds.Timezone == "" {
		bad("holds.timezone", "%q is not an IANA time zone", c.Holds.Timezone)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

// field is one leaf setting, addressed by its YAML path.
type field struct {
	key string
	v   reflect.Value
}

func (f field) flagName() string { return strings.NewReplacer(".", "-", "_", "-").Replace(f.key) }
func (f field) envName() string {
	return "ORDERGRID_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(f.key))
}

func (f field) current() string {
	switch x := f.v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case []AlertStage:
		parts := make([]string, len(x))
		for i, st := range x {
			parts[i] = st.Status + "=" + st.Limit.String()
			if st.Name != "" {
				parts[i] += ":" + st.Name
			}
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(x)
	}
}

func (f field) set(s string) error {
	switch f.v.Interface().(type) {
	case string:
		f.v.SetString(s)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration", s)
		}
		f.v.SetInt(int64(d))
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.v.SetBool(b)
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		f.v.SetInt(n)
	case float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.v.SetFloat(x)
	case uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		f.v.SetUint(n)
	case []string:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.v.Set(reflect.ValueOf(parts))
	case []AlertStage:
		stages, err := parseAlertStages(s)
		if err != nil {
			return err
		}
		f.v.Set(reflect.ValueOf(stages))
	default:
		return fmt.Errorf("unsupported setting type %s", f.v.Type())
	}
	return nil
}

// parseAlertStages reads "status=limit[:name],…" (empty: none).
func parseAlertStages(s string) ([]AlertStage, error) {
	stages := []AlertStage{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		status, rest, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not status=limit[:name]", p)
		}
		limit, name, _ := strings.Cut(rest, ":")
		d, err := time.ParseDuration(limit)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a duration", p, limit)
		}
		stages = append(stages, AlertStage{Status: strings.TrimSpace(status), Limit: d, Name: name})
	}
	return stages, nil
}

// fields lists every leaf setting of c.
func (c *Config) fields() []field {
	var out []field
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct {
				walk(key, fv)
				continue
			}
			out = append(out, field{key: key, v: fv})
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// Keys lists every setting's key, for documentation.
func (c *Config) Keys() []string {
	var out []string
	for _, f := range c.fields() {
		out = append(out, f.key)
	}
	return out
}

func envLookupOK(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func envLookup(environ []string, name string) string {
	v, _ := envLookupOK(environ, name)
	return v
}

// flagValue holds a flag's text until the file and environment are applied.
type flagValue struct {
	value  string
	isBool bool
}

func (v *flagValue) String() string { return v.value }

func (v *flagValue) Set(s string) error {
	v.value = s
	return nil
}

// IsBoolFlag lets a boolean setting be given as a bare --flag.
func (v *flagValue) IsBoolFlag() bool { return v.isBool }

// PeerAddr returns the raft address the peers list gives node id, or "".
func (c *Config) PeerAddr(id string) string {
	for _, p := range c.Raft.Peers {
		if pid, addr, ok := strings.Cut(p, "="); ok && pid == id {
			return addr
		}
	}
	return ""
}
