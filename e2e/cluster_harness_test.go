package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
)

// testCluster is three real ordergrid processes started by scripts/cluster-up.sh.
type testCluster struct {
	t    *testing.T
	dir  string
	env  []string
	urls []string
}

// freeBase finds 30 consecutive free ports below the kernel's ephemeral
// range: a port in that range, free when probed, can be taken by any
// process's outgoing connection before the node binds it.
func freeBase(t *testing.T) int {
	t.Helper()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	top := ephemeralLow() - 30
	for attempt := 0; attempt < 50; attempt++ {
		base := 10000 + rng.Intn(top-10000)
		ok := true
		for p := base; p < base+30 && ok; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no 30 free consecutive ports")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range
// (Linux's default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo < 12000 {
		return 32768
	}
	return lo
}

func newCluster(t *testing.T, extraArgs string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir()}
	c.env = append(clusterEnv(), "ORDERGRID_BIN="+binary(t), "ORDERGRID_BASE_PORT="+strconv.Itoa(freeBase(t)),
		"ORDERGRID_EXTRA_ARGS=--log-level warn "+extraArgs)
	t.Cleanup(func() {
		for i := 1; i <= 3; i++ {
			c.signal(i, syscall.SIGCONT)
		}
		cmd := exec.Command("../scripts/cluster-down.sh", c.dir)
		cmd.Env = c.env
		_ = cmd.Run()
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i)))
				if err != nil {
					t.Logf("node%d log: %v", i, err)
				}
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("node%d log tail:\n%s", i, b)
			}
		}
	})
	c.up()
	return c
}

// up runs scripts/cluster-up.sh: starts the nodes that are not running and
// waits until all are ready. It returns how long that took.
func (c *testCluster) up() time.Duration {
	c.t.Helper()
	start := time.Now()
	cmd := exec.Command("../scripts/cluster-up.sh", c.dir)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("cluster-up: %v\n%s", err, stderr.String())
	}
	var urls []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if u := strings.TrimSpace(sc.Text()); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) != 3 {
		c.t.Fatalf("cluster-up printed %q", out)
	}
	if c.urls == nil {
		c.urls = urls // set once: load goroutines read it while nodes restart
	} else if strings.Join(c.urls, ",") != strings.Join(urls, ",") {
		c.t.Fatalf("a restarted cluster moved: %v, was %v", urls, c.urls)
	}
	return time.Since(start)
}

func (c *testCluster) pid(i int) int {
	b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.pid", i)))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (c *testCluster) signal(i int, sig syscall.Signal) {
	if pid := c.pid(i); pid > 0 {
		_ = syscall.Kill(pid, sig)
	}
}

