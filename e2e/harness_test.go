package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/ordergrid once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ordergrid-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ordergrid")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/ordergrid")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("building ordergrid: %v", buildErr)
	}
	return binPath
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
// freePorts finds n free ports below the kernel's ephemeral range, so no
// outgoing connection takes one between the probe and the node's bind (or
// while a node is down for a restart).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	rng := mrand.New(mrand.NewSource(time.Now().UnixNano()))
	top := ephemeralLow()
	var ports []int
	seen := map[int]bool{}
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt > 1000 {
			t.Fatalf("no %d free ports below %d", n, top)
		}
		p := 10000 + rng.Intn(top-10000)
		if seen[p] {
			continue
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	return ports
}

// node is one ordergrid process. Its ports and data directory stay the same
// across restarts.
type node struct {
	t       *testing.T
	dataDir string
	args    []string
	http    string // base URL
	grpc    string
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
}

func newNode(t *testing.T, extra ...string) *node {
	t.Helper()
	p := freePorts(t, 5)
	dir := t.TempDir()
	n := &node{t: t, dataDir: filepath.Join(dir, "data"),
		http: fmt.Sprintf("http://127.0.0.1:%d", p[0]), grpc: fmt.Sprintf("127.0.0.1:%d", p[1])}
	n.args = append([]string{"serve", "--data-dir", n.dataDir,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", p[0]), "--grpc-addr", n.grpc,
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", p[2]), "--actor-addr", fmt.Sprintf("127.0.0.1:%d", p[3]),
		"--actor-provider-port", strconv.Itoa(p[4]), "--log-level", "warn"}, extra...)
	var err error
	n.log, err = os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.kill()
		n.log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(n.log.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("node log tail:\n%s", b)
		}
	})
	return n
}

// start runs the process and waits for /readyz.
func (n *node) start() {
	n.t.Helper()
	n.cmd = exec.Command(binary(n.t), n.args...)
	n.cmd.Stdout = n.log
	n.cmd.Stderr = n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(n.cmd, n.exited)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.t.Fatalf("node exited during start")
		default:
		}
		resp, err := http.Get(n.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("node not ready within 60s")
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *node) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("node did not stop within 30s of SIGTERM")
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		n.t.Fatalf("node exited with %d after SIGTERM", code)
	}
	n.cmd = nil
}

var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256},
}

type response struct {
	code    int
	body    []byte
	headers http.Header
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func do(ctx context.Context, method, url string, body any, headers ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i]) // e.g. no Authorization at all
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, body: raw, headers: resp.Header}, err
}

func (n *node) must(method, path string, body any, wantCode int, headers ...string) response {
	n.t.Helper()
	r, err := do(context.Background(), method, n.http+path, body, headers...)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.code != wantCode {
		n.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.code, wantCode, r.body)
	}
	return r
}

type stockLevel struct {
	Warehouse string `json:"warehouse"`
	OnHand    int64  `json:"on_hand"`
	Available int64  `json:"available"`
	Pending   int64  `json:"pending"`
	Committed int64  `json:"committed"`
}

type skuStock struct {
	SKU        string       `json:"sku"`
	Warehouses []stockLevel `json:"warehouses"`
	Total      stockLevel   `json:"total"`
}

type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Lines  []struct {
		SKU       string `json:"sku"`
		Qty       int64  `json:"qty"`
		Warehouse string `json:"warehouse"`
	} `json:"lines"`
	Version uint64 `json:"version"`
}

type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	SKU    string `json:"sku"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
	CurrentStatus string `json:"current_status"`
}

func (n *node) stock(sku string) skuStock {
	n.t.Helper()
	var s skuStock
	n.must("GET", "/v1/skus/"+sku, nil, 200).json(n.t, &s)
	return s
}

// checkConserved asserts on_hand = available + pending + committed and
// available >= 0 for every warehouse of sku, and returns its stock.
func (n *node) checkConserved(sku string) skuStock {
	n.t.Helper()
	s := n.stock(sku)
	for _, w := range append(s.Warehouses, s.Total) {
		if w.OnHand != w.Available+w.Pending+w.Committed || w.Available < 0 || w.Pending < 0 || w.Committed < 0 {
			n.t.Fatalf("stock not conserved for %s@%s: %+v", sku, w.Warehouse, w)
		}
	}
	return s
}

func orderBody(channelOrderID, sku string, qty int64) map[string]any {
	return map[string]any{
		"channel": "douyin", "channel_order_id": channelOrderID, "currency": "CNY",
		"customer": map[string]any{"id": "c-" + channelOrderID, "name": "Zhang San", "phone": "13800000000", "address": "1 Nanjing Rd"},
		"lines":    []map[string]any{{"sku": sku, "qty": qty, "unit_price": "99.00"}},
	}
}

// clusterMasterKeys is the master key line every node of a test cluster
// shares, as a cluster's nodes must: a key one node wraps, another
// unwraps.
var clusterMasterKeys = sync.OnceValue(func() string {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return "k1 " + base64.StdEncoding.EncodeToString(k)
})

// clusterEnv is the environment of a test cluster's node process.
func clusterEnv() []string {
	return append(os.Environ(), "ORDERGRID_MASTER_KEYS="+clusterMasterKeys())
}
