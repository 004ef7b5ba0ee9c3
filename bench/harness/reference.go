package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// The reference run (-reference): the same scenario, first against a
// do-nothing intake server (reference_server.go) in a child process, then
// against the node. The node's figures over the reference's say how much of
// what this machine, the HTTP stack and the generator allow the node
// reaches, and what an order costs on top of that floor.

const (
	// serveReferenceFlag is the hidden first argument that makes Main serve
	// the reference instead of running a scenario (the child process).
	serveReferenceFlag = "-serve-reference"
	// referenceTokenEnv hands the child its API token (not on the command
	// line, where ps shows it).
	referenceTokenEnv = "ORDERGRID_BENCH_REFERENCE_TOKEN"
	// referenceStartMax bounds the wait for the child to listen.
	referenceStartMax = 10 * time.Second
	// referenceStopMax bounds a graceful stop of the reference server.
	referenceStopMax = 5 * time.Second
	// referenceOrder is the order of the runs, for the report.
	referenceOrder = "reference first, then the node"
)

// ReferenceResult compares the node's run with a run of the same scenario
// and flags against the do-nothing reference server.
type ReferenceResult struct {
	// Skipped says why there was no reference run.
	Skipped string `json:"skipped,omitempty"`
	// Order is the order of the two runs.
	Order string `json:"order,omitempty"`
	// Server is where the reference ran: "child process" or "in-process".
	Server string `json:"server,omitempty"`
	// CPUSource is whose CPU the reference's server CPU is.
	CPUSource string         `json:"cpu_source,omitempty"`
	Reference *ReferenceSide `json:"reference_run,omitempty"`
	Node      *ReferenceSide `json:"node_run,omitempty"`
	// Ratio is the node's figures over the reference's.
	Ratio *ReferenceRatio `json:"node_over_reference,omitempty"`
	// SoldOut says a run refused orders for stock: its accepted/s is then
	// bounded by -stock over the duration; answered/s and CPU per answer
	// still compare.
	SoldOut bool `json:"sold_out,omitempty"`
	// Errors are the reference run's first unexpected answers (a bug of
	// the reference server or of the harness).
	Errors map[string]string `json:"reference_first_errors,omitempty"`
}

// ReferenceSide is one run's figures.
type ReferenceSide struct {
	Seconds  float64 `json:"seconds"`
	Accepted float64 `json:"accepted_per_second"`
	// Answered is orders created, replayed or refused for stock, per second.
	Answered float64          `json:"answered_per_second"`
	P50Ms    float64          `json:"p50_ms"`
	P99Ms    float64          `json:"p99_ms"`
	Counts   map[string]int64 `json:"counts"`
	// ServerCPU is the server's CPU over the load: the node's, or the
	// reference server's.
	ServerCPU *NodeCPU `json:"server_cpu,omitempty"`
	// BenchCPU is the bench process's CPU over the load (the generator and
	// its HTTP client); absent when the reference ran in-process.
	BenchCPU *NodeCPU `json:"bench_cpu,omitempty"`
}

// ReferenceRatio is node ÷ reference; 0 where a figure is missing.
type ReferenceRatio struct {
	Accepted        float64 `json:"accepted_per_second"`
	Answered        float64 `json:"answered_per_second"`
	P50             float64 `json:"p50"`
	P99             float64 `json:"p99"`
	ServerCPUPerAns float64 `json:"server_cpu_us_per_answer,omitempty"`
	BenchCPUPerAns  float64 `json:"bench_cpu_us_per_answer,omitempty"`
}

// refProc is a running reference server.
type refProc struct {
	url string
	// server is "child process" or "in-process".
	server    string
	cpuSource string
	// cpu reads the server's CPU seconds; n is 0 when it cannot.
	cpu  func() (seconds float64, n int)
	stop func()
}

// selfCommand is how to run this binary's harness again: the executable
// and the arguments before Main's own (["bench"] under `ordergrid bench`).
// ok is false when Main's arguments are not the tail of os.Args, or the
// binary is a test.
func selfCommand(args []string) (exe string, prefix []string, ok bool) {
	if len(os.Args) < len(args)+1 || !slices.Equal(os.Args[len(os.Args)-len(args):], args) {
		return "", nil, false
	}
	exe, err := os.Executable()
	if err != nil || strings.HasSuffix(exe, ".test") {
		return "", nil, false
	}
	return exe, slices.Clone(os.Args[1 : len(os.Args)-len(args)]), true
}

// firstLine is an io.Writer that hands on the first line written to it
// and drops the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	line chan string
	sent bool
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	if i := slices.Index(f.buf, '\n'); i >= 0 {
		f.line <- string(f.buf[:i])
		f.sent, f.buf = true, nil
	} else if len(f.buf) > 4096 {
		f.line <- ""
		f.sent, f.buf = true, nil
	}
	return len(p), nil
}

