package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/statemachine"
)

// heldCase is an order the test node holds and a reviewer decides.
type heldCase struct {
	id, hold, verdict, decision, reason string
	// features are the order's risk features; nil: the order has no score.
	features *risk.Features
	// against: the decision goes against the model's verdict.
	against bool
}

// auditNode is a real single node: the grid's partitions and the ledger
// group in Raft, the ledger's sequencer signing checkpoints.
type auditNode struct {
	h   *cluster.Host
	log *ledger.Log
}

// startAuditNode starts a one-node grid with its ledger in a temporary
// directory; it stops when the test ends.
func startAuditNode(t *testing.T) *auditNode {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a node (a few seconds)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := cluster.Open(cluster.Options{DataDir: t.TempDir(), RaftAddr: addr, Partitions: 2, Logger: logger,
		Groups: []cluster.Group{{Name: ledger.GroupName, Machine: ledger.NewMachine}}}, statemachine.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewSequencer(h, ledger.SequencerOptions{Origin: "ordergrid.test/risk-overrides",
		CheckpointInterval: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	seqCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); seq.Run(seqCtx) }()
	t.Cleanup(func() { stop(); <-done }) // before h.Close: cleanups run last first
	return &auditNode{h: h, log: seq.Log()}
}

// propose applies cmd on the partition of key as principal and wants OK.
func (n *auditNode) propose(t *testing.T, key, principal string, cmd *gridpb.Command) {
	t.Helper()
	cmd.AtUnixNano, cmd.Principal = time.Now().UnixNano(), principal
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.h.PartitionOf(key).Propose(t.Context(), data)
	if err != nil {
		t.Fatal(err)
	}
	var res statemachine.Result
	if err := proto.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("%T on %s: %v %s", cmd.Kind, key, res.Outcome, res.Detail)
	}
}

// holdAndDecide creates each case's order on hold (with its risk record
// when it has features) and decides it as an ops reviewer.
func (n *auditNode) holdAndDecide(t *testing.T, cases []heldCase) {
	t.Helper()
	until := time.Now().Add(time.Hour).UnixNano()
	for _, c := range cases {
		o := &gridpb.OrderRecord{Id: c.id, Channel: "tmall", RequestHash: []byte("h-" + c.id), PayByUnixNano: until,
			Lines: []*gridpb.OrderLineRecord{{Sku: "SKU-1", Qty: 1, UnitPrice: "80.00", Warehouse: "WH-1"}},
			Hold:  &gridpb.OrderHoldRecord{Reason: c.hold, UntilUnixNano: until}}
		if c.features != nil {
			o.Channel = c.features.Channel
			var plain []float32
			for _, v := range c.features.Vector(nil)[:risk.PlainColumnCount] {
				plain = append(plain, float32(v))
			}
			o.Risk = &gridpb.RiskRecord{Score: 0.81234, Model: "m-test", Verdict: c.verdict, Features: plain}
		}
		n.propose(t, c.id, "shop", &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: o}}})
		n.propose(t, c.id, "ops:ann", &gridpb.Command{Kind: &gridpb.Command_DecideHold{DecideHold: &gridpb.DecideHoldCommand{
			OrderId: c.id, Decision: c.decision, Reason: c.reason, PayByUnixNano: until}}})
	}
}

