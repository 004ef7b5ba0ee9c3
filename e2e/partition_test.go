package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netnsCluster runs three nodes, each in its own network namespace joined by
// a bridge, so the test can cut one node off the others with routes while
// still talking to all three itself.
type netnsCluster struct {
	t      *testing.T
	prefix string // interface and namespace name prefix
	subnet string // "10.200.N"
	dir    string
	procs  [3]*exec.Cmd
	urls   [3]string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetnsCluster(t *testing.T) *netnsCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 is not installed (scripts/test.sh installs it)")
	}
	r := rand.New(rand.NewSource(time.Now().UnixNano())).Intn(200) + 20
	c := &netnsCluster{t: t, prefix: fmt.Sprintf("og%d", r), subnet: fmt.Sprintf("10.201.%d", r), dir: t.TempDir()}
	br := c.prefix + "br"
	t.Cleanup(c.teardown)
	if out, err := exec.Command("ip", "link", "add", br, "type", "bridge").CombinedOutput(); err != nil {
		t.Skipf("this machine does not let the test make network devices (ip link add: %v: %s)", err, out)
	}
	ipCmd(t, "addr", "add", c.subnet+".254/24", "dev", br)
	ipCmd(t, "link", "set", br, "up")
	for i := 1; i <= 3; i++ {
		ns, v, p := c.ns(i), fmt.Sprintf("%sv%d", c.prefix, i), fmt.Sprintf("%sp%d", c.prefix, i)
		ipCmd(t, "netns", "add", ns)
		ipCmd(t, "link", "add", v, "type", "veth", "peer", "name", p)
		ipCmd(t, "link", "set", p, "netns", ns)
		ipCmd(t, "link", "set", v, "master", br)
		ipCmd(t, "link", "set", v, "up")
		ipCmd(t, "netns", "exec", ns, "ip", "addr", "add", c.ip(i)+"/24", "dev", p)
		ipCmd(t, "netns", "exec", ns, "ip", "link", "set", p, "up")
		ipCmd(t, "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
	for i := 1; i <= 3; i++ {
		c.start(i)
	}
	for i := 1; i <= 3; i++ {
		c.waitReady(i)
	}
	return c
}

func (c *netnsCluster) ns(i int) string { return fmt.Sprintf("%sn%d", c.prefix, i) }
func (c *netnsCluster) ip(i int) string { return fmt.Sprintf("%s.%d", c.subnet, i) }

func (c *netnsCluster) start(i int) {
	var peers, providers []string
	for j := 1; j <= 3; j++ {
		peers = append(peers, fmt.Sprintf("node%d=%s:7000", j, c.ip(j)))
		providers = append(providers, c.ip(j)+":7002")
	}
	logf, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i)))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", c.ns(i), binary(c.t), "serve", "--node-id", fmt.Sprintf("node%d", i),
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i)), "--log-level", "warn",
		"--http-addr", c.ip(i)+":8080", "--grpc-addr", "", "--raft-addr", c.ip(i)+":7000", "--raft-peers", strings.Join(peers, ","),
		"--actor-addr", c.ip(i)+":7001", "--actor-provider-port", "7002", "--actor-provider-hosts", strings.Join(providers, ","),
		"--actor-request-timeout", "3s")
	cmd.Env = clusterEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i-1] = cmd
	c.urls[i-1] = "http://" + c.ip(i) + ":8080"
}

func (c *netnsCluster) waitReady(i int) {
	for deadline := time.Now().Add(90 * time.Second); ; {
		if code, err := healthGet(c.urls[i-1] + "/readyz"); err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node%d not ready", i)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cut isolates node i from the other nodes (not from the test) with
// blackhole routes on both sides; heal removes them.
func (c *netnsCluster) cut(i int, heal bool) {
	op := "add"
	if heal {
		op = "del"
	}
	for j := 1; j <= 3; j++ {
		if j == i {
			continue
		}
		ipCmd(c.t, "netns", "exec", c.ns(i), "ip", "route", op, "blackhole", c.ip(j)+"/32")
		ipCmd(c.t, "netns", "exec", c.ns(j), "ip", "route", op, "blackhole", c.ip(i)+"/32")
	}
}

func (c *netnsCluster) teardown() {
	for i, p := range c.procs {
		if p != nil && p.Process != nil {
			_ = p.Process.Signal(syscall.SIGKILL)
			_ = p.Wait()
		}
		if c.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			c.t.Logf("node%d log tail:\n%s", i+1, b)
		}
	}
	for i := 1; i <= 3; i++ {
		_ = exec.Command("ip", "netns", "del", c.ns(i)).Run()
		_ = exec.Command("ip", "link", "del", fmt.Sprintf("%sv%d", c.prefix, i)).Run()
	}
	_ = exec.Command("ip", "link", "del", c.prefix+"br").Run()
}

// A network partition cuts one node off: the minority side acknowledges no
// write while cut off, the majority goes on; after healing, every node agrees
// and every acknowledged order is there.
func TestClusterNetworkPartition(t *testing.T) {
	c := newNetnsCluster(t)
	tc := &testCluster{t: t, urls: c.urls[:]}
	const sku, onHand = "HOT-NET", 100_000
	tc.node(1).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
	for i := 1; i <= 3; i++ {
		tc.node(i).eventually("POST", "/v1/orders", orderBody(fmt.Sprintf("net-pre-%d", i), sku, 1), 201)
	}
	minority := 3
	c.cut(minority, false)
	cutAt := time.Now()

	// The majority side: orders are acknowledged again within seconds.
	var majorityOK time.Duration
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := do(ctx, "POST", c.urls[0]+"/v1/orders", orderBody(fmt.Sprintf("net-major-%d", i), sku, 1))
		cancel()
		if err == nil && r.code == 201 {
			majorityOK = time.Since(cutAt)
			break
		}
		if time.Since(cutAt) > 60*time.Second {
			t.Fatal("the majority side acknowledged nothing within 60s of the partition")
		}
	}
	t.Logf("majority side acknowledging again %s after the cut", majorityOK.Round(time.Millisecond))

	// The minority side: nothing is acknowledged (asked concurrently, each
	// given 5 s).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("net-minor-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := do(ctx, "POST", c.urls[minority-1]+"/v1/orders", orderBody(key, sku, 1), "Idempotency-Key", key)
			if err == nil && (r.code == 200 || r.code == 201) {
				t.Errorf("the cut-off node acknowledged order %s: %s", key, r.body)
			}
		}()
	}
	wg.Wait()
	// Orders go on through the majority while the minority is cut off.
	acked := map[string]string{}
	for i := 0; i < 50; i++ {
		key := fmt.Sprintf("net-during-%d", i)
		var o order
		tc.node(1+i%2).eventually("POST", "/v1/orders", orderBody(key, sku, 1), 201, "Idempotency-Key", key).json(t, &o)
		acked[key] = o.ID
	}

	c.cut(minority, true)
	tc.waitAgree(minority, 60*time.Second)
	for key, id := range acked {
		var o order
		tc.node(minority).eventually("GET", "/v1/orders/"+id, nil, 200).json(t, &o)
		var again order
		tc.node(minority).eventually("POST", "/v1/orders", orderBody(key, sku, 1), 200, "Idempotency-Key", key).json(t, &again)
		if again.ID != id {
			t.Fatalf("retry of %s after healing answered %s, first %s", key, again.ID, id)
		}
	}
	s := tc.node(minority).checkConserved(sku)
	if s.Total.OnHand != onHand || s.Total.Pending+s.Total.Committed < int64(len(acked)+4) {
		t.Fatalf("stock after healing: %+v", s.Total)
	}
}