// startReferenceChild runs the reference server in a child process (this
// binary with -serve-reference), so that its CPU is its own. The child
// stops when its stdin closes: stop closes it, and so does the bench
// process's death.
func startReferenceChild(ctx context.Context, exe string, prefix []string, token string, stderr io.Writer) (*refProc, error) {
	cmd := exec.Command(exe, append(prefix, serveReferenceFlag, "127.0.0.1:0")...)
	cmd.Env = append(os.Environ(), referenceTokenEnv+"="+token)
	out := &firstLine{line: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, stderr
	lifeline, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("reference server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the reference server %s: %w", exe, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = lifeline.Close()
		select {
		case <-done:
		case <-time.After(referenceStopMax):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	timer := time.NewTimer(referenceStartMax)
	defer timer.Stop()
	var u string
	select {
	case u = <-out.line:
	case <-done:
		return nil, fmt.Errorf("the reference server exited before listening")
	case <-timer.C:
		stop()
		return nil, fmt.Errorf("the reference server did not listen within %s", referenceStartMax)
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("reference server: %w", ctx.Err())
	}
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		stop()
		return nil, fmt.Errorf("the reference server said %q, not its loopback URL", u)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	return &refProc{url: u, server: "child process", cpuSource: "the reference server's process (/proc/" + pid + "/stat)",
		cpu: func() (float64, int) {
			s, err := procCPUSeconds(pid)
			if err != nil {
				return 0, 0
			}
			return s, 1
		}, stop: stop}, nil
}

// startReferenceInProcess serves the reference from this process: its CPU
// then includes the generator's.
func startReferenceInProcess(token string, logger *slog.Logger) (*refProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("reference server: %w", err)
	}
	srv := newRefHTTPServer(token, logger)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("reference server", slog.Any("error", err))
		}
	}()
	return &refProc{url: "http://" + ln.Addr().String(), server: "in-process",
		cpuSource: "the bench process (the reference server ran in it: includes the generator)",
		cpu: func() (float64, int) {
			s, err := procCPUSeconds("self")
			if err != nil {
				return 0, 0
			}
			return s, 1
		},
		stop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), referenceStopMax)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}}, nil
}

