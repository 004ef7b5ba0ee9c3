// Package harness is ordergrid's load harness: live-stream flash-sale
// scenarios against a node or a cluster, open- or closed-loop, over
// HTTP/JSON or gRPC, single-order or batch intake; latencies in HDR
// histograms counted from each send's intended time (no coordinated
// omission); a correctness audit after every run; and a text, JSON and HTML
// report. `go run ./bench` and `ordergrid bench` run Main.
package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Options of a run, from the command line.
type Options struct {
	// Token is the API token (an admin's: the audit reads everything).
	Token       string
	Scenario    string
	URLs        []string
	GRPCAddrs   []string
	Duration    time.Duration
	Concurrency int
	Rate        float64 // open loop: orders per second; 0: closed loop
	Mode        string  // single or batch
	Batch       int
	Transport   string // http or grpc
	Stock       int64
	SKUs        int
	Warehouses  int
	Dist        string
	RetryShare  float64
	BaseRate    float64
	SurgeFactor float64
	Ramp        time.Duration
	JSON        string
	HTML        string
	Audit       bool
	Ledger      bool
	// Stream reads GET /v1/stream during the run and reports commit to
	// event latency.
	Stream bool
	// Holds runs with the intake's holds on: a purchase limit per
	// customer on every SKU of the scenario (high enough to hold nothing),
	// address checks and the risk score. Off, a throwaway node runs with
	// them off (--holds-address accept --holds-risk-model off) and no
	// limit is put.
	Holds      bool
	Run        string
	Seed       uint64
	Progress   bool
	NodeBinary string
	NodeArgs   []string
	Profile    string
	// Reference runs the scenario against a do-nothing reference server
	// first, and reports the node against it.
	Reference bool
	// serverCPU, when set, reads the CPU seconds of the server under load
	// (n servers read, 0 when it cannot) in place of the nodes'
	// process_cpu_seconds_total: the reference run's.
	serverCPU func() (seconds float64, n int)
}

const usage = `usage: go run ./bench [flags]    (or: ordergrid bench [flags])

Runs a load scenario against ordergrid, audits the result, and reports.
With no -url it starts a throwaway single node (built from this repository).

Scenarios:
  hot-sku    a live-stream sell-out: one SKU (-stock on hand), far more buyers than
             stock, -retry-share of sends retry an earlier order
  surge      open loop: -base-rate arrivals ramping within -ramp to -surge-factor
             times that and back (one hot SKU)
  spread     -skus SKUs over -warehouses warehouses, -dist uniform or zipf
  lifecycle  accepted orders go on through pay, pick, pack, ship, deliver; some
             cancel or return

With -reference the same scenario runs first against a do-nothing HTTP intake
server (a child process on loopback; no audit, no ledger), then against the
node, and the report sets the node's throughput, latency and CPU per order
against the reference's.

Exit status: 0 run and audit passed, 1 an audit check failed, 2 bad usage or a
setup that could not be made (unreachable node, ...).

Flags:`

// Main runs the harness with args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == serveReferenceFlag {
		return serveReference(args[1:], os.Stdin, stdout, stderr)
	}
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// The reference runs first, before a throwaway node starts, so that
	// nothing else is on the machine while it runs.
	var ref *ReferenceResult
	if o.Reference {
		ref = referenceRun(ctx, o, args, stderr)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "bench: interrupted during the reference run")
			return 2
		}
	}
	if len(o.URLs) == 0 {
		n, err := startNode(ctx, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench: starting a throwaway node: %v\n", err)
			return 2
		}
		defer n.stop()
		o.URLs, o.GRPCAddrs = []string{n.url}, []string{n.grpc}
	}
	rep, err := run(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if ref != nil {
		ref.compare(rep)
		rep.Reference = ref
	}
	rep.writeText(stdout)
	for _, f := range rep.Profiles {
		fmt.Fprintf(stdout, "\nprofile %s (go tool pprof -http=: %s):\n", f, f)
		if strings.HasSuffix(f, "allocs.pprof") {
			fmt.Fprint(stdout, topOf(f, "-sample_index=alloc_space"))
		} else {
			fmt.Fprint(stdout, topOf(f, "-cum"))
		}
	}
	if o.JSON != "" {
		if err := rep.writeJSON(o.JSON); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "report: %s\n", o.JSON)
	}
	if o.HTML != "" {
		if err := rep.writeHTML(o.HTML); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "report: %s\n", o.HTML)
	}
	if !rep.Audit.Passed {
		return 1
	}
	return 0
}

