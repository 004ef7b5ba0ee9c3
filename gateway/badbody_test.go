package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// bodyRoute is a route that takes a body, with bodies that break it.
type bodyRoute struct {
	method, path string
	// emptyOK: an empty body is a valid request (pay, cancel).
	emptyOK bool
	// notJSON: the body is not JSON (an archive) or is read only after a
	// signature check (a channel push): only the body-level cases apply.
	notJSON bool
	// wrongType and unknown are bodies with a wrong-typed nested value and
	// an unknown field; wrongField and unknownField the full paths the
	// problem must name.
	wrongType, wrongField     string
	unknown, unknownField     string
	wrongInResult, unknownRes bool // a batch answers these per order, in its results
	// archive: the body is a gzip'd archive, not JSON.
	archive bool
}

var bodyRoutes = []bodyRoute{
	{method: "POST", path: "/v1/orders",
		wrongType: `{"lines":[{"sku":"a","qty":1},{"sku":"b","qty":"2"}]}`, wrongField: "lines[1].qty",
		unknown: `{"customer":{"id":"c","nickname":"x"}}`, unknownField: "customer.nickname"},
	{method: "POST", path: "/v1/orders:batch",
		wrongType: `{"orders":[{"channel":"a"},{"lines":[{"sku":"b","qty":true}]}]}`, wrongField: "orders[1].lines[0].qty", wrongInResult: true,
		unknown: `{"orders":[{"customer":{"id":"c","nickname":"x"}}]}`, unknownField: "orders[0].customer.nickname", unknownRes: true},
	{method: "POST", path: "/v1/orders/o_00000000000000000000000000000000/events",
		wrongType: `{"type":"shipped","carrier":5}`, wrongField: "carrier",
		unknown: `{"type":"shipped","parcel":{"id":1}}`, unknownField: "parcel"},
	{method: "POST", path: "/v1/orders/o_00000000000000000000000000000000/pay", emptyOK: true,
		wrongType: `{"reason":["a"]}`, wrongField: "reason", unknown: `{"reason":"x","by":"y"}`, unknownField: "by"},
	{method: "POST", path: "/v1/orders/o_00000000000000000000000000000000/cancel", emptyOK: true,
		wrongType: `{"reason":{}}`, wrongField: "reason", unknown: `{"why":"x"}`, unknownField: "why"},
	{method: "PUT", path: "/v1/skus/BODY-1/stock/WH1",
		wrongType: `{"on_hand":1.5}`, wrongField: "on_hand", unknown: `{"on_hand":1,"on_order":2}`, unknownField: "on_order"},
	{method: "POST", path: "/v1/cluster/nodes",
		wrongType: `{"id":7,"raft_addr":"x"}`, wrongField: "id", unknown: `{"id":"n","raft_addr":"x","port":1}`, unknownField: "port"},
	{method: "PUT", path: "/v1/warehouses/WH-BODY",
		wrongType: `{"rates":[{"region":"*","cost":"1"},{"region":"east","cost":2}]}`, wrongField: "rates[1].cost",
		unknown: `{"rates":[{"region":"*","cost":"1","colour":"red"}]}`, unknownField: "rates[0].colour"},
	{method: "PUT", path: "/v1/warehouses/WH-BODY/state",
		wrongType: `{"state":["down"]}`, wrongField: "state", unknown: `{"state":"down","until":"x"}`, unknownField: "until"},
	{method: "PUT", path: "/v1/routing/strategies/body",
		wrongType: `{"weights":{"cost":"high"}}`, wrongField: "weights.cost",
		unknown: `{"weights":{"cost":1},"tier_rules":[{"tier":"vip","rule":"fastest_within_cost_cap","cap":"1"}]}`, unknownField: "tier_rules[0].cap"},
	{method: "PUT", path: "/v1/routing/selection",
		wrongType: `{"strategy":"s","candidate":{"strategy":"t","share_percent":"ten"}}`, wrongField: "candidate.share_percent",
		unknown: `{"strategy":"s","candidate":{"strategy":"t","weight":1}}`, unknownField: "candidate.weight"},
	{method: "POST", path: "/v1/routing/simulations",
		wrongType: `{"strategies":["default"],"source":{"synthetic":{"seed":"x","orders":1}}}`, wrongField: "source.synthetic.seed",
		unknown: `{"drafts":[{"weights":{"cost":1},"colour":1}],"source":{"synthetic":{"seed":1,"orders":1}}}`, unknownField: "drafts[0].colour"},
	{method: "PUT", path: "/v1/limits/body",
		wrongType: `{"skus":["A"],"per":"customer","max_qty":"3"}`, wrongField: "max_qty",
		unknown: `{"skus":["A"],"per":"customer","max_qty":3,"colour":"red"}`, unknownField: "colour"},
	{method: "POST", path: "/v1/holds/o_00000000000000000000000000000000/decide",
		wrongType: `{"decision":"release","reason":["a"]}`, wrongField: "reason", unknown: `{"decision":"release","reason":"x","by":"y"}`, unknownField: "by"},
	{method: "POST", path: "/v1/admin/archives/restore?name=a.jsonl.gz", notJSON: true, archive: true},
	{method: "POST", path: "/v1/channels/douyin/orders", notJSON: true},
}

