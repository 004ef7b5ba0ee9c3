package risk

import (
	"bytes"
	"flag"
	"os"
	"runtime"
	"testing"
)

var update = flag.Bool("update", false, "rewrite default_model.json from the trainer")

// The shipped model is reproducible: retraining on the same synthetic
// history with the default options gives the embedded file byte for byte.
func TestDefaultModelReproducible(t *testing.T) {
	m, err := DefaultRecipe()
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("default_model.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote default_model.json, version %s", m.Version())
		return
	}
	if runtime.GOARCH != "amd64" {
		// Go may fuse multiply-adds and math's assembly differs by
		// architecture, so the last bits of a float can too.
		t.Skipf("the shipped model was trained on amd64; byte-for-byte reproduction is checked there, not on %s", runtime.GOARCH)
	}
	if !bytes.Equal(got, defaultModelFile) {
		t.Fatalf("retraining gives a different model file (version %s, embedded %s); run go test ./risk -run TestDefaultModelReproducible -update if the trainer changed on purpose",
			m.Version(), Default().Version())
	}
}

func TestDefaultModelHeldOutAUC(t *testing.T) {
	m := Default()
	if m.Trained().Examples != DefaultExamples || m.Trained().Seed != 0 || m.Trained().At != "" {
		t.Fatalf("trained = %+v", m.Trained())
	}
	ev := Evaluate(m, Synthetic(2, 20_000), 0.5)
	if ev.ROCAUC < 0.85 {
		t.Fatalf("held-out ROC AUC %.4f < 0.85", ev.ROCAUC)
	}
	t.Logf("held-out: AUC %.4f precision %.3f recall %.3f log loss %.4f", ev.ROCAUC, ev.Precision, ev.Recall, ev.LogLoss)
}
