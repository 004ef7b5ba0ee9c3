package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ordergrid/ordergrid/routing"
)

// loadWarehousesFile reads the configuration's warehouses file: a YAML
// document with a list "warehouses:", each entry validated like a PUT body.
func loadWarehousesFile(path string) ([]*routing.Warehouse, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing.warehouses_file: %w", err)
	}
	var doc struct {
		Warehouses []map[string]any `yaml:"warehouses"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("routing.warehouses_file %s: %w", path, err)
	}
	var out []*routing.Warehouse
	for i, entry := range doc.Warehouses {
		js, err := json.Marshal(entry)
		if err != nil {
			return nil, fmt.Errorf("routing.warehouses_file %s: warehouses[%d]: %w", path, i, err)
		}
		w, err := routing.ParseWarehouse(js, "")
		if err != nil {
			return nil, fmt.Errorf("routing.warehouses_file %s: warehouses[%d] (%v): %w", path, i, entry["id"], err)
		}
		out = append(out, w)
	}
	return out, nil
}

const routingUsage = `usage:
  ordergrid routing simulate --node URL [--token T] --strategy NAME[@V] ... [--draft FILE.json ...]
                             (--orders FILE.jsonl | --synthetic N [--seed S] [--synthetic-warehouses] | --from T --to T)
                             [--json]
      replays orders against up to 8 strategies and compares them (POST /v1/routing/simulations)
  ordergrid routing synth --orders N [--seed S] [--warehouses W] [--skus K] [--out FILE]
      writes a seeded synthetic order set as JSON Lines (the format --orders reads)`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runRouting(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, routingUsage)
		return 2
	}
	switch args[0] {
	case "simulate":
		return runSimulate(args[1:], stdout, stderr)
	case "synth":
		return runSynth(args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, routingUsage)
		return 2
	}
}

func runSynth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routing synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := routing.SyntheticSpec{}
	fs.IntVar(&spec.Orders, "orders", 1000, "orders to write")
	fs.Uint64Var(&spec.Seed, "seed", 1, "seed: the same seed writes the same orders")
	fs.IntVar(&spec.Warehouses, "warehouses", 10, "warehouses of the synthetic world (for its regions)")
	fs.IntVar(&spec.SKUs, "skus", 200, "distinct SKUs")
	out := fs.String("out", "-", "file to write, - for standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := spec.Validate(); err != nil {
		fmt.Fprintf(stderr, "ordergrid routing synth: %v\n", err)
		return 2
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "ordergrid routing synth: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	next := routing.SyntheticOrders(spec)
	for {
		o, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err := enc.Encode(o.Doc()); err != nil {
			fmt.Fprintf(stderr, "ordergrid routing synth: %v\n", err)
			return 1
		}
	}
	if err := bw.Flush(); err != nil {
		fmt.Fprintf(stderr, "ordergrid routing synth: %v\n", err)
		return 1
	}
	return 0
}

func runSimulate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routing simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	node := fs.String("node", "http://127.0.0.1:8080", "a node's HTTP address")
	token := fs.String("token", cmp.Or(os.Getenv("ORDERGRID_TOKEN"), os.Getenv(bootstrapTokenEnv)), "API token (role ops or admin)")
	var strategies, drafts multiFlag
	fs.Var(&strategies, "strategy", "a stored strategy, NAME or NAME@VERSION (repeat)")
	fs.Var(&drafts, "draft", "a strategy document file tried without storing it (repeat)")
	orders := fs.String("orders", "", "JSON Lines file of orders (see `ordergrid routing synth`)")
	synthetic := fs.Int("synthetic", 0, "replay this many seeded synthetic orders")
	seed := fs.Uint64("seed", 1, "seed of the synthetic orders")
	synthWarehouses := fs.Bool("synthetic-warehouses", false, "with --synthetic: the synthetic world's warehouses and stock instead of the grid's")
	from := fs.String("from", "", "replay the orders created from this time (RFC 3339)")
	to := fs.String("to", "", "... until this time")
	asJSON := fs.Bool("json", false, "print the JSON report instead of the table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req := map[string]any{"strategies": []string(strategies)}
	var docs []json.RawMessage
	for _, d := range drafts {
		raw, err := os.ReadFile(d)
		if err != nil {
			fmt.Fprintf(stderr, "ordergrid routing simulate: %v\n", err)
			return 2
		}
		docs = append(docs, raw)
	}
	req["drafts"] = docs
	sources := 0
	switch {
	case *orders != "":
		sources++
	}
	if *synthetic > 0 {
		sources++
		req["source"] = map[string]any{"synthetic": routing.SyntheticSpec{Seed: *seed, Orders: *synthetic}}
		if *synthWarehouses {
			req["warehouses"] = "synthetic"
		}
	}
	if *from != "" || *to != "" {
		sources++
		req["source"] = map[string]any{"log": map[string]string{"from": *from, "to": *to}}
	}
	if sources != 1 {
		fmt.Fprintln(stderr, "ordergrid routing simulate: give exactly one of --orders, --synthetic, --from/--to")
		return 2
	}
	spec, err := json.Marshal(req)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid routing simulate: %v\n", err)
		return 2
	}
	var body io.Reader = strings.NewReader(string(spec))
	contentType := "application/json"
	var sent atomic.Int64
	if *orders != "" {
		f, err := os.Open(*orders)
		if err != nil {
			fmt.Fprintf(stderr, "ordergrid routing simulate: %v\n", err)
			return 2
		}
		defer f.Close()
		contentType = "application/x-ndjson"
		body = io.MultiReader(strings.NewReader(string(spec)+"\n"), &countingReader{r: f, n: &sent})
	}
	httpReq, err := http.NewRequestWithContext(context.Background(), http.MethodPost, strings.TrimRight(*node, "/")+"/v1/routing/simulations", body)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid routing simulate: %v\n", err)
		return 2
	}
	httpReq.Header.Set("Content-Type", contentType)
	httpReq.Header.Set("Authorization", "Bearer "+*token)
	if !*asJSON {
		httpReq.Header.Set("Accept", "text/plain")
	}
	done := make(chan struct{})
	go showSimProgress(stderr, &sent, *orders != "", done)
	resp, err := http.DefaultClient.Do(httpReq)
	close(done)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid routing simulate: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		fmt.Fprintf(stderr, "ordergrid routing simulate: %s: %s\n", resp.Status, strings.TrimSpace(string(msg)))
		return 1
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		fmt.Fprintf(stderr, "ordergrid routing simulate: %v\n", err)
		return 1
	}
	return 0
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// showSimProgress prints, every second on a terminal line, how much was
// sent and how long the node has been simulating.
func showSimProgress(w io.Writer, sent *atomic.Int64, uploading bool, done <-chan struct{}) {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	shown := false
	for {
		select {
		case <-done:
			if shown {
				fmt.Fprintln(w)
			}
			return
		case <-tick.C:
			shown = true
			fmt.Fprintf(w, "\rsimulating: %s elapsed", time.Since(start).Round(time.Second))
			if uploading {
				fmt.Fprintf(w, ", %.1f MB of orders sent", float64(sent.Load())/1e6)
			}
		}
	}
}