// startReference starts the reference server in a child process when this
// binary can be run again, else in-process.
func startReference(ctx context.Context, token string, args []string, stderr io.Writer, logger *slog.Logger) (*refProc, error) {
	if exe, prefix, ok := selfCommand(args); ok {
		rp, err := startReferenceChild(ctx, exe, prefix, token, stderr)
		if err == nil {
			return rp, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		logger.Warn("reference server in a child process failed; serving it in-process", slog.Any("error", err))
	}
	return startReferenceInProcess(token, logger)
}

// referenceRun runs o's scenario against a fresh reference server: HTTP
// only, no audit, no ledger, no profile. The result holds the reference's
// side; compare adds the node's.
func referenceRun(ctx context.Context, o *Options, args []string, stderr io.Writer) *ReferenceResult {
	if o.Transport != "http" {
		return &ReferenceResult{Skipped: fmt.Sprintf("the reference covers HTTP only; -transport %s has no reference run", o.Transport)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ro := *o
	ro.Token = throwawayToken()
	rp, err := startReference(ctx, ro.Token, args, stderr, logger)
	if err != nil {
		return &ReferenceResult{Skipped: fmt.Sprintf("the reference server did not start: %v", err)}
	}
	defer rp.stop()
	fmt.Fprintf(stderr, "bench: reference run against a do-nothing HTTP intake at %s (%s)\n", rp.url, rp.server)
	ro.URLs, ro.GRPCAddrs = []string{rp.url}, nil
	ro.Audit, ro.Ledger, ro.Stream, ro.Profile, ro.Holds = false, false, false, "", false // a do-nothing server has no limits
	ro.serverCPU = rp.cpu
	rep, err := run(ctx, &ro, stderr)
	if err != nil {
		return &ReferenceResult{Skipped: fmt.Sprintf("the reference run failed: %v", err)}
	}
	res := &ReferenceResult{Order: referenceOrder, Server: rp.server, CPUSource: rp.cpuSource, Reference: sideOf(rep)}
	if rp.server == "in-process" {
		res.Reference.BenchCPU = nil // the same process: its CPU is the server CPU above
	}
	if len(rep.Errors) > 0 {
		res.Errors = rep.Errors
	}
	return res
}

// sideOf is a run's figures for the comparison.
func sideOf(r *Report) *ReferenceSide {
	answered := r.Counts[Created.String()] + r.Counts[Replayed.String()] + r.Counts[OutOfStock.String()]
	s := &ReferenceSide{Seconds: r.Seconds, Accepted: r.Accepted, P50Ms: r.Latency.P50, P99Ms: r.Latency.P99,
		Counts: r.Counts, ServerCPU: r.NodeCPU, BenchCPU: r.benchCPU}
	if r.Seconds > 0 {
		s.Answered = float64(answered) / r.Seconds
	}
	return s
}

// ratio is a over b, 0 when either is missing.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

func usPerAnswer(c *NodeCPU) float64 {
	if c == nil {
		return 0
	}
	return c.MicrosPerOrder
}

// compare adds the node's run and the ratios.
func (r *ReferenceResult) compare(node *Report) {
	if r == nil || r.Reference == nil {
		return
	}
	r.Node = sideOf(node)
	ref, n := r.Reference, r.Node
	r.Ratio = &ReferenceRatio{Accepted: ratio(n.Accepted, ref.Accepted), Answered: ratio(n.Answered, ref.Answered),
		P50: ratio(n.P50Ms, ref.P50Ms), P99: ratio(n.P99Ms, ref.P99Ms),
		ServerCPUPerAns: ratio(usPerAnswer(n.ServerCPU), usPerAnswer(ref.ServerCPU)),
		BenchCPUPerAns:  ratio(usPerAnswer(n.BenchCPU), usPerAnswer(ref.BenchCPU))}
	r.SoldOut = ref.Counts[OutOfStock.String()] > 0 || n.Counts[OutOfStock.String()] > 0
}

// Table is the comparison as rows of cells, a header first: for the text
// and the HTML report.
func (r *ReferenceResult) Table() [][]string {
	num := func(v float64) string {
		if v <= 0 {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	msec := func(v float64) string {
		if v <= 0 {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	}
	x := func(v float64) string {
		if v <= 0 {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 2, 64) + "x"
	}
	cpu := func(c *NodeCPU, cores bool) string {
		if c == nil || c.MicrosPerOrder <= 0 {
			return "n/a"
		}
		s := strconv.FormatFloat(c.MicrosPerOrder, 'f', 1, 64) + "µs"
		if cores {
			s += " (" + strconv.FormatFloat(c.Cores, 'f', 2, 64) + " cores)"
		}
		return s
	}
	rows := [][]string{{"", "accepted/s", "answered/s", "p50", "p99", "server CPU/answer", "bench CPU/answer"}}
	for _, s := range []struct {
		name string
		side *ReferenceSide
	}{{"reference", r.Reference}, {"node", r.Node}} {
		if s.side == nil {
			continue
		}
		rows = append(rows, []string{s.name, num(s.side.Accepted), num(s.side.Answered), msec(s.side.P50Ms), msec(s.side.P99Ms),
			cpu(s.side.ServerCPU, true), cpu(s.side.BenchCPU, false)})
	}
	if q := r.Ratio; q != nil {
		rows = append(rows, []string{"node ÷ reference", x(q.Accepted), x(q.Answered), x(q.P50), x(q.P99), x(q.ServerCPUPerAns), x(q.BenchCPUPerAns)})
	}
	return rows
}

// writeText writes the comparison as a short block of the text report.
func (r *ReferenceResult) writeText(w io.Writer) {
	if r == nil {
		return
	}
	if r.Skipped != "" {
		fmt.Fprintf(w, "reference: skipped: %s\n", r.Skipped)
		return
	}
	fmt.Fprintf(w, "reference: a do-nothing HTTP intake (%s), %s; same scenario and flags, no audit; server CPU of the reference: %s\n",
		r.Server, r.Order, r.CPUSource)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range r.Table() {
		fmt.Fprintf(tw, "  %s\n", strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	if r.SoldOut {
		fmt.Fprintln(w, "  (a run sold out: accepted/s is bounded by -stock over the duration; answered/s and CPU per answer compare)")
	}
	for c, d := range r.Errors {
		fmt.Fprintf(w, "  reference first %s: %s\n", c, d)
	}
}

// serveReference is the child process: it serves the reference on args[0]
// (a loopback address), writes its URL as the first line of stdout, and
// stops when stdin closes or on SIGINT or SIGTERM.
func serveReference(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With(slog.String("process", "reference"))
	if len(args) != 1 {
		logger.Error("usage: " + serveReferenceFlag + " 127.0.0.1:PORT")
		return 2
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		logger.Error("listen", slog.String("addr", args[0]), slog.Any("error", err))
		return 2
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		logger.Error("the reference server listens on loopback only", slog.String("addr", args[0]))
		return 2
	}
	srv := newRefHTTPServer(os.Getenv(referenceTokenEnv), logger)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(stdout, "http://%s\n", ln.Addr()); err != nil {
		logger.Error("announcing the address", slog.Any("error", err))
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
	case err := <-served:
		logger.Error("serving", slog.Any("error", err))
		return 1
	}
	sctx, scancel := context.WithTimeout(context.Background(), referenceStopMax)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown", slog.Any("error", err))
	}
	return 0
}
