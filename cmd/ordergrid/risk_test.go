package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordergrid/ordergrid/risk"
)

// runRiskCmd runs `ordergrid risk args...` and returns its exit code and output.
func runRiskCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runRisk(args, &out, &errb)
	return code, out.String(), errb.String()
}

// synth → train (with overrides) → eval → explain, through files.
func TestRiskCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "history.jsonl")
	if code, _, stderr := runRiskCmd("synth", "--n", "6000", "--seed", "3", "--out", data); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := risk.ReadExamples(bytes.NewReader(raw), 0)
	if err != nil || len(examples) != 6000 {
		t.Fatalf("synth wrote %d examples: %v", len(examples), err)
	}
	overrides := filepath.Join(dir, "overrides.jsonl")
	if err := os.WriteFile(overrides, []byte(`{"order_id":"o_1","decision":"cancel","score":0.93,"model":"x","features":{"customer_orders_1h":12,"amount":80,"amount_ratio":1,"hour_of_day":3}}
{"order_id":"o_2","decision":"release","score":0.6,"model":"x","features":{"amount":80,"amount_ratio":1,"hour_of_day":14}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.json")
	code, stdout, stderr := runRiskCmd("train", "--data", data, "--overrides", overrides, "--out", model, "--holdout", "0.25",
		"--seed", "2", "--trees", "20", "--depth", "3")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"held-out examples  1500", "precision", "recall", "F1", "ROC AUC", "log loss", "calibration", "0.9-1.0", "wrote " + model} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train report lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "10/20 trees") || !strings.Contains(stderr, "20/20 trees") || !strings.Contains(stderr, "(2 overrides)") {
		t.Errorf("train progress:\n%s", stderr)
	}
	file, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	m, err := risk.Parse(file)
	if err != nil {
		t.Fatalf("the trained model does not parse: %v", err)
	}
	ev, ok := m.Evaluation()
	if !ok || ev.Examples != 1500 || ev.ROCAUC < 0.8 {
		t.Fatalf("embedded evaluation %+v (present %v)", ev, ok)
	}
	if m.Trained().Examples != 4500+2 || len(m.Trees()) != 20 || m.Trained().At == "" {
		t.Fatalf("trained %+v, %d trees", m.Trained(), len(m.Trees()))
	}

	code, stdout, stderr = runRiskCmd("eval", "--model", model, "--data", data, "--threshold", "0.4")
	if code != 0 || !strings.Contains(stdout, "model "+m.Version()) || !strings.Contains(stdout, "evaluated examples  6000") || !strings.Contains(stdout, "threshold           0.400") {
		t.Fatalf("eval: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runRiskCmd("explain", "--model", model, "--features",
		`{"customer_orders_1h":12,"device_customers":14,"amount":180,"amount_ratio":1,"channel":"pinduoduo","hour_of_day":3,"sku_pressure":0.8,"first_order":true}`)
	if code != 0 || !strings.Contains(stdout, "score 0.") || !strings.Contains(stdout, "pinduoduo") || strings.Count(stdout, "\n") != 3+1+12 {
		t.Fatalf("explain: exit %d\n%s%s", code, stdout, stderr)
	}
	// The shipped model when no --model is given.
	if code, stdout, _ = runRiskCmd("explain", "--features", `{"amount":10,"amount_ratio":1}`); code != 0 || !strings.Contains(stdout, risk.Default().Version()) {
		t.Fatalf("explain with the shipped model: exit %d\n%s", code, stdout)
	}
}

func TestRiskCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"features":{"amount":1},"label":true}
{"features":{"amount":2},"label":false}

{"features":{"hour_of_day":25},"label":false}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	badOverrides := filepath.Join(dir, "overrides.jsonl")
	if err := os.WriteFile(badOverrides, []byte(`{"order_id":"o_1","decision":"ship","features":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.jsonl")
	if code, _, stderr := runRiskCmd("synth", "--n", "300", "--out", good); code != 0 {
		t.Fatal(stderr)
	}
	notModel := filepath.Join(dir, "model.json")
	if err := os.WriteFile(notModel, []byte(`{"format":"ordergrid-risk-gbt/0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--data", bad}, "line 4: features.hour_of_day: must be 0..23"},
		{[]string{"eval", "--data", bad}, "line 4: features.hour_of_day"},
		{[]string{"train", "--data", good, "--overrides", badOverrides}, "line 1: decision"},
		{[]string{"train"}, "--data is required"},
		{[]string{"train", "--data", good, "--holdout", "0.95"}, "--holdout"},
		{[]string{"train", "--data", good, "--trees", "501"}, "--trees"},
		{[]string{"train", "--data", good, "--depth", "7"}, "--depth"},
		{[]string{"train", "--data", filepath.Join(dir, "missing.jsonl")}, "--data"},
		{[]string{"train", "--data", good, "--bogus"}, "flag provided but not defined"},
		{[]string{"eval", "--data", good, "--model", notModel}, "format"},
		{[]string{"eval", "--data", good, "--threshold", "2"}, "--threshold"},
		{[]string{"explain", "--features", `{"hour_of_day":-1}`}, "--features: hour_of_day"},
		{[]string{"explain", "--features", `{"colour":"red"}`}, "unknown field"},
		{[]string{"explain"}, "--features is required"},
		{[]string{"synth", "--n", "0"}, "--n"},
		{[]string{"synth", "extra"}, "unexpected argument"},
		{[]string{"nonsense"}, "usage"},
		{nil, "usage"},
	} {
		code, _, stderr := runRiskCmd(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("risk %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
