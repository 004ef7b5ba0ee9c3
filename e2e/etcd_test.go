package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startEtcd runs Debian's etcd-server on loopback for the test and returns
// its client endpoint.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (scripts/test.sh installs Debian's etcd-server)")
	}
	p := freePorts(t, 2)
	client := fmt.Sprintf("127.0.0.1:%d", p[0])
	dir := t.TempDir()
	cmd := exec.Command(bin, "--name", "og-test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", p[1]),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", p[1]),
		"--initial-cluster", fmt.Sprintf("og-test=http://127.0.0.1:%d", p[1]))
	logf, _ := os.Create(filepath.Join(dir, "etcd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		r, err := healthGet("http://" + client + "/health")
		if err == nil && r == 200 {
			return client
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func healthGet(url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The etcd membership provider: three nodes find each other through etcd,
// serve orders from any node, and go on when one dies.
func TestClusterWithEtcdProvider(t *testing.T) {
	endpoint := startEtcd(t)
	c := newCluster(t, clusterArgs+" --actor-provider etcd --actor-etcd-endpoints "+endpoint)
	const sku, onHand = "ETCD-1", 100_000
	c.node(2).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
	for i := 1; i <= 3; i++ {
		c.node(i).eventually("POST", "/v1/orders", orderBody(fmt.Sprintf("etcd-%d", i), sku, 1), 201)
	}
	stop := make(chan struct{})
	l, wg := runLoad(t, c, sku, 12, stop)
	time.Sleep(time.Second)
	c.kill9(3)
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d orders acknowledged, %d requests, %d errors", l.count(), l.requests.Load(), l.errors.Load())
	for i := 1; i <= 2; i++ {
		c.node(i).eventually("POST", "/v1/orders", orderBody(fmt.Sprintf("etcd-after-%d", i), sku, 1), 201)
	}
	l.audit(t, c, 1, sku, onHand)
}
