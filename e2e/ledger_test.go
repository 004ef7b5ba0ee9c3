package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/fabrictest"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/anchorcc"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// fabricSim serves Fabric's Gateway protocol in this process around the real
// anchoring chaincode, and returns the node flags that point at it and an
// env file for `ordergrid verify --fabric`.
func fabricSim(t *testing.T) (*fabrictest.Server, []string, string) {
	t.Helper()
	sim := fabrictest.New("ordergrid")
	cc, err := anchorcc.New()
	if err != nil {
		t.Fatal(err)
	}
	sim.Deploy("anchors", cc)
	addr, stop, err := sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	dir := t.TempDir()
	cert, key, err := fabrictest.WriteIdentity(dir, "Org1MSP")
	if err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "fabric.env")
	content := fmt.Sprintf("ORDERGRID_LEDGER_FABRIC_PEER_ENDPOINT=%s\nORDERGRID_LEDGER_FABRIC_CERT_FILE=%s\nORDERGRID_LEDGER_FABRIC_KEY_FILE=%s\n",
		addr, cert, key)
	if err := os.WriteFile(env, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return sim, []string{"--ledger-fabric-peer-endpoint", addr, "--ledger-fabric-cert-file", cert,
		"--ledger-fabric-key-file", key, "--ledger-fabric-anchor-interval", "200ms", "--ledger-checkpoint-interval", "100ms"}, env
}

type eventsResp struct {
	Events []struct {
		Seq  uint64 `json:"seq"`
		Type string `json:"type"`
	} `json:"events"`
}

