package gateway

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/intake"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/screening"
)

// The holds, purchase limits and risk routes (holds.go) and the intake's
// refusals (service.go created), through HTTP with real tokens over the
// shared node, which screens with the shipped risk model and holds
// address findings (testScreenOptions).

// testUnique makes the ids of one test unique within the test binary's node.
var testUnique atomic.Int64

func unique(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(testUnique.Add(1), 10)
}

// call serves one request as role with headers (name, value pairs).
func (tg *testGateway) call(method, path, body string, role Role, headers ...string) *httptest.ResponseRecorder {
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	if rd != nil {
		req = httptest.NewRequest(method, path, rd)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+tg.tokens[role])
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	tg.gw.ServeHTTP(rec, req)
	return rec
}

// testProblem is a problem answer as a client reads it.
type testProblem struct {
	Type          string          `json:"type"`
	Status        int             `json:"status"`
	Detail        string          `json:"detail"`
	Errors        []violationView `json:"errors"`
	SKU           string          `json:"sku"`
	CurrentStatus string          `json:"current_status"`
}

// wantProblem fails the test unless rec is a problem of code and name
// whose first error names field ("" when none is checked).
func wantProblem(t *testing.T, what string, rec *httptest.ResponseRecorder, code int, name, field string) testProblem {
	t.Helper()
	var p testProblem
	if rec.Code != code {
		t.Fatalf("%s: %d %s, want %d", what, rec.Code, rec.Body, code)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%s: not a problem: %s", what, rec.Body)
	}
	if name != "" && p.Type != ProblemTypeBase+name {
		t.Fatalf("%s: type %q, want %q (%s)", what, p.Type, ProblemTypeBase+name, rec.Body)
	}
	if field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != field) {
		t.Fatalf("%s: errors %+v, want the first naming %q", what, p.Errors, field)
	}
	return p
}

// decodeAnswer decodes a JSON answer of code into v.
func decodeAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder, code int, v any) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("%s: %d %s, want %d", what, rec.Code, rec.Body, code)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, rec.Body)
	}
}

// testHold is an order's hold as the API shows it.
type testHold struct {
	Reason         string        `json:"reason"`
	Findings       []testFinding `json:"findings"`
	HeldAt         string        `json:"held_at"`
	Until          string        `json:"until"`
	Decision       string        `json:"decision"`
	DecidedBy      string        `json:"decided_by"`
	DecisionReason string        `json:"decision_reason"`
	DecidedAt      string        `json:"decided_at"`
}

type testFinding struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// findingCodes are the findings' codes.
func findingCodes(fs []testFinding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Code
	}
	return out
}

// testOrderOut is an order answer.
type testOrderOut struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Channel     string    `json:"channel"`
	PayBy       string    `json:"pay_by"`
	Hold        *testHold `json:"hold"`
	RiskScore   *float64  `json:"risk_score"`
	RiskVerdict string    `json:"risk_verdict"`
}

// testOrderIn is an order to create: one line per SKU, qty 1 unless set.
type testOrderIn struct {
	channel, id, customer, address, device string
	skus                                   []string
	qty                                    int64
}

func (o testOrderIn) body() string {
	qty := o.qty
	if qty == 0 {
		qty = 1
	}
	type line struct {
		SKU       string `json:"sku"`
		Qty       int64  `json:"qty"`
		UnitPrice string `json:"unit_price"`
	}
	customer := map[string]string{"id": o.customer}
	if o.address != "" {
		customer["address"] = o.address
	}
	doc := map[string]any{"channel": cmpOr(o.channel, "douyin"), "channel_order_id": o.id, "currency": "CNY", "customer": customer}
	var lines []line
	for _, s := range o.skus {
		lines = append(lines, line{SKU: s, Qty: qty, UnitPrice: "10.00"})
	}
	doc["lines"] = lines
	if o.device != "" {
		doc["device_id"] = o.device
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // a test's own value
	}
	return string(b)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// postOrder posts an order as admin (of any channel), with an idempotency key
// when key is not empty.
func (tg *testGateway) postOrder(o testOrderIn, key string) *httptest.ResponseRecorder {
	if key != "" {
		return tg.call("POST", "/v1/orders", o.body(), RoleAdmin, "Idempotency-Key", key)
	}
	return tg.call("POST", "/v1/orders", o.body(), RoleAdmin)
}

// created posts an order and fails the test unless it is created (201).
func (tg *testGateway) created(t *testing.T, o testOrderIn) testOrderOut {
	t.Helper()
	var out testOrderOut
	decodeAnswer(t, "order "+o.id, tg.postOrder(o, ""), http.StatusCreated, &out)
	return out
}

// stocked sets each SKU's on-hand quantity at warehouse WH-HOLDS.
func (tg *testGateway) stocked(t *testing.T, onHand int64, skus ...string) {
	t.Helper()
	for _, s := range skus {
		tg.must(t, "PUT", "/v1/skus/"+s+"/stock/WH-HOLDS", `{"on_hand":`+strconv.FormatInt(onHand, 10)+`}`, http.StatusOK)
	}
}

// stockTotal reads a SKU's total stock level.
func (tg *testGateway) stockTotal(t *testing.T, sku string) stockLevelView {
	t.Helper()
	var s stockView
	decodeAnswer(t, "stock of "+sku, tg.call("GET", "/v1/skus/"+sku, "", RoleOps), http.StatusOK, &s)
	return s.Total
}

// putLimit puts a limit rule and fails the test unless it answers code.
func (tg *testGateway) putLimit(t *testing.T, id, doc string, code int, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	rec := tg.call("PUT", "/v1/limits/"+id, doc, RoleOps, headers...)
	if rec.Code != code {
		t.Fatalf("PUT limit %s %s: %d %s, want %d", id, doc, rec.Code, rec.Body, code)
	}
	return rec
}

// testLimit is a rule as the API shows it.
type testLimit struct {
	ID      string   `json:"id"`
	SKUs    []string `json:"skus"`
	Per     string   `json:"per"`
	MaxQty  int64    `json:"max_qty"`
	Action  string   `json:"action"`
	Version uint64   `json:"version"`
}

// testHoldItem is one held order in GET /v1/holds.
type testHoldItem struct {
	Order     string        `json:"order"`
	Reason    string        `json:"reason"`
	Findings  []testFinding `json:"findings"`
	HeldAt    string        `json:"held_at"`
	Until     string        `json:"until"`
	Channel   string        `json:"channel"`
	RiskScore *float64      `json:"risk_score"`
	Cursor    string        `json:"cursor"`
}

// testHolds is GET /v1/holds' answer.
type testHolds struct {
	Holds  []testHoldItem   `json:"holds"`
	Counts map[string]int64 `json:"counts"`
	Next   string           `json:"next"`
}

func (h testHolds) has(id string) bool {
	return slices.ContainsFunc(h.Holds, func(x testHoldItem) bool { return x.Order == id })
}

func (tg *testGateway) holds(t *testing.T, query string) testHolds {
	t.Helper()
	var h testHolds
	decodeAnswer(t, "GET /v1/holds"+query, tg.call("GET", "/v1/holds"+query, "", RoleOps), http.StatusOK, &h)
	return h
}

// near fails the test unless the RFC 3339 time s is within a minute of want.
func near(t *testing.T, what, s string, want time.Time) {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %q: %v", what, s, err)
	}
	if d := at.Sub(want); d < -time.Minute || d > time.Minute {
		t.Fatalf("%s: %s, want about %s", what, at, want.UTC())
	}
}

