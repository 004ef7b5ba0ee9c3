package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A fourth node starts empty, is added as a voter of every partition through
// the admin API of a member, catches up and serves; then it is removed.
func TestClusterAddAndRemoveNode(t *testing.T) {
	c := newCluster(t, clusterArgs)
	const sku = "MEMBER-1"
	c.node(1).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": 1000}, 200)
	for i := 0; i < 20; i++ {
		c.node(1+i%3).eventually("POST", "/v1/orders", orderBody(fmt.Sprintf("m-%d", i), sku, 1), 201)
	}
	var peers []string
	for i := 1; i <= 3; i++ {
		var v struct {
			Members []struct {
				ID       string `json:"id"`
				RaftAddr string `json:"raft_addr"`
			} `json:"members"`
		}
		c.node(1).must("GET", "/v1/cluster", nil, 200).json(t, &v)
		for _, m := range v.Members {
			if m.ID == fmt.Sprintf("node%d", i) {
				peers = append(peers, m.ID+"="+m.RaftAddr)
			}
		}
	}
	p := freePorts(t, 5)
	raftAddr := fmt.Sprintf("127.0.0.1:%d", p[1])
	logf, _ := os.Create(filepath.Join(c.dir, "node4.log"))
	defer logf.Close()
	cmd := exec.Command(binary(t), "serve", "--node-id", "node4", "--data-dir", filepath.Join(c.dir, "node4"),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", p[0]), "--grpc-addr", "", "--raft-addr", raftAddr,
		"--raft-peers", strings.Join(peers, ","), "--actor-addr", fmt.Sprintf("127.0.0.1:%d", p[2]),
		"--actor-provider-port", fmt.Sprint(p[3]), "--log-level", "warn", "--actor-request-timeout", "4s")
	cmd.Env = c.env // the cluster's master keys, as every member needs
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() }()
	n4 := &node{t: t, http: fmt.Sprintf("http://127.0.0.1:%d", p[0])}

	time.Sleep(500 * time.Millisecond)
	if code, err := healthGet(n4.http + "/readyz"); err == nil && code == 200 {
		t.Fatal("a node nobody added claims to be ready")
	}
	c.node(2).must("POST", "/v1/cluster/nodes", map[string]any{"id": "node4", "raft_addr": raftAddr}, 200)
	for deadline := time.Now().Add(60 * time.Second); ; {
		if code, err := healthGet(n4.http + "/readyz"); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node4 not ready 60s after it was added")
		}
		time.Sleep(100 * time.Millisecond)
	}
	voters := func() map[int]int {
		var v clusterViewVoters
		c.node(1).must("GET", "/v1/cluster", nil, 200).json(t, &v)
		out := map[int]int{}
		for _, p := range v.Partitions {
			out[len(p.Voters)]++
		}
		return out
	}
	if got := voters(); got[4] == 0 || got[3] != 0 {
		t.Fatalf("voters per partition after adding node4: %v", got)
	}
	// node4 serves: it reads an order made before it joined and takes a new one.
	n4.eventually("POST", "/v1/orders", orderBody("m-0", sku, 1), 200)
	n4.eventually("POST", "/v1/orders", orderBody("m-new", sku, 1), 201)
	c.waitAgree(1, 30*time.Second)

	c.node(3).must("DELETE", "/v1/cluster/nodes/node4", nil, 200)
	if got := voters(); got[3] == 0 || got[4] != 0 {
		t.Fatalf("voters per partition after removing node4: %v", got)
	}
	c.node(1).eventually("POST", "/v1/orders", orderBody("m-after", sku, 1), 201)
}

type clusterViewVoters struct {
	Partitions []struct {
		Voters []string `json:"voters"`
	} `json:"partitions"`
}
