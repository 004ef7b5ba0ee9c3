package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Retention: closed orders older than orders.retention leave hot state for
// a compressed archive with their proofs; open ones stay; a retry of an
// archived order is still answered; the archive verifies offline (and a
// changed byte does not) and restores.
func TestRetentionArchivesVerifiesAndRestores(t *testing.T) {
	n := newNode(t, "--orders-retention", "3s", "--ledger-checkpoint-interval", "100ms")
	n.start()
	n.must("PUT", "/v1/skus/RET-1/stock/WH1", map[string]any{"on_hand": 10}, 200)
	create := func(key string) order {
		var o order
		n.must("POST", "/v1/orders", orderBody(key, "RET-1", 1), 201, "Idempotency-Key", key).json(t, &o)
		return o
	}
	cancelled, delivered, pending, paid := create("ret-c"), create("ret-d"), create("ret-p"), create("ret-paid")
	n.must("POST", "/v1/orders/"+cancelled.ID+"/cancel", nil, 200)
	for _, ev := range []map[string]any{{"type": "paid"}, {"type": "picked"}, {"type": "packed"},
		{"type": "shipped", "carrier": "SF", "tracking_number": "SF1"}, {"type": "delivered"}} {
		n.must("POST", "/v1/orders/"+delivered.ID+"/events", ev, 200)
	}
	n.must("POST", "/v1/orders/"+paid.ID+"/pay", nil, 200)

	// Archived once closed for longer than the retention.
	archiveDir := filepath.Join(n.dataDir, "archive")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _ := do(t.Context(), "GET", n.http+"/v1/orders/"+delivered.ID, nil)
		r2, _ := do(t.Context(), "GET", n.http+"/v1/orders/"+cancelled.ID, nil)
		if r.code == 410 && r2.code == 410 {
			var p problem
			r.json(t, &p)
			if !strings.HasSuffix(p.Type, "/archived") || p.CurrentStatus != "delivered" {
				t.Fatalf("archived order: %s", r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not archived within 30s: %d %d", r.code, r2.code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.must("GET", "/v1/orders/"+pending.ID, nil, 200)
	n.must("GET", "/v1/orders/"+paid.ID, nil, 200)
	// A retry is answered; another request under the key is a conflict.
	var replay order
	n.must("POST", "/v1/orders", orderBody("ret-c", "RET-1", 1), 200, "Idempotency-Key", "ret-c").json(t, &replay)
	if replay.ID != cancelled.ID || replay.Status != "cancelled" {
		t.Fatalf("retry of an archived order: %+v", replay)
	}
	n.must("POST", "/v1/orders", orderBody("ret-c", "RET-1", 2), 409, "Idempotency-Key", "ret-c")
	if s := n.checkConserved("RET-1"); s.Total.Pending+s.Total.Committed != 2 {
		t.Fatalf("stock after the retries: %+v", s.Total)
	}
	// Proofs are still served.
	n.eventually("GET", "/v1/orders/"+delivered.ID+"/proof", nil, 200)
	// Erasing the customer of an archived order names it.
	var erasure struct {
		OrderIDs []string `json:"order_ids"`
	}
	n.must("POST", "/v1/subjects/c-ret-d/erase", nil, 200).json(t, &erasure)
	if len(erasure.OrderIDs) != 1 || erasure.OrderIDs[0] != delivered.ID {
		t.Fatalf("erasure of an archived order's customer: %+v", erasure)
	}

	files, _ := filepath.Glob(filepath.Join(archiveDir, "*.jsonl.gz"))
	if len(files) == 0 {
		t.Fatal("no archive file")
	}
	key := ledgerKey(t, n)
	keyFile := filepath.Join(t.TempDir(), "log.key")
	_ = os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	archiveCLI := func(args ...string) (int, string) {
		cmd := exec.Command(binary(t), append([]string{"archive"}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, f := range files {
		code, out := archiveCLI("verify", f, "--key", keyFile)
		if code != 0 || !strings.Contains(out, "VERIFIED") {
			t.Fatalf("archive verify %s: %d\n%s", f, code, out)
		}
	}
	// One changed byte inside an archive: refused.
	raw, _ := os.ReadFile(files[0])
	zr, _ := gzip.NewReader(bytes.NewReader(raw))
	plain, _ := io.ReadAll(zr)
	plain[bytes.LastIndex(plain, []byte(`"status"`))+11] ^= 1
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain)
	zw.Close()
	bad := filepath.Join(t.TempDir(), "bad.jsonl.gz")
	_ = os.WriteFile(bad, buf.Bytes(), 0o600)
	if code, out := archiveCLI("verify", bad, "--key", keyFile); code != 1 || !strings.Contains(out, "NOT VERIFIED") {
		t.Fatalf("tampered archive: %d\n%s", code, out)
	}

	// Restore: back in hot state with their events; again: nothing to do.
	for _, f := range files {
		if code, out := archiveCLI("restore", f, "--node", n.http); code != 0 || !strings.Contains(out, `"restored"`) {
			t.Fatalf("restore %s: %d\n%s", f, code, out)
		}
	}
	var back order
	n.must("GET", "/v1/orders/"+delivered.ID, nil, 200).json(t, &back)
	if back.Status != "delivered" || back.Version != 6 {
		t.Fatalf("restored order: %+v", back)
	}
	var evs struct {
		Events []struct{ Type string } `json:"events"`
	}
	n.must("GET", "/v1/orders/"+delivered.ID+"/events", nil, 200).json(t, &evs)
	if len(evs.Events) != 6 {
		t.Fatalf("restored events: %+v", evs.Events)
	}
	code, out := archiveCLI("restore", files[0], "--node", n.http)
	if code != 0 || !strings.Contains(out, `"restored":0`) {
		t.Fatalf("second restore: %d\n%s", code, out)
	}
}