// limitState is what a refused limit call must leave as it was.
func (tg *testGateway) limitState(t *testing.T, id string) string {
	t.Helper()
	rec := tg.call("GET", "/v1/limits/"+id, "", RoleOps)
	return strconv.Itoa(rec.Code) + " " + rec.Header().Get("ETag") + " " + rec.Body.String()
}

// TestLimitRoutes puts, reads, refuses and deletes a purchase-limit rule.
func TestLimitRoutes(t *testing.T) {
	tg := startGateway(t)
	id := unique("lim-crud-")
	rec := tg.putLimit(t, id, `{"skus":["LC-1","LC-2"],"per":"customer","max_qty":3}`, http.StatusCreated)
	if e := rec.Header().Get("ETag"); e != `"1"` {
		t.Fatalf("first put: ETag %s, want \"1\"", e)
	}
	var l testLimit
	decodeAnswer(t, "first put", rec, http.StatusCreated, &l)
	if l.ID != id || l.Version != 1 || l.Action != "hold" || l.MaxQty != 3 || l.Per != "customer" || len(l.SKUs) != 2 {
		t.Fatalf("first put: %+v", l)
	}
	rec = tg.putLimit(t, id, `{"id":"`+id+`","skus":["LC-1"],"per":"customer","max_qty":4,"action":"refuse"}`, http.StatusOK, "If-Match", `"1"`)
	if e := rec.Header().Get("ETag"); e != `"2"` {
		t.Fatalf("second put: ETag %s, want \"2\"", e)
	}
	before := tg.limitState(t, id)
	if !strings.HasPrefix(before, `200 "2" `) {
		t.Fatalf("GET after two puts: %s", before)
	}
	listedBefore := tg.call("GET", "/v1/limits", "", RoleCompliance).Body.String()

	valid := `"skus":["LC-1"],"per":"customer","max_qty":1`
	refused := []struct {
		name, doc   string
		headers     []string
		code        int
		problem     string
		field       string
		role        Role
		pathID      string
		detailHolds string
	}{
		{name: "stale If-Match", doc: `{` + valid + `}`, headers: []string{"If-Match", `"1"`}, code: 412, problem: "version-mismatch", field: "If-Match"},
		{name: "bad If-Match", doc: `{` + valid + `}`, headers: []string{"If-Match", `soon`}, code: 400, problem: "malformed-request", field: "If-Match"},
		{name: "per", doc: `{"skus":["LC-1"],"per":"household","max_qty":1}`, code: 422, problem: "validation-failed", field: "per"},
		{name: "max_qty 0", doc: `{"skus":["LC-1"],"per":"customer","max_qty":0}`, code: 422, problem: "validation-failed", field: "max_qty"},
		{name: "max_qty over", doc: `{"skus":["LC-1"],"per":"customer","max_qty":1000001}`, code: 422, problem: "validation-failed", field: "max_qty"},
		{name: "empty sku", doc: `{"skus":["LC-1",""],"per":"customer","max_qty":1}`, code: 422, problem: "validation-failed", field: "skus[1]"},
		{name: "sku twice", doc: `{"skus":["LC-1","LC-1"],"per":"customer","max_qty":1}`, code: 422, problem: "validation-failed", field: "skus[1]"},
		{name: "no skus", doc: `{"skus":[],"per":"customer","max_qty":1}`, code: 422, problem: "validation-failed", field: "skus"},
		{name: "action", doc: `{` + valid + `,"action":"warn"}`, code: 422, problem: "validation-failed", field: "action"},
		{name: "from", doc: `{` + valid + `,"from":"tomorrow"}`, code: 422, problem: "validation-failed", field: "from"},
		{name: "to", doc: `{` + valid + `,"to":"2026-13-01T00:00:00Z"}`, code: 422, problem: "validation-failed", field: "to"},
		{name: "to before from", doc: `{` + valid + `,"from":"2026-06-18T00:00:00Z","to":"2026-06-17T00:00:00Z"}`, code: 422, problem: "validation-failed", field: "to"},
		{name: "id of another rule", doc: `{"id":"other",` + valid + `}`, code: 422, problem: "validation-failed", field: "id", detailHolds: "other"},
		{name: "bad id in URL", doc: `{` + valid + `}`, pathID: "Bad%20Id", code: 422, problem: "validation-failed", field: "id"},
		{name: "truncated JSON", doc: `{"skus":["LC-1"`, code: 400, problem: "malformed-request", field: "body"},
		{name: "not an object", doc: `[1]`, code: 400, problem: "malformed-request", field: "body"},
		{name: "unknown field", doc: `{` + valid + `,"colour":"red"}`, code: 400, problem: "malformed-request", field: "colour"},
		{name: "wrong type", doc: `{"skus":["LC-1"],"per":"customer","max_qty":"three"}`, code: 400, problem: "malformed-request", field: "max_qty"},
		{name: "not ops", doc: `{` + valid + `}`, role: RoleCompliance, code: 403, problem: "forbidden"},
		{name: "intake", doc: `{` + valid + `}`, role: RoleIntake, code: 403, problem: "forbidden"},
	}
	for _, c := range refused {
		path := "/v1/limits/" + cmpOr(c.pathID, id)
		rec := tg.call("PUT", path, c.doc, Role(cmpOr(string(c.role), string(RoleOps))), c.headers...)
		p := wantProblem(t, c.name, rec, c.code, c.problem, c.field)
		if c.detailHolds != "" && !strings.Contains(p.Detail, c.detailHolds) {
			t.Errorf("%s: detail %q does not name %q", c.name, p.Detail, c.detailHolds)
		}
		for _, leak := range leaks {
			if strings.Contains(p.Detail, leak) {
				t.Errorf("%s: detail %q speaks Go (%q)", c.name, p.Detail, leak)
			}
		}
		if after := tg.limitState(t, id); after != before {
			t.Fatalf("%s changed the rule:\n%s\nwas\n%s", c.name, after, before)
		}
	}
	if listed := tg.call("GET", "/v1/limits", "", RoleCompliance).Body.String(); listed != listedBefore {
		t.Fatalf("the refused puts changed the list:\n%s\nwas\n%s", listed, listedBefore)
	}

	var list struct {
		Limits []testLimit `json:"limits"`
	}
	decodeAnswer(t, "GET /v1/limits", tg.call("GET", "/v1/limits", "", RoleCompliance), http.StatusOK, &list)
	i := slices.IndexFunc(list.Limits, func(l testLimit) bool { return l.ID == id })
	if i < 0 || list.Limits[i].Version != 2 || list.Limits[i].MaxQty != 4 || list.Limits[i].Action != "refuse" {
		t.Fatalf("GET /v1/limits: %+v, want %s version 2", list.Limits, id)
	}
	wantProblem(t, "GET an unknown limit", tg.call("GET", "/v1/limits/"+unique("nope-"), "", RoleOps), 404, "not-found", "limit")
	wantProblem(t, "GET limits as intake", tg.call("GET", "/v1/limits", "", RoleIntake), 403, "forbidden", "")

	wantProblem(t, "DELETE stale", tg.call("DELETE", "/v1/limits/"+id, "", RoleOps, "If-Match", `"1"`), 412, "version-mismatch", "If-Match")
	wantProblem(t, "DELETE as compliance", tg.call("DELETE", "/v1/limits/"+id, "", RoleCompliance), 403, "forbidden", "")
	if after := tg.limitState(t, id); after != before {
		t.Fatalf("a refused delete changed the rule: %s", after)
	}
	if rec := tg.call("DELETE", "/v1/limits/"+id, "", RoleOps, "If-Match", `"2"`); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	wantProblem(t, "GET deleted", tg.call("GET", "/v1/limits/"+id, "", RoleOps), 404, "not-found", "limit")
	// Deleting it again finishes what the first left (idempotent): 204.
	if rec := tg.call("DELETE", "/v1/limits/"+id, "", RoleOps); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE again: %d %s", rec.Code, rec.Body)
	}
	wantProblem(t, "DELETE never put", tg.call("DELETE", "/v1/limits/never-put-"+id, "", RoleOps), 404, "not-found", "limit")
	decodeAnswer(t, "GET /v1/limits", tg.call("GET", "/v1/limits", "", RoleCompliance), http.StatusOK, &list)
	if slices.ContainsFunc(list.Limits, func(l testLimit) bool { return l.ID == id }) {
		t.Fatalf("deleted rule still listed: %+v", list.Limits)
	}
	// A deleted rule's id is put again (201), its versions going on.
	tg.putLimit(t, id, `{`+valid+`}`, http.StatusCreated)
	tg.call("DELETE", "/v1/limits/"+id, "", RoleOps)
}

