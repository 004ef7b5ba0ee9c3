package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/bench/harness"
)

// The load harness against a real node: every scenario, both transports,
// both intake modes, runs briefly and its audit passes; the reports are
// written; bad flags and an unreachable node fail fast with a message.
func TestBenchHarness(t *testing.T) {
	n := newNode(t)
	n.start()
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"hot-sku sells out", []string{"-scenario", "hot-sku", "-duration", "3s", "-stock", "600", "-concurrency", "32"}},
		{"hot-sku batch over gRPC", []string{"-scenario", "hot-sku", "-duration", "2s", "-mode", "batch", "-batch", "50", "-concurrency", "4", "-transport", "grpc", "-grpc", n.grpc}},
		{"hot-sku over gRPC streams", []string{"-scenario", "hot-sku", "-duration", "2s", "-transport", "grpc-stream", "-grpc", n.grpc, "-concurrency", "128"}},
		{"spread zipf", []string{"-scenario", "spread", "-duration", "2s", "-skus", "300", "-warehouses", "2", "-dist", "zipf", "-concurrency", "32"}},
		{"lifecycle", []string{"-scenario", "lifecycle", "-duration", "2s", "-concurrency", "16"}},
		{"surge", []string{"-scenario", "surge", "-duration", "4s", "-base-rate", "20", "-surge-factor", "40", "-ramp", "500ms"}},
		{"open loop", []string{"-scenario", "hot-sku", "-duration", "2s", "-rate", "300"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			js := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			html := strings.TrimSuffix(js, ".json") + ".html"
			var out, errs bytes.Buffer
			args := append([]string{"-url", n.http, "-json", js, "-html", html, "-progress=false"}, c.args...)
			if code := harness.Main(args, &out, &errs); code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
			}
			var rep harness.Report
			raw, err := os.ReadFile(js)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &rep); err != nil {
				t.Fatal(err)
			}
			if !rep.Audit.Passed || rep.Counts["created"] == 0 || len(rep.Series) == 0 || rep.Latency.P99 <= 0 {
				t.Fatalf("report: %s", raw)
			}
			if h, err := os.ReadFile(html); err != nil || !bytes.Contains(h, []byte("<svg")) {
				t.Fatalf("html report: %v", err)
			}
			if c.name == "hot-sku sells out" && rep.Counts["created"] != 600 {
				t.Fatalf("sold %d of 600", rep.Counts["created"])
			}
			t.Logf("%s", strings.SplitN(out.String(), "\n", 4)[:3])
		})
	}

	for _, bad := range [][]string{
		{"-scenario", "nope"},
		{"-duration", "-1s"},
		{"-mode", "batch", "-batch", "1"},
		{"-url", "127.0.0.1:1"},
		{"-url", "http://127.0.0.1:1", "-duration", "1s"},
	} {
		var out, errs bytes.Buffer
		start := time.Now()
		if code := harness.Main(bad, &out, &errs); code != 2 || errs.Len() == 0 || time.Since(start) > 15*time.Second {
			t.Errorf("%v: exit %d after %s, stderr %q", bad, code, time.Since(start), errs.String())
		}
	}
}