// leaks are what a problem's detail must never hold: Go's words, not the
// client's.
var leaks = []string{"json:", "Go", "int64", "float64", "struct", "unmarshal", "reflect"}

// TestBadBodiesNameTheField sends every route that takes a body an empty
// body, JSON cut short, a body cut short of its Content-Length, one over
// the size limit, a wrong-typed nested value and an unknown field, and
// checks the status, that the problem names the field by its full path
// (or the body), and that its detail speaks JSON, not Go.
func TestBadBodiesNameTheField(t *testing.T) {
	tg := startGateway(t)
	srv := httptest.NewServer(tg.gw)
	defer srv.Close()
	big := `{"x":"` + strings.Repeat("a", 5<<20) + `"}`
	for _, rt := range bodyRoutes {
		type bodyCase struct {
			name, body string
			code       int
			field      string
			inResult   bool
		}
		var cases []bodyCase
		if !rt.archive { // an archive may be 256 MiB: too much to send here
			cases = append(cases, bodyCase{"oversized", big, http.StatusRequestEntityTooLarge, "body", false})
		}
		if !rt.notJSON {
			cases = append(cases,
				bodyCase{"truncated JSON", `{"id`, http.StatusBadRequest, "body", false},
				bodyCase{"not an object", `[1]`, http.StatusBadRequest, "body", false},
				bodyCase{"wrong type", rt.wrongType, http.StatusBadRequest, rt.wrongField, rt.wrongInResult},
				bodyCase{"unknown field", rt.unknown, http.StatusBadRequest, rt.unknownField, rt.unknownRes})
			if !rt.emptyOK {
				cases = append(cases, bodyCase{"empty", ``, http.StatusBadRequest, "body", false})
			}
		} else if rt.archive {
			cases = append(cases, bodyCase{"empty", ``, http.StatusBadRequest, "body", false})
		}
		for _, c := range cases {
			t.Run(rt.method+" "+rt.path+" "+c.name, func(t *testing.T) {
				rec := tg.doBody(rt.method, rt.path, c.body, "application/json")
				body := rec.Body.Bytes()
				if c.inResult {
					body = batchResultProblem(t, rec, c.code)
				} else if rec.Code != c.code {
					t.Fatalf("status %d, want %d: %s", rec.Code, c.code, rec.Body)
				}
				checkProblem(t, body, c.code, c.field)
			})
		}
		t.Run(rt.method+" "+rt.path+" cut short", func(t *testing.T) {
			code, body := sendCutShort(t, srv.URL, rt, tg.tokens[RoleAdmin])
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", code, body)
			}
			checkProblem(t, body, http.StatusBadRequest, "body")
		})
	}
}

// doBody serves one request as admin with the given body and content type.
func (tg *testGateway) doBody(method, path, body, ctype string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+tg.tokens[RoleAdmin])
	rec := httptest.NewRecorder()
	tg.gw.ServeHTTP(rec, req)
	return rec
}

// batchResultProblem returns the problem of the one refused order of a
// batch's answer.
func batchResultProblem(t *testing.T, rec *httptest.ResponseRecorder, code int) []byte {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("batch status %d: %s", rec.Code, rec.Body)
	}
	var out struct {
		Results []struct {
			Status  int             `json:"status"`
			Problem json.RawMessage `json:"problem"`
		} `json:"results"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Results {
		if r.Status == code {
			return r.Problem
		}
	}
	t.Fatalf("no result with status %d: %s", code, rec.Body)
	return nil
}

// checkProblem checks a problem+json body: its status, that it names field
// among its errors, and that its detail leaks nothing of Go.
func checkProblem(t *testing.T, body []byte, code int, field string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Errors []struct {
			Field  string `json:"field"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem: %v: %s", err, body)
	}
	if p.Status != code || p.Detail == "" || !strings.HasPrefix(p.Type, ProblemTypeBase) {
		t.Fatalf("problem %s", body)
	}
	named := false
	for _, e := range p.Errors {
		named = named || e.Field == field
		for _, l := range leaks {
			if strings.Contains(e.Detail, l) {
				t.Errorf("error detail %q holds %q", e.Detail, l)
			}
		}
	}
	if !named {
		t.Errorf("the problem does not name %q: %s", field, body)
	}
	for _, l := range leaks {
		if strings.Contains(p.Detail, l) {
			t.Errorf("detail %q holds %q", p.Detail, l)
		}
	}
}

// sendCutShort sends a request whose body ends before its Content-Length
// (the client closes its side), over a real connection, and returns the
// answer.
func sendCutShort(t *testing.T, base string, rt bodyRoute, token string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	part := `{"channel":"douyin","lines":[`
	if rt.archive { // the start of a gzip stream, so the archive reader asks for more
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		if _, err := zw.Write([]byte(strings.Repeat(part, 1000))); err != nil || zw.Close() != nil {
			t.Fatal("gzip")
		}
		part = zb.String()[:24]
	}
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n%s", rt.method, rt.path, token, len(part)+100, part); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}