// TestPurchaseLimitRefusesAtIntake: a refusing limit per customer counts
// one customer's orders across channels, refuses the one past it naming
// the line, replays a retried order, and refuses an order whose buyer it
// cannot name; a holding one holds that order instead.
func TestPurchaseLimitRefusesAtIntake(t *testing.T) {
	tg := startGateway(t)
	sku, other := unique("PL-"), unique("PLO-")
	tg.stocked(t, 100, sku, other)
	rule := unique("lim-refuse-")
	tg.putLimit(t, rule, `{"skus":["`+sku+`"],"per":"customer","max_qty":2,"action":"refuse"}`, http.StatusCreated)
	customer := unique("cust-")
	first := testOrderIn{channel: "douyin", id: unique("pl-a-"), customer: customer, skus: []string{sku}}
	second := testOrderIn{channel: "tmall", id: unique("pl-b-"), customer: customer, skus: []string{sku}}
	for _, o := range []testOrderIn{first, second} {
		var out testOrderOut
		decodeAnswer(t, "order "+o.id, tg.postOrder(o, "key-"+o.id), http.StatusCreated, &out)
		if out.Status != "pending_payment" || out.Hold != nil {
			t.Fatalf("order %s: %+v, want pending_payment unheld", o.id, out)
		}
	}
	countsBefore := tg.holds(t, "").Counts
	third := testOrderIn{channel: "douyin", id: unique("pl-c-"), customer: customer, skus: []string{sku}}
	p := wantProblem(t, "the third order", tg.postOrder(third, ""), http.StatusUnprocessableEntity, "purchase-limit", "lines[0].qty")
	if !strings.Contains(p.Detail, rule) || !strings.Contains(p.Errors[0].Detail, rule) || p.SKU != sku {
		t.Fatalf("the third order's problem does not name rule %s and SKU %s: %+v", rule, sku, p)
	}
	// The limited SKU on the second line: the problem names that line.
	fourth := testOrderIn{channel: "douyin", id: unique("pl-d-"), customer: customer, skus: []string{other, sku}}
	wantProblem(t, "the fourth order", tg.postOrder(fourth, ""), http.StatusUnprocessableEntity, "purchase-limit", "lines[1].qty")
	// A retry of an order counted is its answer again, not a refusal.
	rec := tg.postOrder(second, "key-"+second.id)
	var replay testOrderOut
	decodeAnswer(t, "retry of the second order", rec, http.StatusOK, &replay)
	if rec.Header().Get("Idempotent-Replayed") != "true" || replay.Status != "pending_payment" {
		t.Fatalf("retry: %s %s", rec.Header(), rec.Body)
	}
	if st := tg.stockTotal(t, sku); st.Pending != 2 || st.Available != 98 {
		t.Fatalf("stock of %s: %+v, want pending 2, available 98", sku, st)
	}
	if st := tg.stockTotal(t, other); st.Pending != 0 || st.Available != 100 {
		t.Fatalf("stock of %s: %+v, the refused order reserved it", other, st)
	}
	wantProblem(t, "GET the refused order", tg.call("GET", "/v1/orders/"+orderIDOf(third), "", RoleOps), 404, "not-found", "")
	if c := tg.holds(t, "").Counts; !mapsEqual(c, countsBefore) {
		t.Fatalf("refusals changed the holds: %v, was %v", c, countsBefore)
	}
	// Another customer is not limited by this one's orders.
	tg.created(t, testOrderIn{id: unique("pl-e-"), customer: unique("cust-"), skus: []string{sku}, qty: 2})

	// Per device: an order without a device cannot be counted.
	dsku := unique("PLD-")
	tg.stocked(t, 10, dsku)
	drule := unique("lim-device-")
	tg.putLimit(t, drule, `{"skus":["`+dsku+`"],"per":"device","max_qty":5,"action":"refuse"}`, http.StatusCreated)
	p = wantProblem(t, "no device, refusing", tg.postOrder(testOrderIn{id: unique("pl-f-"), customer: customer, skus: []string{dsku}}, ""),
		http.StatusUnprocessableEntity, "purchase-limit", "lines[0].qty")
	if !strings.Contains(p.Detail, drule) || !strings.Contains(p.Detail, "no device") {
		t.Fatalf("no device: detail %q does not name the rule and the unknown buyer", p.Detail)
	}
	if st := tg.stockTotal(t, dsku); st.Pending != 0 {
		t.Fatalf("refused order reserved %s: %+v", dsku, st)
	}
	// With a device it is counted.
	tg.created(t, testOrderIn{id: unique("pl-g-"), customer: customer, device: "dev-" + customer, skus: []string{dsku}})
	tg.putLimit(t, drule, `{"skus":["`+dsku+`"],"per":"device","max_qty":5,"action":"hold"}`, http.StatusOK, "If-Match", `"1"`)
	held := tg.created(t, testOrderIn{id: unique("pl-h-"), customer: customer, skus: []string{dsku}})
	if held.Status != "on_hold" || held.Hold == nil || held.Hold.Reason != "limit" || !slices.Contains(findingCodes(held.Hold.Findings), "limit_buyer_unknown") {
		t.Fatalf("no device, holding: %+v %+v", held, held.Hold)
	}
	for _, r := range []string{rule, drule} {
		tg.call("DELETE", "/v1/limits/"+r, "", RoleOps)
	}
	tg.call("POST", "/v1/holds/"+held.ID+"/decide", `{"decision":"cancel","reason":"test over"}`, RoleOps)
}