// ledgerAudit checks the ledger of node n against orders (their ids):
// every order's bundle verifies against key, holds exactly the order's
// events, and no event is in the log twice. It waits for the ledger to
// catch up, and returns the bundles.
func ledgerAudit(t *testing.T, n *node, key string, ids []string) map[string][]byte {
	t.Helper()
	v, err := checkpoint.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]byte{}
	seen := map[string]string{}
	leaves := map[uint64]bool{}
	for _, id := range ids {
		var ev eventsResp
		n.eventually("GET", "/v1/orders/"+id+"/events", nil, 200).json(t, &ev)
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := do(t.Context(), "GET", n.http+"/v1/orders/"+id+"/proof", nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.code == 200 {
				got, err := ledger.VerifyBundle(r.body, v)
				if err != nil {
					t.Fatalf("bundle of %s: %v", id, err)
				}
				var orderEvents []string
				for _, e := range got.Entries {
					if e.Event.Kind == ledger.KindOrder {
						orderEvents = append(orderEvents, fmt.Sprintf("%d:%s", e.Event.Seq, e.Event.Type))
					}
				}
				var want []string
				for _, e := range ev.Events {
					want = append(want, fmt.Sprintf("%d:%s", e.Seq, e.Type))
				}
				if strings.Join(orderEvents, ",") == strings.Join(want, ",") {
					for _, e := range got.Entries {
						k := fmt.Sprintf("%d/%d/%d", e.Event.Partition, e.Event.RaftIndex, e.Event.N)
						if prev, dup := seen[k]; dup || leaves[e.Index] {
							t.Fatalf("event %s is in the log twice (orders %s and %s)", k, prev, id)
						}
						seen[k], leaves[e.Index] = id, true
					}
					bundles[id] = r.body
					break
				}
				if len(orderEvents) > len(want) {
					t.Fatalf("order %s: the log has events %v, the order %v", id, orderEvents, want)
				}
			} else if r.code != 503 {
				t.Fatalf("proof of %s: %d %s", id, r.code, r.body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the ledger did not catch up with order %s within 30s", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return bundles
}

func ledgerKey(t *testing.T, n *node) string {
	t.Helper()
	return strings.TrimSpace(string(n.eventually("GET", "/v1/ledger/key", nil, 200).body))
}

// verifyCLI runs `ordergrid verify` and returns its exit code and output.
func verifyCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"verify"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

// The audit ledger end to end: orders through their lifecycle, proofs that a
// partner verifies offline with the CLI (and that fail on one changed byte),
// anchoring on Fabric's Gateway protocol around the real chaincode, the
// channel going away and coming back, and bad requests.
func TestLedgerProofsAnchoringAndVerify(t *testing.T) {
	sim, flags, fabricEnv := fabricSim(t)
	n := newNode(t, flags...)
	n.start()
	n.must("PUT", "/v1/skus/LEDGER-A/stock/WH1", map[string]any{"on_hand": 1000}, 200)
	var ids []string
	for i := 0; i < 30; i++ {
		var o order
		n.must("POST", "/v1/orders", orderBody(fmt.Sprintf("ledger-%d", i), "LEDGER-A", 1+int64(i%3)), 201,
			"Idempotency-Key", fmt.Sprintf("ledger-%d", i)).json(t, &o)
		ids = append(ids, o.ID)
		switch i % 3 {
		case 1:
			n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200)
			n.must("POST", "/v1/orders/"+o.ID+"/events", map[string]any{"type": "picked"}, 200)
		case 2:
			n.must("POST", "/v1/orders/"+o.ID+"/cancel", nil, 200)
		}
	}
	key := ledgerKey(t, n)
	bundles := ledgerAudit(t, n, key, ids)

	// The partner's CLI, offline.
	dir := t.TempDir()
	file := filepath.Join(dir, "bundle.json")
	keyFile := filepath.Join(dir, "log.key")
	_ = os.WriteFile(keyFile, []byte(key+"\n"), 0o644)
	_ = os.WriteFile(file, bundles[ids[1]], 0o644)
	if code, out := verifyCLI(t, file, "--key", keyFile); code != 0 || !strings.Contains(out, "VERIFIED") || !strings.Contains(out, "picked") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	// One byte changed in a leaf, a proof, the checkpoint, the signature.
	var b ledger.Bundle
	_ = json.Unmarshal(bundles[ids[1]], &b)
	flip := func(s string, i int) string { c := []byte(s); c[i] ^= 1; return string(c) }
	leaf, _ := base64.StdEncoding.DecodeString(b.Entries[0].Leaf)
	leaf[5] ^= 1
	hash, _ := base64.StdEncoding.DecodeString(b.Entries[0].Proof[0])
	hash[0] ^= 1
	for name, change := range map[string]func(b *ledger.Bundle){
		"leaf":        func(b *ledger.Bundle) { b.Entries[0].Leaf = base64.StdEncoding.EncodeToString(leaf) },
		"proof":       func(b *ledger.Bundle) { b.Entries[0].Proof[0] = base64.StdEncoding.EncodeToString(hash) },
		"checkpoint":  func(b *ledger.Bundle) { b.Checkpoint = flip(b.Checkpoint, len(b.Checkpoint)/4) },
		"signature":   func(b *ledger.Bundle) { b.Checkpoint = flip(b.Checkpoint, len(b.Checkpoint)-8) },
		"seal":        func(b *ledger.Bundle) { b.Seal = flip(b.Seal, len(b.Seal)/3) },
		"last entry":  func(b *ledger.Bundle) { b.Entries = b.Entries[:len(b.Entries)-1] },
		"first entry": func(b *ledger.Bundle) { b.Entries = b.Entries[1:] },
	} {
		var c ledger.Bundle
		_ = json.Unmarshal(bundles[ids[1]], &c)
		change(&c)
		raw, _ := json.Marshal(c)
		bad := filepath.Join(dir, name+".json")
		_ = os.WriteFile(bad, raw, 0o644)
		if code, out := verifyCLI(t, bad, "--key", keyFile); code != 1 || !strings.Contains(out, "NOT VERIFIED") {
			t.Errorf("%s changed: exit %d\n%s", name, code, out)
		}
	}
	// The last entry cut off (the order's newest event hidden): the seal
	// names the missing leaf.
	cut := b
	cut.Entries = b.Entries[:len(b.Entries)-1]
	raw, _ := json.Marshal(cut)
	bad := filepath.Join(dir, "cut.json")
	_ = os.WriteFile(bad, raw, 0o644)
	want := fmt.Sprintf("leaf %d is missing", b.Entries[len(b.Entries)-1].Index)
	if code, out := verifyCLI(t, bad, "--key", keyFile); code != 1 || !strings.Contains(out, want) {
		t.Errorf("last entry cut: exit %d, want 1 and %q\n%s", code, want, out)
	}
	if code, _ := verifyCLI(t, file); code != 2 {
		t.Errorf("verify without --key: exit %d, want 2", code)
	}

	// Anchored: a bundle whose checkpoint is on the channel, checked there.
	var anchored []byte
	deadline := time.Now().Add(30 * time.Second)
	for anchored == nil {
		r := n.must("GET", "/v1/orders/"+ids[0]+"/proof", nil, 200)
		var c ledger.Bundle
		r.json(t, &c)
		if c.Anchor != nil && c.Anchor.TransactionID != "" {
			anchored = r.body
		} else if time.Now().After(deadline) {
			t.Fatal("no anchored bundle within 30s")
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	_ = os.WriteFile(file, anchored, 0o644)
	if code, out := verifyCLI(t, file, "--key", keyFile, "--fabric", fabricEnv); code != 0 || !strings.Contains(out, "ANCHORED") {
		t.Fatalf("verify --fabric: exit %d\n%s", code, out)
	}
	var anchors struct {
		Anchors []ledger.Anchor `json:"anchors"`
	}
	n.must("GET", "/v1/ledger/anchors", nil, 200).json(t, &anchors)
	if len(anchors.Anchors) == 0 || anchors.Anchors[0].TransactionID == "" || anchors.Anchors[0].BlockNumber == 0 {
		t.Fatalf("anchors: %+v", anchors)
	}

	// Fabric goes away: intake goes on, /readyz turns amber (200, degraded).
	sim.SetUnavailable(true)
	for i := 30; i < 40; i++ {
		var o order
		n.must("POST", "/v1/orders", orderBody(fmt.Sprintf("ledger-%d", i), "LEDGER-A", 1), 201,
			"Idempotency-Key", fmt.Sprintf("ledger-%d", i)).json(t, &o)
		ids = append(ids, o.ID)
	}
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		n.must("GET", "/readyz", nil, 200).json(t, &ready)
		if ready.Status == "degraded" && strings.Contains(ready.Checks["anchoring"], "failing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz while Fabric is down: %+v", ready)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ledgerAudit(t, n, key, ids[30:]) // the log itself goes on
	sim.SetUnavailable(false)
	for deadline := time.Now().Add(90 * time.Second); ; {
		n.must("GET", "/readyz", nil, 200).json(t, &ready)
		var lg struct {
			CheckpointSize uint64         `json:"checkpoint_size"`
			Anchor         *ledger.Anchor `json:"anchor"`
		}
		n.must("GET", "/v1/ledger", nil, 200).json(t, &lg)
		if ready.Status == "ready" && lg.Anchor != nil && lg.Anchor.Size == lg.CheckpointSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("anchoring did not catch up: %+v %+v", ready, lg)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Consistency between two kept checkpoints, checked here.
	var lg struct {
		CheckpointSize uint64 `json:"checkpoint_size"`
	}
	n.must("GET", "/v1/ledger", nil, 200).json(t, &lg)
	v, _ := checkpoint.NewVerifier(key)
	newC, err := v.Open(n.must("GET", fmt.Sprintf("/v1/ledger/checkpoints/%d", lg.CheckpointSize), nil, 200).body)
	if err != nil {
		t.Fatal(err)
	}
	oldC, err := v.Open([]byte(b.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}
	var cons struct {
		Proof []string `json:"proof"`
	}
	n.must("GET", fmt.Sprintf("/v1/ledger/consistency?from=%d&to=%d", oldC.Size, newC.Size), nil, 200).json(t, &cons)
	proof, err := merkle.DecodeProof(cons.Proof)
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyConsistency(oldC.Size, newC.Size, proof, oldC.Root, newC.Root); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(n.must("GET", "/v1/ledger/checkpoint", nil, 200).body, []byte("ordergrid.local/ledger\n")) {
		t.Fatal("checkpoint is not a tlog checkpoint of the configured origin")
	}

	// Bad requests name their parameter.
	for _, c := range []struct {
		path  string
		code  int
		field string
	}{
		{fmt.Sprintf("/v1/ledger/consistency?from=%d&to=%d", newC.Size, oldC.Size), 400, "from"},
		{"/v1/ledger/consistency?from=1", 400, "to"},
		{"/v1/ledger/consistency?from=x&to=2", 400, "from"},
		{"/v1/ledger/consistency?from=0&to=2", 400, "from"},
		{fmt.Sprintf("/v1/ledger/consistency?from=1&to=%d", newC.Size+1000), 404, "to"},
		{fmt.Sprintf("/v1/ledger/checkpoints/%d", newC.Size+1000), 404, "size"},
		{"/v1/ledger/checkpoints/-1", 400, "size"},
		{fmt.Sprintf("/v1/ledger/inclusion?index=%d&size=%d", newC.Size, newC.Size), 400, "index"},
		{"/v1/ledger/inclusion?index=0&size=999999999", 404, "size"},
		{"/v1/orders/o_nosuchorder/proof", 404, "order"},
	} {
		var p problem
		n.must("GET", c.path, nil, c.code).json(t, &p)
		if len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %+v, want the field %q named", c.path, p, c.field)
		}
	}
}

// An acknowledged order's events are in the log exactly once after kill -9
// in the middle of intake and a restart.
func TestLedgerExactlyOnceAfterKill(t *testing.T) {
	n := newNode(t, "--ledger-checkpoint-interval", "100ms")
	n.start()
	n.must("PUT", "/v1/skus/LEDGER-K/stock/WH1", map[string]any{"on_hand": 1_000_000}, 200)
	key := ledgerKey(t, n)
	var ids []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := do(t.Context(), "POST", n.http+"/v1/orders", orderBody(fmt.Sprintf("k-%d", i), "LEDGER-K", 1), "Idempotency-Key", fmt.Sprintf("k-%d", i))
			if err != nil || r.code != 201 {
				return
			}
			var o order
			r.json(t, &o)
			ids = append(ids, o.ID)
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	n.kill()
	close(stop)
	<-done
	n.start()
	if key2 := ledgerKey(t, n); key2 != key {
		t.Fatalf("the log's key changed across a restart: %s, was %s", key2, key)
	}
	t.Logf("%d orders acknowledged before kill -9", len(ids))
	ledgerAudit(t, n, key, ids)
}

// clusterLedgerAudit checks the ledger of a cluster after a run: every node
// has the same log key and the same checkpoints, and (a sample of) the
// acknowledged orders have bundles that verify, hold exactly their events,
// and share no event.
func clusterLedgerAudit(t *testing.T, c *testCluster, l *load) {
	t.Helper()
	key := ledgerKey(t, c.node(1))
	for i := 2; i <= 3; i++ {
		if k := ledgerKey(t, c.node(i)); k != key {
			t.Fatalf("node%d has the log key %s, node1 %s", i, k, key)
		}
	}
	l.mu.Lock()
	var ids []string
	for _, id := range l.acked {
		if ids = append(ids, id); len(ids) >= 200 {
			break
		}
	}
	l.mu.Unlock()
	ledgerAudit(t, c.node(2), key, ids)
	var lg struct {
		CheckpointSize uint64 `json:"checkpoint_size"`
	}
	c.node(1).must("GET", "/v1/ledger", nil, 200).json(t, &lg)
	path := fmt.Sprintf("/v1/ledger/checkpoints/%d", lg.CheckpointSize)
	want := c.node(1).must("GET", path, nil, 200).body
	for i := 2; i <= 3; i++ {
		if got := c.node(i).eventually("GET", path, nil, 200).body; !bytes.Equal(got, want) {
			t.Fatalf("node%d's checkpoint %d differs:\n%s\nnode1:\n%s", i, lg.CheckpointSize, got, want)
		}
	}
}