// kill9 kills node i and waits until it is gone.
func (c *testCluster) kill9(i int) {
	c.t.Helper()
	pid := c.pid(i)
	if pid == 0 {
		c.t.Fatalf("node%d has no pid", i)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			c.t.Fatalf("node%d survived SIGKILL", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM to node i and waits until it is gone.
func (c *testCluster) stop(i int) {
	c.t.Helper()
	pid := c.pid(i)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			c.t.Fatalf("node%d did not stop on SIGTERM", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *testCluster) node(i int) *node { return &node{t: c.t, http: c.urls[i-1]} }

type clusterView struct {
	Partitions []struct {
		ID       uint32 `json:"id"`
		Leader   string `json:"leader"`
		Replicas []struct {
			Node         string `json:"node"`
			AppliedIndex uint64 `json:"applied_index"`
			Lag          uint64 `json:"lag"`
			StateHash    string `json:"state_hash"`
		} `json:"replicas"`
	} `json:"partitions"`
}

func (c *testCluster) view(i int, hashes bool) clusterView {
	c.t.Helper()
	var v clusterView
	path := "/v1/cluster"
	if hashes {
		path += "?state_hash=true"
	}
	c.node(i).must("GET", path, nil, 200).json(c.t, &v)
	return v
}

// leaderOf returns the node number leading the partition that holds key.
func (c *testCluster) leaderOf(key string, from int) int {
	c.t.Helper()
	v := c.view(from, false)
	p := v.Partitions[cluster.PartitionIndex(key, len(v.Partitions))]
	n, err := strconv.Atoi(strings.TrimPrefix(p.Leader, "node"))
	if err != nil {
		c.t.Fatalf("partition %d has no leader (%q)", p.ID, p.Leader)
	}
	return n
}

// waitAgree waits until every replica of every partition has the same
// applied state (same state hash) as seen from node from.
func (c *testCluster) waitAgree(from int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := c.view(from, true)
		agree := true
		why := ""
		for _, p := range v.Partitions {
			if len(p.Replicas) < 3 {
				agree, why = false, fmt.Sprintf("partition %d: %d replicas answered", p.ID, len(p.Replicas))
				break
			}
			for _, r := range p.Replicas {
				if r.StateHash != p.Replicas[0].StateHash {
					agree, why = false, fmt.Sprintf("partition %d: %s differs from %s", p.ID, r.Node, p.Replicas[0].Node)
				}
			}
		}
		if agree {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replicas do not agree after %s: %s", within, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// load sends orders for sku to every node of the cluster from clients
// goroutines until stop is closed. A client whose call fails (the node died,
// 5xx) retries the same request on the next node, as a real client would;
// 10% of requests repeat an earlier key.
type load struct {
	mu       sync.Mutex
	acked    map[string]string // idempotency key -> order id
	rejected map[string]bool   // keys answered 409 insufficient-stock
	lastOK   atomic.Int64      // unix nanos of the latest 201/200
	lastNew  atomic.Int64      // unix nanos of the latest 201 (a new reservation)
	created  [][2]int64        // (sent, answered) unix nanos of every 201
	errors   atomic.Int64
	requests atomic.Int64
}

// firstCreatedAfter returns how long after t the first order whose request
// was sent after t was created, or false if none was.
func (l *load) firstCreatedAfter(t time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := int64(-1)
	for _, c := range l.created {
		if c[0] >= t.UnixNano() && (best < 0 || c[1] < best) {
			best = c[1]
		}
	}
	return time.Duration(best - t.UnixNano()), best >= 0
}

// count is the number of acknowledged orders so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func runLoad(t *testing.T, c *testCluster, sku string, clients int, stop <-chan struct{}) (*load, *sync.WaitGroup) {
	l := &load{acked: map[string]string{}, rejected: map[string]bool{}}
	var seq atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			target := w % 3
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				key := fmt.Sprintf("%s-%d", sku, i)
				if i > 50 && rng.Intn(10) == 0 {
					key = fmt.Sprintf("%s-%d", sku, 1+rng.Int63n(i-1))
				}
				for attempt := 0; attempt < 100; attempt++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					sent := time.Now().UnixNano()
					r, err := do(ctx, "POST", c.urls[target]+"/v1/orders", orderBody(key, sku, 1), "Idempotency-Key", key)
					cancel()
					l.requests.Add(1)
					if err != nil || r.code >= 500 || r.code == 429 {
						l.errors.Add(1)
						target = (target + 1) % 3
						time.Sleep(50 * time.Millisecond)
						continue
					}
					l.mu.Lock()
					switch r.code {
					case 201, 200:
						var o order
						r.json(t, &o)
						if prev, ok := l.acked[key]; ok && prev != o.ID {
							t.Errorf("key %s answered orders %s and %s", key, prev, o.ID)
						}
						l.acked[key] = o.ID
						l.lastOK.Store(time.Now().UnixNano())
						if r.code == 201 {
							now := time.Now().UnixNano()
							l.lastNew.Store(now)
							l.created = append(l.created, [2]int64{sent, now})
						}
					case 409:
						l.rejected[key] = true
					default:
						t.Errorf("key %s: status %d: %s", key, r.code, r.body)
					}
					l.mu.Unlock()
					break
				}
			}
		}(w)
	}
	return l, &wg
}

// audit checks, through node from: every acknowledged order is there, a
// retry of its key answers the same order, the SKU is not oversold and its
// stock is conserved.
func (l *load) audit(t *testing.T, c *testCluster, from int, sku string, onHand int64) {
	t.Helper()
	n := c.node(from)
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, id := range l.acked {
		var o order
		n.eventually("GET", "/v1/orders/"+id, nil, 200).json(t, &o)
		if o.Status != "pending_payment" {
			t.Fatalf("order %s is %s", id, o.Status)
		}
		if l.rejected[key] {
			// A 409 for a key that also has an order: only a retry racing
			// its own first attempt may see that; the order must stand.
			continue
		}
	}
	s := n.checkConserved(sku)
	if int64(len(l.acked)) > onHand || s.Total.OnHand != onHand {
		t.Fatalf("oversold: %d orders acknowledged for %d on hand (%+v)", len(l.acked), onHand, s.Total)
	}
	// Nothing releases stock during these runs, so a refusal for want of
	// stock means none was left, then and now.
	if len(l.rejected) > 0 && s.Total.Available > 0 {
		t.Fatalf("%d requests refused as out of stock, yet %d units are available", len(l.rejected), s.Total.Available)
	}
	if s.Total.Pending+s.Total.Committed < int64(len(l.acked)) {
		t.Fatalf("%d orders acknowledged but only %d units reserved", len(l.acked), s.Total.Pending+s.Total.Committed)
	}
	// Exactly one result per key: a retry now answers the same order.
	checked := 0
	for key, id := range l.acked {
		var o order
		n.eventually("POST", "/v1/orders", orderBody(key, sku, 1), 200, "Idempotency-Key", key).json(t, &o)
		if o.ID != id {
			t.Fatalf("retry of %s answered %s, first %s", key, o.ID, id)
		}
		if checked++; checked >= 300 {
			break
		}
	}
}

// eventually is must that retries a 503 (a grain re-placed after a node
// came or went answers within a few request timeouts), as a client would.
func (n *node) eventually(method, path string, body any, wantCode int, headers ...string) response {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := do(context.Background(), method, n.http+path, body, headers...)
		if err == nil && r.code == wantCode {
			return r
		}
		if time.Now().After(deadline) || (err == nil && r.code != http.StatusServiceUnavailable) {
			if err != nil {
				n.t.Fatalf("%s %s: %v", method, path, err)
			}
			n.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.code, wantCode, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