// orderIDOf is the id the grid gives an order without an idempotency key.
func orderIDOf(o testOrderIn) string {
	return intake.OrderID(&pb.CreateOrderRequest{Channel: cmpOr(o.channel, "douyin"), ChannelOrderId: o.id})
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// heldByLimit makes an order held by a holding limit per customer (max 1:
// the customer's first order passes, the second is held), and returns
// the held order, its SKU and the rule.
func heldByLimit(t *testing.T, tg *testGateway) (testOrderOut, string, string) {
	t.Helper()
	sku := unique("HL-")
	tg.stocked(t, 50, sku)
	rule := unique("lim-hold-")
	tg.putLimit(t, rule, `{"skus":["`+sku+`"],"per":"customer","max_qty":1}`, http.StatusCreated)
	t.Cleanup(func() { tg.call("DELETE", "/v1/limits/"+rule, "", RoleOps) })
	customer := unique("cust-")
	if o := tg.created(t, testOrderIn{id: unique("hl-a-"), customer: customer, skus: []string{sku}}); o.Status != "pending_payment" {
		t.Fatalf("the first order: %+v", o)
	}
	held := tg.created(t, testOrderIn{id: unique("hl-b-"), customer: customer, skus: []string{sku}})
	return held, sku, rule
}

// TestHoldingLimitQueuesTheOrder: past a holding limit the order is
// created on_hold until the holds timeout and listed in the review queue.
func TestHoldingLimitQueuesTheOrder(t *testing.T) {
	tg := startGateway(t)
	countsBefore := tg.holds(t, "").Counts
	start := time.Now()
	held, sku, rule := heldByLimit(t, tg)
	if held.Status != "on_hold" || held.Hold == nil || held.Hold.Reason != "limit" {
		t.Fatalf("past a holding limit: %+v", held)
	}
	if fs := held.Hold.Findings; len(fs) != 1 || fs[0].Code != "limit_exceeded" || !strings.Contains(fs[0].Detail, rule) {
		t.Fatalf("findings %+v, want limit_exceeded naming %s", fs, rule)
	}
	near(t, "hold.until", held.Hold.Until, start.Add(testHoldTimeout))
	if held.PayBy != held.Hold.Until {
		t.Fatalf("pay_by %s, want the hold's until %s", held.PayBy, held.Hold.Until)
	}
	if st := tg.stockTotal(t, sku); st.Pending != 2 {
		t.Fatalf("stock %+v: a held order keeps its reservation", st)
	}

	all := tg.holds(t, "")
	if !all.has(held.ID) {
		t.Fatalf("GET /v1/holds does not list %s: %+v", held.ID, all.Holds)
	}
	for _, h := range all.Holds {
		if h.Order == held.ID && (h.Reason != "limit" || len(h.Findings) != 1 || h.Findings[0].Code != "limit_exceeded" || h.Until != held.Hold.Until ||
			h.Channel != "douyin" || h.Cursor == "") {
			t.Fatalf("GET /v1/holds: %+v", h)
		}
	}
	if all.Counts["limit"] != countsBefore["limit"]+1 {
		t.Fatalf("counts %v, want limit one more than %v", all.Counts, countsBefore)
	}
	if tg.holds(t, "?reason=risk").has(held.ID) || tg.holds(t, "?reason=address").has(held.ID) {
		t.Fatalf("?reason=risk or address lists a limit hold")
	}
	if !tg.holds(t, "?reason=limit").has(held.ID) {
		t.Fatalf("?reason=limit does not list %s", held.ID)
	}
	// Pages of one, each after the cursor of the one before, list every hold once.
	var paged []string
	query := "?limit=1"
	for i := 0; i < 1000; i++ {
		page := tg.holds(t, query)
		for _, h := range page.Holds {
			paged = append(paged, h.Order)
		}
		if page.Next == "" {
			break
		}
		query = "?limit=1&after=" + page.Next
	}
	var listed []string
	for _, h := range tg.holds(t, "?limit=500").Holds {
		listed = append(listed, h.Order)
	}
	if !slices.Equal(paged, listed) || !slices.Contains(paged, held.ID) {
		t.Fatalf("pages of one: %v, one page: %v", paged, listed)
	}

	for _, c := range []struct{ query, field string }{
		{"?reason=fraud", "reason"}, {"?after=yesterday", "after"}, {"?after=12:", "after"}, {"?limit=0", "limit"},
		{"?limit=501", "limit"}, {"?limit=ten", "limit"}, {"?order=x", "order"},
	} {
		p := wantProblem(t, "GET /v1/holds"+c.query, tg.call("GET", "/v1/holds"+c.query, "", RoleOps), 400, "malformed-request", c.field)
		if c.field == "reason" && !strings.Contains(p.Detail, "limit, address, risk, duplicate") {
			t.Errorf("?reason=fraud: %q does not list the reasons", p.Detail)
		}
	}
	for _, r := range []Role{RoleIntake, RoleCompliance, RolePartner, ""} {
		if rec := tg.call("GET", "/v1/holds", "", r); rec.Code != http.StatusForbidden && rec.Code != http.StatusUnauthorized {
			t.Fatalf("GET /v1/holds as %q: %d", r, rec.Code)
		}
	}
	tg.call("POST", "/v1/holds/"+held.ID+"/decide", `{"decision":"cancel","reason":"test over"}`, RoleOps)
}

// testEvents are an order's events.
type testEvents struct {
	Events []eventView `json:"events"`
}

// TestDecideHold releases a held order (a fresh pay-by, the decision and
// the event recorded), refuses deciding it twice and bad decisions, and
// cancels another, giving back its stock and its limit count.
func TestDecideHold(t *testing.T) {
	tg := startGateway(t)
	held, _, _ := heldByLimit(t, tg)
	path := "/v1/holds/" + held.ID + "/decide"
	countsBefore := tg.holds(t, "").Counts
	for _, c := range []struct {
		name, body string
		role       Role
		code       int
		problem    string
		field      string
	}{
		{"no reason", `{"decision":"release"}`, RoleOps, 422, "validation-failed", "reason"},
		{"blank reason", `{"decision":"release","reason":"  "}`, RoleOps, 422, "validation-failed", "reason"},
		{"bad decision", `{"decision":"approve","reason":"looks fine"}`, RoleOps, 422, "validation-failed", "decision"},
		{"reason too long", `{"decision":"release","reason":"` + strings.Repeat("a", 513) + `"}`, RoleOps, 422, "validation-failed", "reason"},
		{"unknown field", `{"decision":"release","reason":"ok","by":"me"}`, RoleOps, 400, "malformed-request", "by"},
		{"wrong type", `{"decision":"release","reason":7}`, RoleOps, 400, "malformed-request", "reason"},
		{"intake", `{"decision":"release","reason":"ok"}`, RoleIntake, 403, "forbidden", ""},
		{"compliance", `{"decision":"release","reason":"ok"}`, RoleCompliance, 403, "forbidden", ""},
	} {
		wantProblem(t, c.name, tg.call("POST", path, c.body, c.role), c.code, c.problem, c.field)
	}
	wantProblem(t, "unknown order", tg.call("POST", "/v1/holds/o_"+strings.Repeat("7", 32)+"/decide", `{"decision":"release","reason":"ok"}`, RoleOps),
		404, "not-found", "order")
	if c := tg.holds(t, "").Counts; !mapsEqual(c, countsBefore) || !tg.holds(t, "?limit=500").has(held.ID) {
		t.Fatalf("refused decisions changed the queue: %v, was %v", c, countsBefore)
	}

	start := time.Now()
	var released testOrderOut
	decodeAnswer(t, "release", tg.call("POST", path, `{"decision":"release","reason":"known reseller, approved"}`, RoleOps), http.StatusOK, &released)
	if released.Status != "pending_payment" || released.Hold == nil || released.Hold.Decision != "release" || released.Hold.DecidedBy != "test-ops" ||
		released.Hold.DecisionReason != "known reseller, approved" || released.Hold.DecidedAt == "" || released.Hold.Reason != "limit" {
		t.Fatalf("released: %+v %+v", released, released.Hold)
	}
	near(t, "pay_by after release", released.PayBy, start.Add(config.DefaultOrdersPendingTimeout))
	var got testOrderOut
	decodeAnswer(t, "GET released", tg.call("GET", "/v1/orders/"+held.ID, "", RoleOps), http.StatusOK, &got)
	if got.Status != "pending_payment" || got.PayBy != released.PayBy || got.Hold == nil || got.Hold.Decision != "release" {
		t.Fatalf("GET released: %+v", got)
	}
	var evs testEvents
	decodeAnswer(t, "events", tg.call("GET", "/v1/orders/"+held.ID+"/events", "", RoleOps), http.StatusOK, &evs)
	i := slices.IndexFunc(evs.Events, func(e eventView) bool { return e.Type == "hold_decided" })
	if i < 0 {
		t.Fatalf("no hold_decided event: %+v", evs.Events)
	}
	d := evs.Events[i].Details
	if d["decision"] != "release" || d["reason"] != "known reseller, approved" || d["hold"] != "limit" || d["override"] != "false" ||
		evs.Events[i].Principal != "test-ops" {
		t.Fatalf("hold_decided: %+v", evs.Events[i])
	}
	if tg.holds(t, "?limit=500").has(held.ID) {
		t.Fatalf("a released order is still queued")
	}
	if c := tg.holds(t, "").Counts; c["limit"] != countsBefore["limit"]-1 {
		t.Fatalf("counts after release %v, was %v", c, countsBefore)
	}
	p := wantProblem(t, "decide again", tg.call("POST", path, `{"decision":"cancel","reason":"changed my mind"}`, RoleOps), 409, "not-held", "id")
	if p.CurrentStatus != "pending_payment" || !strings.Contains(p.Detail, "release") {
		t.Fatalf("decide again: %+v", p)
	}

	// Cancel: an order held for its address, under a refusing limit of 1
	// per customer; its cancellation gives back its stock and its count.
	sku := unique("DC-")
	tg.stocked(t, 10, sku)
	rule := unique("lim-one-")
	tg.putLimit(t, rule, `{"skus":["`+sku+`"],"per":"customer","max_qty":1,"action":"refuse"}`, http.StatusCreated)
	defer tg.call("DELETE", "/v1/limits/"+rule, "", RoleOps)
	customer := unique("cust-")
	heldAddr := tg.created(t, testOrderIn{id: unique("dc-a-"), customer: customer, address: incompleteAddress, skus: []string{sku}})
	if heldAddr.Status != "on_hold" || heldAddr.Hold.Reason != "address" {
		t.Fatalf("order with an incomplete address: %+v", heldAddr)
	}
	wantProblem(t, "over the limit while held", tg.postOrder(testOrderIn{id: unique("dc-b-"), customer: customer, skus: []string{sku}}, ""),
		422, "purchase-limit", "lines[0].qty")
	if st := tg.stockTotal(t, sku); st.Available != 9 || st.Pending != 1 {
		t.Fatalf("stock while held: %+v", st)
	}
	var cancelled testOrderOut
	decodeAnswer(t, "cancel", tg.call("POST", "/v1/holds/"+heldAddr.ID+"/decide", `{"decision":"cancel","reason":"no such street"}`, RoleOps),
		http.StatusOK, &cancelled)
	if cancelled.Status != "cancelled" || cancelled.Hold.Decision != "cancel" {
		t.Fatalf("cancelled: %+v", cancelled)
	}
	if st := tg.stockTotal(t, sku); st.Available != 10 || st.Pending != 0 {
		t.Fatalf("stock after the cancel: %+v, want it all back", st)
	}
	again := tg.created(t, testOrderIn{id: unique("dc-c-"), customer: customer, skus: []string{sku}})
	if again.Status != "pending_payment" {
		t.Fatalf("the customer's order after the cancel: %+v", again)
	}
}

// incompleteAddress names no district: an address finding.
const incompleteAddress = "浙江省 杭州市 文三路 90号"

// TestAddressHold: an address without a district holds the order; an
// order without an address is not checked.
func TestAddressHold(t *testing.T) {
	tg := startGateway(t)
	sku := unique("AD-")
	tg.stocked(t, 10, sku)
	countsBefore := tg.holds(t, "").Counts
	held := tg.created(t, testOrderIn{id: unique("ad-a-"), customer: unique("cust-"), address: incompleteAddress, skus: []string{sku}})
	if held.Status != "on_hold" || held.Hold == nil || held.Hold.Reason != "address" || !slices.Equal(findingCodes(held.Hold.Findings), []string{"address_incomplete"}) {
		t.Fatalf("incomplete address: %+v %+v", held, held.Hold)
	}
	if c := tg.holds(t, "?reason=address"); !c.has(held.ID) || c.Counts["address"] != countsBefore["address"]+1 {
		t.Fatalf("GET /v1/holds?reason=address: %+v, counts before %v", c, countsBefore)
	}
	for _, o := range []testOrderIn{
		{id: unique("ad-b-"), customer: unique("cust-"), skus: []string{sku}},
		{id: unique("ad-c-"), customer: unique("cust-"), address: "浙江省杭州市西湖区文三路90号", skus: []string{sku}},
	} {
		if out := tg.created(t, o); out.Status != "pending_payment" || out.Hold != nil {
			t.Fatalf("order %s (address %q): %+v", o.id, o.address, out)
		}
	}
	tg.call("POST", "/v1/holds/"+held.ID+"/decide", `{"decision":"cancel","reason":"test over"}`, RoleOps)
}

// testRisk is GET /v1/orders/{id}/risk's answer.
type testRisk struct {
	Order         string  `json:"order"`
	Score         float64 `json:"score"`
	Verdict       string  `json:"verdict"`
	Model         string  `json:"model"`
	Base          float64 `json:"base"`
	Contributions []struct {
		Feature      string  `json:"feature"`
		Value        any     `json:"value"`
		Contribution float64 `json:"contribution"`
	} `json:"contributions"`
	Thresholds map[string]float64 `json:"thresholds"`
}

// checkRisk reads an order's risk explanation and checks that it adds up.
func checkRisk(t *testing.T, tg *testGateway, id, channel string) testRisk {
	t.Helper()
	var r testRisk
	decodeAnswer(t, "risk of "+id, tg.call("GET", "/v1/orders/"+id+"/risk", "", RoleCompliance), http.StatusOK, &r)
	if r.Order != id || r.Score <= 0 || r.Score >= 1 || r.Model == "" || !slices.Contains([]string{"accept", "hold", "refuse"}, r.Verdict) {
		t.Fatalf("risk of %s: %+v", id, r)
	}
	sum := r.Base
	var names []string
	for _, c := range r.Contributions {
		sum += c.Contribution
		names = append(names, c.Feature)
		if c.Feature == "channel" && c.Value != channel {
			t.Fatalf("risk of %s: channel value %v, want %s", id, c.Value, channel)
		}
	}
	if logit := math.Log(r.Score / (1 - r.Score)); math.Abs(sum-logit) > 1e-6 {
		t.Fatalf("risk of %s: base + contributions = %v, logit of the score %v", id, sum, logit)
	}
	want := screening.GroupedFeatureNames()
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("risk of %s: features %v, want each of %v once", id, names, want)
	}
	return r
}

