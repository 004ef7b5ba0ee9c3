package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Bounds of the audit's work.
const (
	setupWorkers = 64
	replaySample = 500
	// ledgerAuditWorkers fetch and verify proof bundles at once.
	ledgerAuditWorkers = 32
	auditOrdersMax     = 200_000
	// streamsPerNode is how many intake streams -transport grpc-stream opens
	// to each node; the senders share them.
	streamsPerNode = 4
)

// tracker remembers every acknowledged order by idempotency key, and any
// answer that contradicts an earlier one.
type tracker struct {
	mu         sync.Mutex
	ids        map[string]string // key -> order id
	reqs       map[string]*pb.CreateOrderRequest
	qty        map[string]int64 // sku -> units acknowledged
	violations []string
}

func newTracker() *tracker {
	return &tracker{ids: map[string]string{}, reqs: map[string]*pb.CreateOrderRequest{}, qty: map[string]int64{}}
}

func (t *tracker) track(req *pb.CreateOrderRequest, o Outcome) {
	if o.Class != Created && o.Class != Replayed {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, seen := t.ids[req.IdempotencyKey]
	switch {
	case !seen:
		t.ids[req.IdempotencyKey] = o.ID
		t.reqs[req.IdempotencyKey] = req
		for _, l := range req.Lines {
			t.qty[l.Sku] += l.Qty
		}
	case prev != o.ID && len(t.violations) < 20:
		t.violations = append(t.violations, fmt.Sprintf("key %s answered order %s, earlier %s", req.IdempotencyKey, o.ID, prev))
	}
	// Two answers 201 for one key happen when a retry overtakes its first
	// attempt still in flight: the same order either way, so not counted.
}

func build(o *Options, admin *httpTransport) *Scenario {
	switch o.Scenario {
	case "surge":
		return surge(o)
	case "spread":
		return spread(o)
	case "lifecycle":
		return lifecycle(o, admin)
	default:
		return hotSKU(o)
	}
}

func transports(o *Options) ([]Transport, error) {
	var ts []Transport
	if o.Transport == "grpc" || o.Transport == "grpc-stream" {
		addrs := o.GRPCAddrs
		if len(addrs) == 0 {
			for _, u := range o.URLs {
				p, err := url.Parse(u)
				if err != nil {
					return nil, err
				}
				addrs = append(addrs, p.Hostname()+":9090")
			}
		}
		for _, a := range addrs {
			if o.Transport == "grpc-stream" {
				for k := 0; k < streamsPerNode; k++ {
					st, err := newStream(a, o.Token)
					if err != nil {
						return nil, err
					}
					ts = append(ts, st)
				}
				continue
			}
			g, err := newGRPC(a, o.Token)
			if err != nil {
				return nil, err
			}
			ts = append(ts, g)
		}
		return ts, nil
	}
	conns := o.Concurrency
	if o.Rate > 0 || o.Scenario == "surge" {
		conns = sendersMax
	}
	for _, u := range o.URLs {
		ts = append(ts, newHTTP(u, conns, o.Token))
	}
	return ts, nil
}

// reachable checks every node answers /readyz, within a few seconds.
func reachable(ctx context.Context, o *Options) error {
	for _, u := range o.URLs {
		h := newHTTP(u, 1, o.Token)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		code, _, body, err := h.do(cctx, "GET", "/readyz", nil)
		cancel()
		if err != nil {
			return fmt.Errorf("node %s is unreachable: %w", u, err)
		}
		if code != 200 {
			return fmt.Errorf("node %s is not ready: %d %s", u, code, body)
		}
	}
	return nil
}

// benchLimitQty is the bench's purchase limit per customer and SKU: a
// bench customer never reaches it, so the limits cost their checks and
// counters and hold nothing.
const benchLimitQty = 1_000_000

// putLimits puts purchase limits per customer on every SKU of the run
// (one rule per 1,000 SKUs).
func putLimits(ctx context.Context, h *httpTransport, run string, stock map[string]map[string]int64) error {
	skus := make([]string, 0, len(stock))
	for sku := range stock {
		skus = append(skus, sku)
	}
	slices.Sort(skus)
	for i := 0; i < len(skus); i += 1000 {
		id := fmt.Sprintf("bench-%s-%d", strings.ToLower(run), i/1000)
		body, err := json.Marshal(map[string]any{"skus": skus[i:min(i+1000, len(skus))], "per": "customer", "max_qty": benchLimitQty,
			"note": "bench: checked and counted, never reached"})
		if err != nil {
			return err
		}
		code, _, answer, err := h.do(ctx, "PUT", "/v1/limits/"+url.PathEscape(id), body)
		if err == nil && code != http.StatusCreated && code != http.StatusOK {
			err = fmt.Errorf("PUT /v1/limits/%s: %d %s", id, code, answer)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setStock sets every SKU's stock, 64 at a time, with a progress line.
func setStock(ctx context.Context, h *httpTransport, stock map[string]map[string]int64, progress io.Writer) error {
	type put struct {
		sku, wh string
		qty     int64
	}
	var puts []put
	for sku, whs := range stock {
		for wh, q := range whs {
			puts = append(puts, put{sku, wh, q})
		}
	}
	sort.Slice(puts, func(i, j int) bool { return puts[i].sku+puts[i].wh < puts[j].sku+puts[j].wh })
	var mu sync.Mutex
	done := 0
	err := parallel(puts, setupWorkers, func(p put) error {
		code, _, body, err := h.do(ctx, "PUT", "/v1/skus/"+url.PathEscape(p.sku)+"/stock/"+url.PathEscape(p.wh),
			[]byte(`{"on_hand":`+strconv.FormatInt(p.qty, 10)+`}`))
		if err == nil && code != 200 {
			err = fmt.Errorf("PUT stock of %s at %s: %d %s", p.sku, p.wh, code, body)
		}
		mu.Lock()
		defer mu.Unlock()
		if done++; progress != nil && (done%1000 == 0 || done == len(puts)) {
			fmt.Fprintf(progress, "\rsetting stock %d/%d   ", done, len(puts))
		}
		return err
	})
	if progress != nil && len(puts) >= 1000 {
		fmt.Fprintln(progress)
	}
	return err
}

// run sets up, loads, audits and returns the report.
func run(ctx context.Context, o *Options, stderr io.Writer) (*Report, error) {
	if err := reachable(ctx, o); err != nil {
		return nil, err
	}
	admin := newHTTP(o.URLs[0], setupWorkers, o.Token)
	sc := build(o, admin)
	var progress io.Writer
	if o.Progress {
		progress = stderr
	}
	if err := setStock(ctx, admin, sc.Stock, progress); err != nil {
		return nil, fmt.Errorf("setting up %s: %w", sc.Name, err)
	}
	if o.Holds {
		if err := putLimits(ctx, admin, o.Run, sc.Stock); err != nil {
			return nil, fmt.Errorf("setting up %s: %w", sc.Name, err)
		}
	}
	ts, err := transports(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range ts {
			t.Close()
		}
	}()
	before, _ := scrape(admin.client, o.URLs[0])
	serverCPU := func() (float64, int) { return cpuSeconds(admin.client, o.URLs) }
	if o.serverCPU != nil {
		serverCPU = o.serverCPU
	}
	var watch *streamWatch
	if o.Stream {
		// Open before the load: every event of the run crosses it, live.
		if watch, err = watchStream(&http.Client{}, o.URLs[0], o.Token); err != nil {
			return nil, fmt.Errorf("opening the event stream (-stream=false to run without): %w", err)
		}
	}
	cpuBefore, cpuNodes := serverCPU()
	benchBefore, benchErr := procCPUSeconds("self")
	tr := newTracker()
	start := time.Now()
	rec := NewRecorder(start)
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	if progress != nil {
		go showProgress(runCtx, rec, progress)
	}
	var profiles chan []string
	if o.Profile != "" {
		profiles = make(chan []string, 1)
		go func() {
			files, err := profileRun(runCtx, o.URLs[0], o.Profile, o.Duration)
			if err != nil {
				fmt.Fprintf(stderr, "bench: profiling: %v\n", err)
			}
			profiles <- files
		}()
	}
	rate := sc.Rate
	if rate == nil && o.Rate > 0 {
		rate = func(time.Duration) float64 { return o.Rate }
	}
	if rate != nil {
		openLoop(runCtx, ts, rate, sc.Work, rec, tr.track)
	} else {
		closedLoop(runCtx, ts, o.Concurrency, sc.Work, rec, tr.track)
	}
	elapsed := time.Since(start)
	cpuAfter, cpuNodesAfter := serverCPU()
	benchAfter, benchErrAfter := procCPUSeconds("self")
	if progress != nil {
		fmt.Fprintln(progress)
	}
	rep := newReport(o, sc, rec, elapsed, rate)
	if cpuNodesAfter == cpuNodes {
		c := rec.Snapshot()
		rep.NodeCPU = nodeCPU(cpuBefore, cpuAfter, cpuNodes, elapsed, c[Created]+c[Replayed]+c[OutOfStock])
	}
	if benchErr == nil && benchErrAfter == nil {
		c := rec.Snapshot()
		rep.benchCPU = nodeCPU(benchBefore, benchAfter, 1, elapsed, c[Created]+c[Replayed]+c[OutOfStock])
	}
	if profiles != nil {
		rep.Profiles = <-profiles
	}
	if o.Audit {
		rep.Audit = audit(ctx, o, sc, admin, ts[0], tr, progress)
	} else {
		rep.Audit = AuditResult{Passed: true, Skipped: true}
	}
	counts := rec.Snapshot()
	rep.Audit.add("orders accepted", counts[Created] > 0, "%d created", counts[Created])
	rep.Audit.add("no 5xx answer", counts[ServerError] == 0, "%d 5xx (other than 503) %s", counts[ServerError], rec.details[ServerError])
	rep.Audit.add("no unexpected 4xx", counts[Conflict] == 0, "%d %s", counts[Conflict], rec.details[Conflict])
	if o.Ledger {
		ids := make([]string, 0, 1000)
		tr.mu.Lock()
		for _, id := range tr.ids {
			if ids = append(ids, id); len(ids) == cap(ids) {
				break
			}
		}
		tr.mu.Unlock()
		rep.Ledger = ledgerStats(admin.client, o.URLs[0], before, elapsed, ids)
	}
	if watch != nil {
		var size int64
		if m, err := scrape(admin.client, o.URLs[0]); err == nil {
			size = int64(gauge(m, "ordergrid_ledger_size_leaves"))
		}
		rep.Stream = watch.stop(size)
		rep.Audit.add("event stream: every index once, in order", rep.Stream.Gaps == 0 && rep.Stream.Repeats == 0 && rep.Stream.Error == "",
			"%d events, %d missing, %d repeated %s", rep.Stream.Events, rep.Stream.Gaps, rep.Stream.Repeats, rep.Stream.Error)
	}
	return rep, nil
}

func showProgress(ctx context.Context, rec *Recorder, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last [classes]int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c := rec.Snapshot()
			ok := c[Created] + c[Replayed] - last[Created] - last[Replayed]
			fmt.Fprintf(w, "\r%5.0fs  accepted %d/s  out-of-stock %d/s  429 %d/s  errors %d/s   total accepted %d   ",
				time.Since(rec.start).Seconds(), ok, c[OutOfStock]-last[OutOfStock], c[Admission]-last[Admission],
				c[Conflict]+c[Unavailable]+c[ServerError]+c[TransportError]-last[Conflict]-last[Unavailable]-last[ServerError]-last[TransportError],
				c[Created]+c[Replayed])
			last = c
		}
	}
}