func parse(args []string, stderr io.Writer) (*Options, error) {
	o := &Options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.Scenario, "scenario", "hot-sku", "hot-sku, surge, spread or lifecycle")
	urls := fs.String("url", "", "node base URLs, comma-separated; clients spread over them (empty: start a throwaway node)")
	grpcs := fs.String("grpc", "", "gRPC addresses, comma-separated, for -transport grpc (default: each URL's host with port 9090)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to load")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "closed loop: concurrent clients")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: orders (or batches) per second; 0: closed loop at -concurrency")
	fs.StringVar(&o.Mode, "mode", "single", "single (one order per request) or batch")
	fs.IntVar(&o.Batch, "batch", 100, "orders per batch request (-mode batch)")
	fs.StringVar(&o.Transport, "transport", "http", "http (JSON), grpc, or grpc-stream (OrderService.StreamCreateOrders: every sender's orders over a few shared streams)")
	fs.Int64Var(&o.Stock, "stock", 100_000, "on hand per SKU and warehouse")
	fs.IntVar(&o.SKUs, "skus", 10_000, "spread: SKUs")
	fs.IntVar(&o.Warehouses, "warehouses", 4, "spread: warehouses per SKU")
	fs.StringVar(&o.Dist, "dist", "uniform", "spread: uniform or zipf")
	fs.Float64Var(&o.RetryShare, "retry-share", 0.1, "share of sends that retry an earlier order")
	fs.Float64Var(&o.BaseRate, "base-rate", 50, "surge: base arrival rate, orders per second")
	fs.Float64Var(&o.SurgeFactor, "surge-factor", 840, "surge: peak rate over base rate")
	fs.DurationVar(&o.Ramp, "ramp", 2*time.Second, "surge: how fast the rate climbs to the peak (and falls back)")
	fs.StringVar(&o.JSON, "json", "", "write the report as JSON to this file")
	fs.StringVar(&o.HTML, "html", "", "write the report as HTML (charts of throughput and latency over time) to this file")
	fs.BoolVar(&o.Audit, "audit", true, "audit the run: no oversell, conservation, every acknowledged order there, one order per key, the ledger")
	fs.BoolVar(&o.Ledger, "ledger", true, "audit and report the audit ledger (proofs of a sample of orders)")
	fs.BoolVar(&o.Stream, "stream", true, "hold GET /v1/stream open on the first node during the run and report commit → event on the stream")
	fs.BoolVar(&o.Holds, "holds", true, "intake holds on: a purchase limit per customer on every SKU (never reached), address checks, the risk score; off: a throwaway node runs without them")
	fs.StringVar(&o.Run, "run", fmt.Sprintf("b%d", time.Now().UnixNano()%1e9), "prefix of idempotency keys and SKUs (unique per run)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the random choices")
	fs.BoolVar(&o.Progress, "progress", true, "a progress line on stderr while running")
	fs.StringVar(&o.NodeBinary, "ordergrid", "", "ordergrid binary for the throwaway node (default: go build ./cmd/ordergrid)")
	fs.StringVar(&o.Profile, "profile", "", "capture the node's CPU and allocation profiles into this directory during the run (the node needs --http-pprof; a throwaway node gets it) and print where the time goes")
	fs.StringVar(&o.Token, "token", tokenFromEnv(), "API token (an admin's); default $ORDERGRID_TOKEN, else $ORDERGRID_BOOTSTRAP_TOKEN; a throwaway node gets a fresh one")
	fs.BoolVar(&o.Reference, "reference", false, "first run the same scenario against a do-nothing HTTP intake server (a child process on loopback; not audited) and report the node's orders/s, p50/p99 and CPU per order against it (-transport http only)")
	nodeArgs := fs.String("node-args", "", "more flags for the throwaway node's serve, space-separated (e.g. \"--http-latency-target 20ms\")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var bad []string
	switch o.Scenario {
	case "hot-sku", "surge", "spread", "lifecycle":
	default:
		bad = append(bad, fmt.Sprintf("-scenario %q is not hot-sku, surge, spread or lifecycle", o.Scenario))
	}
	if *urls != "" {
		o.URLs = strings.Split(*urls, ",")
		for _, u := range o.URLs {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				bad = append(bad, fmt.Sprintf("-url %q is not an http(s) URL", u))
			}
		}
	}
	o.NodeArgs = strings.Fields(*nodeArgs)
	if !o.Holds && *urls == "" {
		o.NodeArgs = append(o.NodeArgs, "--holds-address", "accept", "--holds-risk-model", "off")
	}
	if o.Profile != "" && *urls == "" {
		o.NodeArgs = append(o.NodeArgs, "--http-pprof")
	}
	if *grpcs != "" {
		o.GRPCAddrs = strings.Split(*grpcs, ",")
	}
	if o.Duration < 100*time.Millisecond || o.Duration > time.Hour {
		bad = append(bad, "-duration must be 100ms..1h")
	}
	if o.Concurrency < 1 || o.Concurrency > sendersMax {
		bad = append(bad, fmt.Sprintf("-concurrency must be 1..%d", sendersMax))
	}
	if o.Rate < 0 || o.Rate > 1e6 {
		bad = append(bad, "-rate must be 0..1000000")
	}
	switch o.Mode {
	case "single":
		o.Batch = 1
	case "batch":
		if o.Batch < 2 || o.Batch > 1000 {
			bad = append(bad, "-batch must be 2..1000")
		}
	default:
		bad = append(bad, "-mode must be single or batch")
	}
	if o.Transport != "http" && o.Transport != "grpc" && o.Transport != "grpc-stream" {
		bad = append(bad, "-transport must be http, grpc or grpc-stream")
	}
	if o.Stock < 1 || o.Stock > 1e12 {
		bad = append(bad, "-stock must be 1..1e12")
	}
	if o.SKUs < 1 || o.SKUs > 1_000_000 || o.Warehouses < 1 || o.Warehouses > 100 {
		bad = append(bad, "-skus must be 1..1000000 and -warehouses 1..100")
	}
	if o.Dist != "uniform" && o.Dist != "zipf" {
		bad = append(bad, "-dist must be uniform or zipf")
	} else if o.Dist == "zipf" && o.Scenario == "spread" {
		if err := zipfCheck(o.SKUs); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if o.RetryShare < 0 || o.RetryShare >= 1 {
		bad = append(bad, "-retry-share must be 0..1 (exclusive)")
	}
	if o.BaseRate <= 0 || o.SurgeFactor < 1 || o.Ramp <= 0 {
		bad = append(bad, "-base-rate must be > 0, -surge-factor >= 1, -ramp > 0")
	}
	if o.Scenario == "lifecycle" && (o.Mode != "single" || o.Transport != "http") {
		bad = append(bad, "lifecycle runs with -mode single -transport http")
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return o, nil
}