// TestOrderRisk explains an order's risk score.
func TestOrderRisk(t *testing.T) {
	tg := startGateway(t)
	sku := unique("RK-")
	tg.stocked(t, 10, sku)
	o := tg.created(t, testOrderIn{channel: "tmall", id: unique("rk-a-"), customer: unique("cust-"), device: "dev-rk", skus: []string{sku}})
	if o.RiskScore == nil || o.RiskVerdict != "accept" {
		t.Fatalf("order %+v: no risk score", o)
	}
	r := checkRisk(t, tg, o.ID, "tmall")
	if r.Model != risk.Default().Version() || r.Score != *o.RiskScore || r.Verdict != "accept" {
		t.Fatalf("risk: %+v, order %+v", r, o)
	}
	hold, refuse := tg.screener.Thresholds()
	if r.Thresholds["hold"] != hold || r.Thresholds["refuse"] != refuse {
		t.Fatalf("thresholds %v", r.Thresholds)
	}
	for i := 1; i < len(r.Contributions); i++ {
		if math.Abs(r.Contributions[i].Contribution) > math.Abs(r.Contributions[i-1].Contribution) {
			t.Fatalf("contributions not largest first: %+v", r.Contributions)
		}
	}
	wantProblem(t, "risk of an unknown order", tg.call("GET", "/v1/orders/o_"+strings.Repeat("5", 32)+"/risk", "", RoleOps), 404, "not-found", "")
	wantProblem(t, "risk as intake", tg.call("GET", "/v1/orders/"+o.ID+"/risk", "", RoleIntake), 403, "forbidden", "")
}

