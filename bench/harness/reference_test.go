package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

const refTestToken = "og_test_reference"

// refTestServer serves a reference server over loopback for the harness's
// own client.
func refTestServer(t *testing.T) (*refServer, *httpTransport) {
	t.Helper()
	rs := newRefServer(refTestToken)
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	h := newHTTP(srv.URL, 16, refTestToken)
	t.Cleanup(func() { h.Close() })
	return rs, h
}

func refPutStock(t *testing.T, h *httpTransport, sku, wh string, onHand int64) int {
	t.Helper()
	code, _, body, err := h.do(context.Background(), "PUT", "/v1/skus/"+sku+"/stock/"+wh, []byte(`{"on_hand":`+itoa64(onHand)+`}`))
	if err != nil {
		t.Fatalf("PUT stock: %v", err)
	}
	if code != http.StatusOK && code != http.StatusConflict {
		t.Fatalf("PUT stock: %d %s", code, body)
	}
	return code
}

func itoa64(v int64) string { b, _ := json.Marshal(v); return string(b) }

func TestReferenceStrictDecode(t *testing.T) {
	rs := newRefServer(refTestToken)
	post := func(body string, auth bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if auth {
			r.Header.Set("Authorization", "Bearer "+refTestToken)
		}
		w := httptest.NewRecorder()
		rs.ServeHTTP(w, r)
		return w
	}
	valid := `{"idempotency_key":"k1","channel":"bench","lines":[{"sku":"S","qty":1}]}`
	for name, body := range map[string]string{
		"unknown field":    `{"idempotency_key":"k1","lines":[{"sku":"S","qty":1}],"bogus":1}`,
		"unknown in line":  `{"idempotency_key":"k1","lines":[{"sku":"S","qty":1,"colour":"red"}]}`,
		"wrong type":       `{"idempotency_key":"k1","lines":[{"sku":"S","qty":"one"}]}`,
		"trailing data":    valid + `{}`,
		"not JSON":         `idempotency_key=k1`,
		"no lines":         `{"idempotency_key":"k1"}`,
		"no idempotency":   `{"lines":[{"sku":"S","qty":1}]}`,
		"quantity below 1": `{"idempotency_key":"k1","lines":[{"sku":"S","qty":0}]}`,
	} {
		w := post(body, true)
		if w.Code < 400 || w.Code >= 500 {
			t.Errorf("%s: %d %s, want 4xx", name, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q, want a problem", name, ct)
		}
	}
	if w := post(`{"idempotency_key":"k1","lines":[{"sku":"S","qty":1}],"bogus":1}`, true); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), `"field":"bogus"`) {
		t.Errorf("unknown field: %d %s, want 400 naming the field", w.Code, w.Body)
	}
	if w := post(valid, false); w.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", w.Code)
	}
	// Known SKU-less: a valid order of a SKU with no stock is refused for stock.
	if w := post(valid, true); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "/insufficient-stock") {
		t.Errorf("no stock: %d %s, want 409 insufficient-stock", w.Code, w.Body)
	}
}