// export writes the node's audit export (filter f) once its newest
// checkpoint holds decisions hold_decided events, and returns its lines.
func (n *auditNode) export(t *testing.T, f ledger.ExportFilter, decisions int) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var buf bytes.Buffer
		if _, err := n.log.Export(t.Context(), f, ledger.NewJSONLinesExport(&buf)); err == nil &&
			strings.Count(buf.String(), `"type":"hold_decided"`) == decisions {
			return buf.Bytes()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log's checkpoint does not hold %d decisions in time", decisions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// editEntry returns the export with the entry of order's event typ
// changed by edit, its leaf re-encoded to match (so that only the proof
// can tell), and that entry's line number.
func editEntry(t *testing.T, export []byte, order, typ string, edit func(*ledger.Event)) ([]byte, int) {
	t.Helper()
	lines := bytes.Split(bytes.TrimSuffix(export, []byte("\n")), []byte("\n"))
	for i, l := range lines {
		var e ledger.BundleEntry
		if json.Unmarshal(l, &e) != nil || e.Event == nil {
			continue
		}
		ev, err := ledger.DecodeLeaf(e.Event)
		if err != nil || ev.Order != order || ev.Type != typ {
			continue
		}
		edit(ev)
		leaf := ev.Encode()
		e.Leaf, e.Event = base64.StdEncoding.EncodeToString(leaf), leaf
		if lines[i], err = json.Marshal(e); err != nil {
			t.Fatal(err)
		}
		return append(bytes.Join(lines, []byte("\n")), '\n'), i + 1
	}
	t.Fatalf("no %s event of %s in the export", typ, order)
	return nil, 0
}

// exportDecisions reads the hold_decided events' features of an export
// straight from its lines, by order.
func exportDecisions(t *testing.T, export []byte) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e ledger.BundleEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Event == nil {
			continue
		}
		var ev ledger.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == statemachine.EventHoldDecided {
			out[ev.Order] = ev.Details
		}
	}
	return out
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Reviewers decide holds on a real node; its verified audit export becomes
// override lines (ordergrid risk overrides) and training data (ordergrid
// risk train --overrides); an edited export is refused with the key, bad
// decisions are named by line and field.
func TestRiskOverridesFromAuditExport(t *testing.T) {
	n := startAuditNode(t)
	f1 := risk.Features{CustomerAgeHours: 0, CustomerOrders1h: 9, CustomerOrders24h: 14, DeviceCustomers: 6, AddressCustomers: 3,
		Amount: 480, AmountRatio: 1, Channel: "douyin", HourOfDay: 3, SKUPressure: 0.75, FirstOrder: true}
	f2 := risk.Features{CustomerAgeHours: 2000, CustomerOrders1h: 1, CustomerOrders24h: 2, DeviceCustomers: 1, AddressCustomers: 1,
		Amount: 80, AmountRatio: 1.25, Channel: "tmall", HourOfDay: 14}
	f3 := risk.Features{CustomerAgeHours: 12.5, CustomerOrders1h: 3, Amount: 199.5, AmountRatio: 2.25, Channel: "jd", RegionMismatch: true, HourOfDay: 22, SKUPressure: 0.5}
	cases := []heldCase{
		{id: "r-1", hold: statemachine.HoldRisk, verdict: "hold", decision: "cancel", reason: "stolen card", features: &f1},
		{id: "r-2", hold: statemachine.HoldRisk, verdict: "hold", decision: "release", reason: "a regular", features: &f2, against: true},
		{id: "a-1", hold: statemachine.HoldAddress, decision: "release", reason: "address fixed"},
		{id: "l-1", hold: statemachine.HoldLimit, verdict: "accept", decision: "cancel", reason: "reseller", features: &f3, against: true},
	}
	n.holdAndDecide(t, cases)
	export := n.export(t, ledger.ExportFilter{}, len(cases))
	v, err := n.log.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := writeFile(t, dir, "log.key", []byte(v.String()+"\n"))
	exportFile := writeFile(t, dir, "export.jsonl", export)
	if code, _, stderr := runCmd(runVerify, exportFile, "--key", key); code != 0 {
		t.Fatalf("verify the export: exit %d: %s", code, stderr)
	}

	// risk overrides --key: one line per scored decision, as the events say.
	out := filepath.Join(dir, "overrides.jsonl")
	code, _, stderr := runRiskCmd("overrides", "--audit", exportFile, "--key", key, "--out", out)
	if code != 0 {
		t.Fatalf("overrides: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"verified against the log ordergrid.test/risk-overrides", "complete by its checkpoint",
		"4 decisions read, 3 overrides (2 against the model's verdict), 1 skipped without features"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("overrides stderr lacks %q:\n%s", want, stderr)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// One line per order, in the log's order (the partitions' events
	// interleave as the sequencer took them).
	got := map[string]risk.Override{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var o risk.Override
		if err := strictJSON([]byte(l), &o); err != nil {
			t.Fatalf("override line %q: %v", l, err)
		}
		got[o.OrderID] = o
		order = append(order, o.OrderID)
	}
	details := exportDecisions(t, export)
	for _, c := range cases {
		if c.features != nil && details[c.id]["override"] != strconv.FormatBool(c.against) {
			t.Errorf("%s: the event's override %q, want %v", c.id, details[c.id]["override"], c.against)
		}
	}
	scored := []heldCase{cases[0], cases[1], cases[3]}
	if len(got) != len(scored) {
		t.Fatalf("%d override lines, want %d:\n%s", len(got), len(scored), raw)
	}
	for _, c := range scored {
		fromEvent, err := risk.ParseFeatures([]byte(details[c.id]["features"]))
		if err != nil {
			t.Fatal(err)
		}
		want := risk.Override{OrderID: c.id, Decision: c.decision, Score: 0.8123, Model: "m-test", Features: *c.features}
		if got[c.id] != want || fromEvent != *c.features {
			t.Errorf("override of %s: %+v\nwant %+v (the event's features %+v)", c.id, got[c.id], want, fromEvent)
		}
	}
	ex, err := risk.ReadOverrides(bytes.NewReader(raw), 0)
	if err != nil || len(ex) != 3 {
		t.Fatalf("the overrides read back as %+v, %v", ex, err)
	}
	for i, id := range order {
		o := got[id]
		if w := o.Example(); ex[i] != w || w.Label != (o.Decision == "cancel") {
			t.Errorf("example %d (%s): %+v, want %+v", i, id, ex[i], w)
		}
	}

	// Without the key: the same lines, and a word that nothing was verified.
	code, stdout, stderr := runRiskCmd("overrides", "--audit", exportFile)
	if code != 0 || stdout != string(raw) || !strings.Contains(stderr, "was NOT verified (no --key)") {
		t.Fatalf("overrides without --key: exit %d\n%s%s", code, stdout, stderr)
	}

	// train --overrides takes the export as it takes override lines.
	data := filepath.Join(dir, "history.jsonl")
	if code, _, stderr := runRiskCmd("synth", "--n", "2000", "--seed", "5", "--out", data); code != 0 {
		t.Fatal(stderr)
	}
	train := func(overrides string, extra ...string) (int, string, string) {
		args := append([]string{"train", "--data", data, "--overrides", overrides, "--out", filepath.Join(dir, "model.json"),
			"--holdout", "0.25", "--trees", "5", "--depth", "2"}, extra...)
		return runRiskCmd(args...)
	}
	code, stdout, stderr = train(exportFile, "--key", key)
	if code != 0 || !strings.Contains(stderr, "(3 overrides)") || !strings.Contains(stdout, "trained on 1503 examples") ||
		!strings.Contains(stderr, "risk train: "+exportFile+" verified") {
		t.Fatalf("train on the export: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = train(out); code != 0 || !strings.Contains(stdout, "trained on 1503 examples") {
		t.Fatalf("train on the override lines: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr = train(exportFile); code != 0 || !strings.Contains(stderr, "NOT verified") {
		t.Fatalf("train on the export without --key: exit %d\n%s", code, stderr)
	}

	// One leaf edited (the reviewer's words of a decision): refused with
	// the key, by verify and by both commands, and nothing written.
	edited, _ := editEntry(t, export, "r-1", statemachine.EventHoldDecided, func(ev *ledger.Event) { ev.Details["reason"] = "a regular" })
	editedFile := writeFile(t, dir, "edited.jsonl", edited)
	if code, _, _ := runCmd(runVerify, editedFile, "--key", key); code != 1 {
		t.Fatalf("verify an edited export: exit %d", code)
	}
	refusedOut := filepath.Join(dir, "refused.jsonl")
	code, _, stderr = runRiskCmd("overrides", "--audit", editedFile, "--key", key, "--out", refusedOut)
	if _, err := os.Stat(refusedOut); code != 1 || !strings.HasPrefix(stderr, "NOT VERIFIED: ") || !os.IsNotExist(err) {
		t.Fatalf("overrides of an edited export: exit %d, output %v\n%s", code, err, stderr)
	}
	if code, _, stderr = train(editedFile, "--key", key); code != 1 || !strings.Contains(stderr, "NOT VERIFIED") {
		t.Fatalf("train on an edited export: exit %d\n%s", code, stderr)
	}

	// Taken as it is without the key: a later line for r-2 wins, at its place.
	lines := strings.SplitAfter(string(export), "\n")
	twice, _ := editEntry(t, export, "r-2", statemachine.EventHoldDecided, func(ev *ledger.Event) { ev.Details["decision"] = "cancel" })
	again := strings.SplitAfter(string(twice), "\n")
	var r2 string
	for i := range again {
		if again[i] != lines[i] {
			r2 = again[i]
		}
	}
	seal := lines[len(lines)-2]
	twiceFile := writeFile(t, dir, "twice.jsonl", []byte(strings.Join(lines[:len(lines)-2], "")+r2+seal))
	code, stdout, stderr = runRiskCmd("overrides", "--audit", twiceFile)
	if code != 0 || strings.Count(stdout, "\n") != 3 ||
		!strings.Contains(strings.Split(stdout, "\n")[slices.Index(order, "r-2")], `"order_id":"r-2","decision":"cancel"`) ||
		!strings.Contains(stderr, "5 decisions read, 3 overrides") {
		t.Fatalf("a decision taken twice: exit %d\n%s%s", code, stdout, stderr)
	}

	// Bad input: exit 2 naming the line and the field.
	badFeatures, featuresLine := editEntry(t, export, "l-1", statemachine.EventHoldDecided, func(ev *ledger.Event) {
		ev.Details["features"] = `{"hour_of_day":24}`
	})
	badDecision, decisionLine := editEntry(t, export, "r-2", statemachine.EventHoldDecided, func(ev *ledger.Event) { ev.Details["decision"] = "ship" })
	notJSON := strings.Join(lines[:3], "") + "{not json\n" + strings.Join(lines[3:], "")
	empty := n.export(t, ledger.ExportFilter{Orders: []string{}, Describe: map[string]string{"subject": "nobody"}}, 0)
	for _, c := range []struct {
		name   string
		export []byte
		key    bool
		want   string
		// train: the file is an audit export to train too (by its header).
		train bool
	}{
		{"features", badFeatures, false, "line " + strconv.Itoa(featuresLine) + ` (order "l-1"): details.features.hour_of_day: must be 0..23`, true},
		{"decision", badDecision, false, "line " + strconv.Itoa(decisionLine) + ` (order "r-2"): details.decision: must be "release" or "cancel", got "ship"`, true},
		{"not JSON", []byte(notJSON), false, "line 4: not JSON", true},
		{"no header", []byte(strings.Join(lines[1:], "")), false, "line 1: not an ordergrid-audit-export/2 header", false},
		{"CSV", []byte("checkpoint,xyz\n"), false, "a CSV export", true},
		{"empty", empty, true, "no decisions", true},
		{"empty file", nil, false, "no decisions", false},
	} {
		f := writeFile(t, dir, "bad.jsonl", c.export)
		args := []string{"overrides", "--audit", f}
		if c.key {
			args = append(args, "--key", key)
		}
		code, stdout, stderr := runRiskCmd(args...)
		if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, stderr, c.want)
		}
		if !c.train {
			continue
		}
		if code, _, stderr := train(f); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("train on %s: exit %d, stderr %q; want 2 and %q", c.name, code, stderr, c.want)
		}
	}
	// With the key, a bad decision is an edit: refused as not verified.
	if code, _, stderr := runRiskCmd("overrides", "--audit", writeFile(t, dir, "bad.jsonl", badDecision), "--key", key); code != 1 ||
		!strings.Contains(stderr, "NOT VERIFIED") {
		t.Errorf("a bad decision with --key: exit %d: %s", code, stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"overrides"}, "--audit is required"},
		{[]string{"overrides", "--audit", exportFile, "--key", "not a key"}, "--key"},
		{[]string{"overrides", "--audit", filepath.Join(dir, "missing.jsonl")}, "missing.jsonl"},
		{[]string{"train", "--data", data, "--key", key}, "--key verifies the audit export of --overrides"},
		{[]string{"train", "--data", data, "--overrides", out, "--key", key}, "is not one"},
	} {
		if code, _, stderr := runRiskCmd(c.args...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("risk %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// runCmd runs a command function with args and returns its exit code and output.
func runCmd(run func([]string, io.Writer, io.Writer) int, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// readExportLines never panics; its errors name the line; a decision it
// takes is a valid override.
func FuzzReadExportLines(f *testing.F) {
	header := `{"format":"ordergrid-audit-export/2","checkpoint":"x","tree_size":2}` + "\n"
	entry := func(details string) string {
		return `{"index":0,"leaf":"","proof":[],"event":{"v":1,"partition":0,"raft_index":3,"n":0,"at":"2026-11-22T00:00:00Z","kind":"order","type":"hold_decided","order":"o-1","details":` + details + "}}\n"
	}
	f.Add([]byte(header + entry(`{"decision":"cancel","override":"true","risk_score":"0.5","risk_model":"m","features":"{\"amount\":3}"}`) + `{"seal":"s"}` + "\n"))
	f.Add([]byte(header + entry(`{"decision":"release"}`) + `{"progress":{"scanned":1,"tree_size":2,"exported":1}}` + "\n"))
	f.Add([]byte(header + entry(`{"decision":"ship"}`)))
	f.Add([]byte(header + "{not json\n"))
	f.Add([]byte("checkpoint,abc\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a := &auditOverrides{}
		at := map[string]int{}
		err := readExportLines(bytes.NewReader(data), func(where string, ev *ledger.Event) error { return a.take(where, at, ev) })
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("an error without its line: %v", err)
			}
			return
		}
		if a.Unscored+len(a.Overrides) > a.Decisions || len(a.against) != len(a.Overrides) {
			t.Fatalf("counts: %+v", a)
		}
		for i := range a.Overrides {
			if err := a.Overrides[i].Validate(); err != nil {
				t.Fatalf("took an invalid override %+v: %v", a.Overrides[i], err)
			}
		}
	})
}
