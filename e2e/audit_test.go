package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

// The audit export: filters, JSON Lines and CSV, the CLI with its progress
// line, the partner's verify on the file, tampering caught, bad filters
// refused.
func TestAuditExport(t *testing.T) {
	file, tok := makeTokens(t,
		tokenSpec{name: "dy", role: "intake", channels: "douyin"},
		tokenSpec{name: "tm", role: "intake", channels: "tmall"},
		tokenSpec{name: "wh", role: "ops"},
		tokenSpec{name: "dpo", role: "compliance"},
	)
	n := newNode(t, "--auth-tokens-file", file, "--ledger-checkpoint-interval", "100ms")
	n.start()
	as := func(name string) []string { return bearerHeader(tok[name]) }
	n.must("PUT", "/v1/skus/AX-1/stock/WH1", map[string]any{"on_hand": 100}, 200, as("wh")...)
	var douyin, tmall []string
	for i := 0; i < 6; i++ {
		body := orderBody(fmt.Sprintf("ax-%d", i), "AX-1", 1)
		who := "dy"
		if i%2 == 1 {
			body["channel"], who = "tmall", "tm"
		}
		body["customer"] = map[string]any{"id": fmt.Sprintf("ax-cust-%d", i%3), "name": "Export Person"}
		var o order
		n.must("POST", "/v1/orders", body, 201, append(as(who), "Idempotency-Key", fmt.Sprintf("ax-%d", i))...).json(t, &o)
		if who == "dy" {
			douyin = append(douyin, o.ID)
		} else {
			tmall = append(tmall, o.ID)
		}
		if i < 2 {
			n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200, as("wh")...)
		}
	}
	// Wait until the log holds every event acknowledged above (the ledger
	// sequences the partitions' outboxes after the answers: the stock set,
	// 6 orders created and reserved, 2 paid and committed) and a checkpoint
	// holds every leaf.
	const eventsAcked = 1 + 6*2 + 2*2
	deadline := time.Now().Add(30 * time.Second)
	for {
		var lg struct {
			Size           uint64 `json:"size"`
			CheckpointSize uint64 `json:"checkpoint_size"`
		}
		n.must("GET", "/v1/ledger", nil, 200, as("dpo")...).json(t, &lg)
		if lg.Size >= eventsAcked && lg.CheckpointSize == lg.Size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the whole log: %+v", lg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	key := ledgerKey(t, n)
	v, _ := checkpoint.NewVerifier(key)
	exportOf := func(query string) (*ledger.VerifiedExport, uint64) {
		t.Helper()
		r := n.must("GET", "/v1/audit/export?"+query, nil, 200, as("dpo")...)
		got, cnt, err := ledger.VerifyExport(bytes.NewReader(r.body), v, 1000)
		if err != nil {
			t.Fatalf("export %s: %v\n%s", query, err, r.body)
		}
		return got, cnt
	}
	all, total := exportOf("")
	if total == 0 || all.Checkpoint.Size != total {
		t.Fatalf("the whole log: %d events, checkpoint of %d", total, all.Checkpoint.Size)
	}
	got, cnt := exportOf("format=csv&channel=tmall")
	for _, e := range got.Events {
		if !contains(tmall, e.Order) {
			t.Fatalf("channel tmall exported an event of %s", e.Order)
		}
	}
	if cnt < 2*uint64(len(tmall)) { // created and reserved, at least
		t.Fatalf("channel tmall: %d events", cnt)
	}
	got, _ = exportOf("order=" + douyin[0])
	kinds := map[string]int{}
	for _, e := range got.Events {
		if e.Order != douyin[0] {
			t.Fatalf("order filter exported %s", e.Order)
		}
		kinds[e.Kind+"/"+e.Type]++
	}
	if kinds["order/created"] != 1 || kinds["order/paid"] != 1 || kinds["stock/reserved"] != 1 || kinds["stock/committed"] != 1 {
		t.Fatalf("order %s exported %v", douyin[0], kinds)
	}
	_, cnt = exportOf("subject=ax-cust-0")
	var subjectOrders int
	for _, e := range all.Events {
		if e.Kind == ledger.KindOrder && e.Type == "created" && (e.Order == douyin[0] || e.Order == tmall[1]) {
			subjectOrders++
		}
	}
	if cnt == 0 || subjectOrders != 2 {
		t.Fatalf("subject filter: %d events (%d of its orders' created)", cnt, subjectOrders)
	}
	if _, cnt = exportOf("from=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); cnt != 0 {
		t.Fatalf("from the future: %d events", cnt)
	}

	// Bad filters: 422 naming the field, 404, 403; nothing exported.
	for q, field := range map[string]string{
		"from=yesterday": "from", "format=xml": "format", "bogus=1": "bogus", "order=o_1&subject=x": "subject",
		"from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z": "to", "channel=a%20b": "channel",
	} {
		var p problem
		n.must("GET", "/v1/audit/export?"+q, nil, 422, as("dpo")...).json(t, &p)
		if len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Errorf("%s: %+v", q, p)
		}
	}
	n.must("GET", "/v1/audit/export?subject=nobody-at-all", nil, 404, as("dpo")...)
	n.must("GET", "/v1/audit/export", nil, 403, as("wh")...)

	// The CLI, its progress line, and the partner's verify.
	dir := t.TempDir()
	out := filepath.Join(dir, "douyin.jsonl")
	cmd := exec.Command(binary(t), "audit", "export", "--node", n.http, "--out", out, "--channel", "douyin")
	cmd.Env = append(os.Environ(), "ORDERGRID_TOKEN="+tok["dpo"])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "exported ") {
		t.Fatalf("audit export: %v\n%s", err, stderr.String())
	}
	keyFile := filepath.Join(dir, "log.key")
	_ = os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	if code, text := verifyCLI(t, out, "--key", keyFile); code != 0 || !strings.Contains(text, "VERIFIED: audit export") {
		t.Fatalf("verify export: exit %d\n%s", code, text)
	}
	csvOut := filepath.Join(dir, "all.csv")
	cmd = exec.Command(binary(t), "audit", "export", "--node", n.http, "--out", csvOut, "--format", "csv", "--token", tok["dpo"])
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("audit export csv: %v\n%s", err, b)
	}
	if code, text := verifyCLI(t, csvOut, "--key", keyFile); code != 0 {
		t.Fatalf("verify csv export: exit %d\n%s", code, text)
	}
	for _, f := range []string{out, csvOut} {
		raw, _ := os.ReadFile(f)
		at := bytes.LastIndex(raw, []byte("created")) + 2
		raw[at] ^= 1
		bad := f + ".bad"
		_ = os.WriteFile(bad, raw, 0o600)
		if code, text := verifyCLI(t, bad, "--key", keyFile); code != 1 || !strings.Contains(text, "NOT VERIFIED") {
			t.Fatalf("tampered %s: exit %d\n%s", filepath.Base(f), code, text)
		}
	}
	// Truncation of a real export: a line removed, repeated, the tail cut.
	// The unfiltered CSV is complete by its checkpoint: the first missing
	// leaf is named. The channel export is filtered: its seal tells.
	truncate := func(f, name string, change func(lines []string) []string, want string) {
		t.Helper()
		raw, _ := os.ReadFile(f)
		lines := strings.SplitAfter(string(raw), "\n")
		bad := f + "." + name
		_ = os.WriteFile(bad, []byte(strings.Join(change(lines), "")), 0o600)
		if code, text := verifyCLI(t, bad, "--key", keyFile); code != 1 || !strings.Contains(text, "NOT VERIFIED") || !strings.Contains(text, want) {
			t.Errorf("%s %s: exit %d, want 1 and %q\n%s", filepath.Base(f), name, code, want, text)
		}
	}
	// CSV: the checkpoint record, the column row, leaves 0…size-1, the seal.
	truncate(csvOut, "row-removed", func(l []string) []string { return slices.Delete(l, 2+3, 2+4) }, "leaf 3 is missing")
	truncate(csvOut, "row-repeated", func(l []string) []string { return slices.Insert(l, 2+3, l[2+3]) }, "leaf 3 after leaf 3")
	truncate(csvOut, "rows-swapped", func(l []string) []string { l[2+3], l[2+4] = l[2+4], l[2+3]; return l }, "leaf 3 after leaf 4")
	truncate(csvOut, "cut", func(l []string) []string { return l[:len(l)/2] }, "(cut)")
	truncate(out, "last-removed", func(l []string) []string { return slices.Delete(l, len(l)-3, len(l)-2) }, "is missing")
	truncate(out, "cut", func(l []string) []string { return l[:len(l)-2] }, "without its seal")
	truncate(out, "first-removed", func(l []string) []string { return slices.Delete(l, 1, 2) }, "an entry was removed")

	// A bad token, a bad filter: a message and a non-zero exit.
	cmd = exec.Command(binary(t), "audit", "export", "--node", n.http, "--out", filepath.Join(dir, "x"), "--token", "og_nope")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "401") {
		t.Fatalf("bad token: %v\n%s", err, b)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