func TestReferenceCreateAndRetry(t *testing.T) {
	_, h := refTestServer(t)
	ctx := context.Background()
	refPutStock(t, h, "HOT", "WH-1", 10)
	req := order("r", 1, line("HOT", 2))
	first := h.Create(ctx, req)
	if first.Class != Created || first.ID == "" {
		t.Fatalf("create: %+v, want 201 with an id", first)
	}
	retry := h.Create(ctx, req)
	if retry.Class != Replayed || retry.ID != first.ID {
		t.Fatalf("retry: %+v, want 200 with id %s", retry, first.ID)
	}
	// The answer is the node's shape: id and status at the top.
	code, hdr, body, err := h.do(ctx, "POST", "/v1/orders", mustJSON(t, req), "Idempotency-Key", req.IdempotencyKey)
	if err != nil || code != http.StatusOK || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry raw: %d %v %s", code, err, body)
	}
	var v struct{ ID, Status string }
	if err := json.Unmarshal(body, &v); err != nil || v.ID != first.ID || v.Status != "pending_payment" {
		t.Fatalf("retry body %s: %+v %v", body, v, err)
	}

	// A batch: new orders 201, a retry among them 200 with its id, the
	// ones past the stock 409 insufficient-stock.
	reqs := []*pb.CreateOrderRequest{req}
	for i := int64(2); i <= 6; i++ {
		reqs = append(reqs, order("r", i, line("HOT", 2)))
	}
	outs := h.CreateBatch(ctx, reqs)
	want := []Class{Replayed, Created, Created, Created, Created, OutOfStock}
	for i, o := range outs {
		if o.Class != want[i] {
			t.Errorf("batch[%d]: %v %s, want %v", i, o.Class, o.Detail, want[i])
		}
	}
	if outs[0].ID != first.ID {
		t.Errorf("batch retry: id %s, want %s", outs[0].ID, first.ID)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReferenceNeverOversells(t *testing.T) {
	rs, h := refTestServer(t)
	ctx := context.Background()
	refPutStock(t, h, "HOT", "WH-1", 60)
	refPutStock(t, h, "HOT", "WH-2", 40)
	const senders, perSender = 8, 40
	var mu sync.Mutex
	counts := map[Class]int{}
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; i < perSender; i++ {
				o := h.Create(ctx, order("n", int64(s*perSender+i), line("HOT", 1)))
				mu.Lock()
				counts[o.Class]++
				mu.Unlock()
			}
		}(s)
	}
	wg.Wait()
	if counts[Created] != 100 || counts[OutOfStock] != senders*perSender-100 {
		t.Fatalf("answers %v: want 100 created and the rest out of stock", counts)
	}
	var st refStockView
	if err := h.getJSON(ctx, "/v1/skus/HOT", &st); err != nil {
		t.Fatal(err)
	}
	if st.Available != 0 || st.Reserved != 100 || st.OnHand != 100 {
		t.Fatalf("stock %+v, want 100 on hand, 100 reserved, 0 available", st)
	}
	// Stock below what is reserved is refused; a cancel gives units back.
	if code := refPutStock(t, h, "HOT", "WH-2", 0); code != http.StatusConflict {
		t.Fatalf("stock below reserved: %d, want 409", code)
	}
	var some string
	rs.mu.Lock()
	for id := range rs.byID {
		some = id
		break
	}
	rs.mu.Unlock()
	code, _, body, err := h.do(ctx, "POST", "/v1/orders/"+some+"/events", []byte(`{"type":"cancelled"}`))
	if err != nil || code != http.StatusOK {
		t.Fatalf("cancel: %d %v %s", code, err, body)
	}
	if err := h.getJSON(ctx, "/v1/skus/HOT", &st); err != nil || st.Available != 1 {
		t.Fatalf("after a cancel: %+v %v, want 1 available", st, err)
	}
}

func TestReferenceProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	s, err := procCPUSeconds("self")
	if err != nil || s < 0 {
		t.Fatalf("procCPUSeconds(self) = %v, %v", s, err)
	}
	if _, _, ok := selfCommand([]string{"-scenario", "hot-sku"}); ok {
		t.Fatal("selfCommand offers to re-run a test binary")
	}
}

// TestReferenceMain runs Main with -reference against a reference server
// standing in for the node, with the audit off: a short run of each, and
// the reference block in the text and JSON reports.
func TestReferenceMain(t *testing.T) {
	srv := httptest.NewServer(newRefServer(refTestToken))
	defer srv.Close()
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errs bytes.Buffer
	code := Main([]string{"-url", srv.URL, "-token", refTestToken, "-scenario", "hot-sku", "-duration", "200ms", "-concurrency", "2",
		"-stock", "1000000", "-audit=false", "-ledger=false", "-stream=false", "-holds=false", "-progress=false", "-reference", "-json", jsonPath, "-html", htmlPath}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"reference: a do-nothing HTTP intake (in-process)", "node ÷ reference", "accepted/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
	var rep struct {
		Reference *ReferenceResult `json:"reference"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Reference == nil || rep.Reference.Reference == nil ||
		rep.Reference.Node == nil || rep.Reference.Ratio == nil || rep.Reference.Order != referenceOrder {
		t.Fatalf("JSON report's reference: %+v %v", rep.Reference, err)
	}
	if len(rep.Reference.Errors) > 0 {
		t.Errorf("the reference run had unexpected answers: %v", rep.Reference.Errors)
	}
	h, err := os.ReadFile(htmlPath)
	if err != nil || !bytes.Contains(h, []byte("<h2>Reference</h2>")) {
		t.Errorf("HTML report lacks the reference: %v", err)
	}

	// gRPC: no reference run, said so.
	out.Reset()
	if r := referenceRun(context.Background(), &Options{Transport: "grpc"}, nil, &errs); !strings.Contains(r.Skipped, "HTTP only") {
		t.Errorf("grpc: %+v, want skipped for HTTP only", r)
	}
}