// testModel is GET /v1/risk/model's answer.
type testModel struct {
	Model *struct {
		Version    string          `json:"version"`
		Trees      int             `json:"trees"`
		Evaluation json.RawMessage `json:"evaluation"`
	} `json:"model"`
	Thresholds map[string]float64 `json:"thresholds"`
	Features   []string           `json:"features"`
}

func (tg *testGateway) model(t *testing.T) testModel {
	t.Helper()
	var m testModel
	decodeAnswer(t, "GET /v1/risk/model", tg.call("GET", "/v1/risk/model", "", RoleCompliance), http.StatusOK, &m)
	if m.Model == nil {
		t.Fatalf("GET /v1/risk/model: no model")
	}
	return m
}

// TestRiskModelRoutes reads the shipped model, refuses a corrupt one,
// puts a trained one that new orders are scored with, and deletes it.
func TestRiskModelRoutes(t *testing.T) {
	tg := startGateway(t)
	t.Cleanup(func() { tg.call("DELETE", "/v1/risk/model", "", RoleOps) })
	shipped := risk.Default().Version()
	m := tg.model(t)
	if m.Model.Version != shipped || len(m.Model.Evaluation) == 0 || string(m.Model.Evaluation) == "null" || m.Model.Trees == 0 ||
		m.Thresholds["hold"] != 0.999 || m.Thresholds["refuse"] != 1 ||
		!slices.Equal(m.Features, screening.GroupedFeatureNames()) {
		t.Fatalf("GET /v1/risk/model: %+v %+v", m, m.Model)
	}
	wantProblem(t, "DELETE without a grid model", tg.call("DELETE", "/v1/risk/model", "", RoleOps), 404, "not-found", "")

	good, err := json.Marshal(risk.Default())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"] = "0000000000000000"
	corrupt, _ := json.Marshal(doc)
	for _, c := range []struct {
		name, body string
		code       int
		problem    string
		field      string
		role       Role
	}{
		{"version not the model's", string(corrupt), 422, "validation-failed", "model.version", RoleOps},
		{"truncated", string(good[:len(good)/2]), 422, "validation-failed", "model", RoleOps},
		{"empty", "", 422, "validation-failed", "model", RoleOps},
		{"compliance", string(good), 403, "forbidden", "", RoleCompliance},
	} {
		p := wantProblem(t, c.name, tg.call("PUT", "/v1/risk/model", c.body, c.role), c.code, c.problem, "")
		if c.field != "" && (len(p.Errors) == 0 || !strings.HasPrefix(p.Errors[0].Field, c.field)) {
			t.Fatalf("%s: errors %+v, want a field of %s", c.name, p.Errors, c.field)
		}
		if v := tg.model(t).Model.Version; v != shipped {
			t.Fatalf("%s: the model is now %s", c.name, v)
		}
	}

	trained, err := risk.Train(risk.Synthetic(7, 5000), risk.TrainOptions{Trees: 5})
	if err != nil {
		t.Fatal(err)
	}
	file, err := json.Marshal(trained)
	if err != nil {
		t.Fatal(err)
	}
	var put struct {
		Model string `json:"model"`
	}
	decodeAnswer(t, "PUT a trained model", tg.call("PUT", "/v1/risk/model", string(file), RoleOps), http.StatusOK, &put)
	if put.Model != trained.Version() || put.Model == shipped {
		t.Fatalf("PUT: model %q, want %q", put.Model, trained.Version())
	}
	if m := tg.model(t); m.Model.Version != trained.Version() || m.Model.Trees != 5 {
		t.Fatalf("GET after PUT: %+v", m.Model)
	}
	sku := unique("RM-")
	tg.stocked(t, 10, sku)
	o := tg.created(t, testOrderIn{id: unique("rm-a-"), customer: unique("cust-"), skus: []string{sku}})
	if r := checkRisk(t, tg, o.ID, "douyin"); r.Model != trained.Version() {
		t.Fatalf("an order after the PUT scored by %s, want %s", r.Model, trained.Version())
	}

	if rec := tg.call("DELETE", "/v1/risk/model", "", RoleOps); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	if m := tg.model(t); m.Model.Version != shipped {
		t.Fatalf("GET after DELETE: %+v", m.Model)
	}
	o = tg.created(t, testOrderIn{id: unique("rm-b-"), customer: unique("cust-"), skus: []string{sku}})
	if r := checkRisk(t, tg, o.ID, "douyin"); r.Model != shipped {
		t.Fatalf("an order after the DELETE scored by %s, want %s", r.Model, shipped)
	}
	wantProblem(t, "DELETE again", tg.call("DELETE", "/v1/risk/model", "", RoleOps), 404, "not-found", "")
}

