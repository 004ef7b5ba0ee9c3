package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
)

// fabricBase finds a base port for scripts/fabric-up.sh whose six ports
// (base..base+3, base+1393, base+2393) and a chaincode port are free.
func fabricBase(t *testing.T) (base, chaincode int) {
	t.Helper()
	free := func(p int) bool {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	for b := 21050; b < 40000; b += 10 {
		ok := true
		for _, p := range []int{b, b + 1, b + 2, b + 3, b + 1393, b + 2393, b + 5} {
			ok = ok && free(p)
		}
		if ok {
			return b, b + 5
		}
	}
	t.Fatal("no free ports for a Fabric network")
	return 0, 0
}

// TestRealFabricNetwork anchors on a real Fabric 2.5 network started by
// scripts/fabric-up.sh from the binaries in FABRIC_BIN (an orderer, a peer,
// the chaincode as a service), and checks a bundle's anchor on the channel
// with the partner's CLI. Skipped when FABRIC_BIN is not set.
func TestRealFabricNetwork(t *testing.T) {
	fabricBin := os.Getenv("FABRIC_BIN")
	if fabricBin == "" {
		t.Skip("FABRIC_BIN is not set: the real-network test needs Fabric 2.5 binaries (see README, \"Fabric anchoring\"); " +
			"anchoring is tested against Fabric's Gateway protocol in-process in TestLedgerProofsAnchoringAndVerify")
	}
	dir := t.TempDir()
	cc := filepath.Join(dir, "anchorcc")
	if out, err := exec.Command("go", "build", "-o", cc, "../cmd/anchorcc").CombinedOutput(); err != nil {
		t.Fatalf("build anchorcc: %v\n%s", err, out)
	}
	base, ccPort := fabricBase(t)
	net := filepath.Join(dir, "fabric")
	env := append(os.Environ(), fmt.Sprintf("ORDERGRID_FABRIC_BASE_PORT=%d", base),
		fmt.Sprintf("ORDERGRID_CHAINCODE_PORT=%d", ccPort), "ORDERGRID_CHAINCODE_CMD="+cc)
	up := exec.Command("bash", "../scripts/fabric-up.sh", net)
	up.Env = env
	start := time.Now()
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("fabric-up: %v\n%s", err, out)
	}
	t.Logf("Fabric network up in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		down := exec.Command("bash", "../scripts/fabric-down.sh", net)
		down.Env = env
		_ = down.Run()
	})
	fabricEnv := filepath.Join(net, "fabric.env")
	raw, err := os.ReadFile(fabricEnv)
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--ledger-fabric-anchor-interval", "500ms", "--ledger-checkpoint-interval", "200ms"}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.HasPrefix(k, "ORDERGRID_LEDGER_FABRIC_") {
			flags = append(flags, "--"+strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "ORDERGRID_")), "_", "-"), v)
		}
	}
	n := newNode(t, flags...)
	n.start()
	n.must("PUT", "/v1/skus/FAB-1/stock/WH1", map[string]any{"on_hand": 100}, 200)
	var o order
	n.must("POST", "/v1/orders", orderBody("fab-1", "FAB-1", 2), 201, "Idempotency-Key", "fab-1").json(t, &o)
	n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200)
	key := ledgerKey(t, n)
	ledgerAudit(t, n, key, []string{o.ID})

	var bundle []byte
	for deadline := time.Now().Add(60 * time.Second); bundle == nil; {
		r := n.must("GET", "/v1/orders/"+o.ID+"/proof", nil, 200)
		var b ledger.Bundle
		r.json(t, &b)
		if b.Anchor != nil {
			bundle = r.body
			t.Logf("anchored on the real channel: tx %s, block %d", b.Anchor.TransactionID, b.Anchor.BlockNumber)
		} else if time.Now().After(deadline) {
			t.Fatalf("not anchored within 60s; node log and %s/logs have details", net)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	file := filepath.Join(dir, "bundle.json")
	_ = os.WriteFile(file, bundle, 0o644)
	keyFile := filepath.Join(dir, "log.key")
	_ = os.WriteFile(keyFile, []byte(key), 0o644)
	if code, out := verifyCLI(t, file, "--key", keyFile, "--fabric", fabricEnv); code != 0 || !strings.Contains(out, "ANCHORED") {
		t.Fatalf("verify --fabric: exit %d\n%s", code, out)
	}
}