// TestScreeningVariants runs TestScreenVariant in processes of their own
// (a process hosts one node), with the node's screening refusing address
// findings, and holding every order for its risk score.
func TestScreeningVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes")
	}
	if os.Getenv(testScreenEnv) != "" {
		t.Skip("a variant's process")
	}
	for _, v := range []string{testScreenAddressRefuse, testScreenRiskHold} {
		t.Run(v, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestScreenVariant$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), testScreenEnv+"="+v)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestScreenVariant") {
				t.Fatalf("variant %s: %v\n%s", v, err, out)
			}
		})
	}
}

// TestScreenVariant is the test of a screening variant, in its own process.
func TestScreenVariant(t *testing.T) {
	v := os.Getenv(testScreenEnv)
	if v == "" {
		t.Skip("run by TestScreeningVariants, in a process of its own")
	}
	tg := startGateway(t)
	sku := unique("SV-")
	tg.stocked(t, 10, sku)
	switch v {
	case testScreenAddressRefuse:
		p := wantProblem(t, "incomplete address", tg.postOrder(testOrderIn{id: unique("sv-a-"), customer: unique("cust-"), address: incompleteAddress, skus: []string{sku}}, ""),
			http.StatusUnprocessableEntity, "refused-at-intake", "customer.address")
		if !strings.Contains(p.Errors[0].Detail, "address_incomplete") || !strings.Contains(p.Detail, "address") {
			t.Fatalf("refused: %+v", p)
		}
		if st := tg.stockTotal(t, sku); st.Pending != 0 || st.Available != 10 {
			t.Fatalf("a refused order reserved stock: %+v", st)
		}
		if h := tg.holds(t, ""); len(h.Holds) != 0 {
			t.Fatalf("a refused order is queued: %+v", h)
		}
		if o := tg.created(t, testOrderIn{id: unique("sv-b-"), customer: unique("cust-"), skus: []string{sku}}); o.Status != "pending_payment" {
			t.Fatalf("no address: %+v", o)
		}
	case testScreenRiskHold:
		for i := range 3 {
			o := tg.created(t, testOrderIn{id: unique("sv-r-"), customer: unique("cust-"), device: "dev-" + strconv.Itoa(i), skus: []string{sku}})
			if o.Status != "on_hold" || o.Hold == nil || o.Hold.Reason != "risk" || !slices.Equal(findingCodes(o.Hold.Findings), []string{"risk_score"}) ||
				o.RiskVerdict != "hold" {
				t.Fatalf("order %d: %+v %+v", i, o, o.Hold)
			}
			r := checkRisk(t, tg, o.ID, "douyin")
			if r.Verdict != "hold" || r.Thresholds["hold"] != 0.0001 {
				t.Fatalf("risk: %+v", r)
			}
		}
		h := tg.holds(t, "?reason=risk")
		if h.Counts["risk"] != 3 || len(h.Holds) != 3 || h.Holds[0].RiskScore == nil {
			t.Fatalf("GET /v1/holds?reason=risk: %+v", h)
		}
		// Released against the model's verdict: an override.
		id := h.Holds[0].Order
		tg.must(t, "POST", "/v1/holds/"+id+"/decide", `{"decision":"release","reason":"regular customer"}`, http.StatusOK)
		var evs testEvents
		decodeAnswer(t, "events", tg.call("GET", "/v1/orders/"+id+"/events", "", RoleOps), http.StatusOK, &evs)
		i := slices.IndexFunc(evs.Events, func(e eventView) bool { return e.Type == "hold_decided" })
		if i < 0 || evs.Events[i].Details["override"] != "true" || evs.Events[i].Details["features"] == "" || evs.Events[i].Details["hold"] != "risk" {
			t.Fatalf("hold_decided of a risk hold: %+v", evs.Events)
		}
	default:
		t.Fatalf("unknown variant %q", v)
	}
}
