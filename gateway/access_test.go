package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// access is one row of the role×route table: a route (a registered
// pattern, or a pattern and the query that changes who may call it), the
// roles that may call it besides admin, and the request the test sends.
// In the request, $O is an order of channel "douyin" with personal fields.
type access struct {
	route string
	roles []Role
	path  string
	body  string
}

// anyRole: any authenticated caller.
var anyRole = []Role{RoleIntake, RoleOps, RolePartner, RoleCompliance}

const orderBodyJSON = `{"channel":"douyin","channel_order_id":"acc-1","currency":"CNY","customer":{"id":"u-acc","name":"Li Lei","phone":"13800000000","address":"1 Nanjing Rd"},"lines":[{"sku":"ACC-1","qty":1,"unit_price":"1.00"}]}`

// accessTable is who may call what: README.md's role table says the same
// (TestREADMERoleTable), and every route the gateway registers with a
// bearer token has a row (TestEveryRoleAgainstEveryRoute).
var accessTable = []access{
	{route: "POST /v1/orders", roles: []Role{RoleIntake}, body: orderBodyJSON},
	{route: "POST /v1/orders:batch", roles: []Role{RoleIntake}, body: `{"orders":[` + orderBodyJSON + `]}`},
	{route: "GET /v1/orders/{id}", roles: []Role{RoleOps, RolePartner, RoleCompliance}, path: "/v1/orders/$O"},
	{route: "GET /v1/orders/{id}?include_personal=true", roles: []Role{RoleCompliance}, path: "/v1/orders/$O?include_personal=true&purpose=test"},
	{route: "GET /v1/orders/{id}/events", roles: []Role{RoleOps, RolePartner, RoleCompliance}, path: "/v1/orders/$O/events"},
	{route: "GET /v1/orders/{id}/proof", roles: []Role{RoleOps, RolePartner, RoleCompliance}, path: "/v1/orders/$O/proof"},
	{route: "GET /v1/orders/{id}/routing", roles: []Role{RoleOps, RolePartner, RoleCompliance}, path: "/v1/orders/$O/routing"},
	{route: "POST /v1/orders/{id}/events", roles: []Role{RoleOps}, path: "/v1/orders/$O/events", body: `{"type":"picked"}`},
	{route: "POST /v1/orders/{id}/pay", roles: []Role{RoleOps}, path: "/v1/orders/$O/pay"},
	{route: "POST /v1/orders/{id}/cancel", roles: []Role{RoleOps}, path: "/v1/orders/$O/cancel"},
	{route: "PUT /v1/skus/{sku}/stock/{warehouse}", roles: []Role{RoleOps}, path: "/v1/skus/ACC-1/stock/WH-ACC", body: `{"on_hand":100}`},
	{route: "GET /v1/skus/{sku}", roles: []Role{RoleIntake, RoleOps, RoleCompliance}, path: "/v1/skus/ACC-1"},
	{route: "GET /v1/skus/{sku}/events", roles: []Role{RoleIntake, RoleOps, RoleCompliance}, path: "/v1/skus/ACC-1/events"},
	{route: "POST /v1/subjects/{id}/erase", roles: []Role{RoleCompliance}, path: "/v1/subjects/u-nobody/erase"},
	{route: "GET /v1/audit/export", roles: []Role{RoleCompliance}},
	{route: "POST /v1/admin/rewrap-subject-keys"},
	{route: "POST /v1/admin/archives/restore"},
	{route: "GET /v1/cluster"},
	{route: "POST /v1/cluster/nodes"},
	{route: "DELETE /v1/cluster/nodes/{id}", path: "/v1/cluster/nodes/no%20such%20node"},
	{route: "GET /v1/ledger", roles: anyRole},
	{route: "GET /v1/ledger/checkpoint", roles: anyRole},
	{route: "GET /v1/ledger/checkpoints/{size}", roles: anyRole, path: "/v1/ledger/checkpoints/1"},
	{route: "GET /v1/ledger/key", roles: anyRole},
	{route: "GET /v1/ledger/consistency", roles: anyRole, path: "/v1/ledger/consistency?from=1&to=1"},
	{route: "GET /v1/ledger/inclusion", roles: anyRole, path: "/v1/ledger/inclusion?index=0&size=1"},
	{route: "GET /v1/ledger/anchors", roles: anyRole},
	{route: "GET /v1/warehouses", roles: []Role{RoleOps, RoleCompliance}},
	{route: "GET /v1/warehouses/{id}", roles: []Role{RoleOps, RoleCompliance}, path: "/v1/warehouses/WH-ACC"},
	{route: "PUT /v1/warehouses/{id}", roles: []Role{RoleOps}, path: "/v1/warehouses/WH-NEW", body: `{}`},
	{route: "PUT /v1/warehouses/{id}/state", roles: []Role{RoleOps}, path: "/v1/warehouses/WH-NEW/state", body: `{}`},
	{route: "GET /v1/routing/strategies", roles: []Role{RoleOps, RoleCompliance}},
	{route: "GET /v1/routing/strategies/{name}", roles: []Role{RoleOps, RoleCompliance}, path: "/v1/routing/strategies/default"},
	{route: "PUT /v1/routing/strategies/{name}", path: "/v1/routing/strategies/acc", body: `{}`},
	{route: "GET /v1/routing/selection", roles: []Role{RoleOps, RoleCompliance}},
	{route: "PUT /v1/routing/selection", body: `{}`},
	{route: "POST /v1/routing/simulations", roles: []Role{RoleOps}, body: `{}`},
	{route: "GET /v1/customers/{id}", roles: []Role{RoleOps, RoleCompliance}, path: "/v1/customers/c_nobody"},
	{route: "GET /v1/channels/price-conflicts", roles: []Role{RoleOps, RoleCompliance}},
	{route: "GET /v1/channels/fetches", roles: []Role{RoleOps, RoleCompliance}},
	{route: "GET /v1/channels/connectors", roles: []Role{RoleOps, RoleCompliance}},
	// A bad start answers at once (a good one would stream until the client goes).
	{route: "GET /v1/stream", roles: []Role{RoleOps, RolePartner, RoleCompliance}, path: "/v1/stream?from=x"},
	{route: "GET /v1/alerts", roles: []Role{RoleOps}},
	{route: "POST /v1/orders/{id}/tracking-link", roles: []Role{RoleIntake, RoleOps}, path: "/v1/orders/$O/tracking-link"},
	{route: "POST /v1/webhooks", roles: []Role{RolePartner}, body: `{"url":"http://127.0.0.1:9/access"}`},
	{route: "GET /v1/webhooks", roles: []Role{RolePartner}},
	{route: "GET /v1/webhooks/{id}", roles: []Role{RolePartner}, path: "/v1/webhooks/wh_none"},
	{route: "DELETE /v1/webhooks/{id}", roles: []Role{RolePartner}, path: "/v1/webhooks/wh_none"},
	{route: "GET /v1/webhooks/{id}/dead-letters", roles: []Role{RolePartner}, path: "/v1/webhooks/wh_none/dead-letters"},
	{route: "POST /v1/webhooks/{id}/dead-letters:replay", roles: []Role{RolePartner}, path: "/v1/webhooks/wh_none/dead-letters:replay"},
	{route: "POST /v1/webhooks/{id}/dead-letters/{from}/replay", roles: []Role{RolePartner}, path: "/v1/webhooks/wh_none/dead-letters/0/replay"},
	{route: "GET /v1/ops/summary", roles: []Role{RoleOps}},
	{route: "GET /v1/holds", roles: []Role{RoleOps}},
	{route: "POST /v1/holds/{id}/decide", roles: []Role{RoleOps}, path: "/v1/holds/$O/decide", body: `{"decision":"release","reason":"access"}`},
	{route: "GET /v1/limits", roles: []Role{RoleOps, RoleCompliance}},
	{route: "GET /v1/limits/{id}", roles: []Role{RoleOps, RoleCompliance}, path: "/v1/limits/none"},
	{route: "PUT /v1/limits/{id}", roles: []Role{RoleOps}, path: "/v1/limits/acc", body: `{}`},
	{route: "DELETE /v1/limits/{id}", roles: []Role{RoleOps}, path: "/v1/limits/none"},
	{route: "GET /v1/orders/{id}/risk", roles: []Role{RoleOps, RoleCompliance}, path: "/v1/orders/$O/risk"},
	{route: "GET /v1/risk/model", roles: []Role{RoleOps, RoleCompliance}},
	{route: "PUT /v1/risk/model", roles: []Role{RoleOps}, body: `{}`},
	{route: "DELETE /v1/risk/model", roles: []Role{RoleOps}},
}

// openRoutes answer without a token (probes); signedRoutes authenticate by
// the channel's request signature, not a bearer token; linkRoutes (the
// tracking page) by the signed link in their t parameter, and
// assetRoutes are the pages' static files.
var (
	openRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /debug/pprof/", "GET /debug/pprof/profile", "GET /debug/pprof/trace", "GET /debug/pprof/symbol",
		"GET /ops", "GET /ops/{asset}"} // the ops page's static files hold no data
	signedRoutes = []string{"POST /v1/channels/{channel}/orders"}
	linkRoutes   = []string{"GET /track/{order}", "GET /track/{order}/timeline", "GET /track/{order}/stream"}
	assetRoutes  = []string{"GET /assets/track/{file}"}
)

// may reports whether role may make the call (admin may everything).
func (a access) may(r Role) bool { return r == RoleAdmin || slices.Contains(a.roles, r) }

// request is the row's request with $O replaced by order.
func (a access) request(order string) (method, path, body string) {
	method, pattern, _ := strings.Cut(a.route, " ")
	pattern, _, _ = strings.Cut(pattern, "?")
	path = cmp.Or(a.path, pattern)
	return method, strings.ReplaceAll(path, "$O", order), a.body
}

// The table covers every bearer route the gateway registers, once, and each
// row's request reaches the route it names.
func TestAccessTableCoversEveryRoute(t *testing.T) {
	tg := startGateway(t)
	rows := map[string]bool{}
	for _, a := range accessTable {
		method, path, _ := a.request("o_x")
		_, pattern := tg.gw.mux.Handler(httptest.NewRequest(method, path, nil))
		if want, _, _ := strings.Cut(a.route, "?"); pattern != want {
			t.Errorf("%s: %s %s reaches %q", a.route, method, path, pattern)
		}
		if rows[a.route] {
			t.Errorf("%s: two rows", a.route)
		}
		rows[a.route] = true
	}
	for _, p := range tg.gw.patterns {
		if !rows[p] && !slices.Contains(openRoutes, p) && !slices.Contains(signedRoutes, p) && !slices.Contains(linkRoutes, p) &&
			!slices.Contains(assetRoutes, p) {
			t.Errorf("route %s has no row in accessTable: say who may call it (and in README.md's role table)", p)
		}
	}
	for r := range rows {
		if base, _, _ := strings.Cut(r, "?"); !slices.Contains(tg.gw.patterns, base) {
			t.Errorf("accessTable row %s: no such route", r)
		}
	}
}

// Every role against every route, as the table says: allowed calls get
// anything but 401 and 403, the others 403 problem+json naming the roles
// they need (and include_personal for a personal read); without a token
// every bearer route is 401, the probes answer, a channel push without its
// signature is refused.
func TestEveryRoleAgainstEveryRoute(t *testing.T) {
	tg := startGateway(t)
	order := tg.fixtureOrder(t)
	for _, a := range accessTable {
		method, path, body := a.request(order)
		if rec := tg.do(method, path, body, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", a.route, rec.Code, rec.Body)
		}
		for _, r := range roles {
			rec := tg.do(method, path, body, r)
			switch {
			case a.may(r) && (rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d %s, want allowed", a.route, r, rec.Code, rec.Body)
			case !a.may(r):
				checkForbidden(t, a, r, rec)
			}
		}
	}
	for _, p := range openRoutes {
		if strings.HasPrefix(p, "GET /debug/pprof/") && p != "GET /debug/pprof/" {
			continue // profiles take seconds; the index stands for them
		}
		if rec := tg.do("GET", strings.ReplaceAll(strings.TrimPrefix(p, "GET "), "{asset}", "ops.js"), "", ""); rec.Code != http.StatusOK {
			t.Errorf("%s without a token: %d", p, rec.Code)
		}
	}
	// A bearer token opens no tracking page: only the link does.
	for _, p := range linkRoutes {
		path := strings.ReplaceAll(strings.TrimPrefix(p, "GET "), "{order}", order)
		for _, r := range append([]Role{""}, roles...) {
			if rec := tg.do("GET", path, "", r); rec.Code != http.StatusForbidden {
				t.Errorf("%s without a link as %q: %d %s", p, r, rec.Code, rec.Body)
			}
		}
	}
	for _, p := range assetRoutes {
		if rec := tg.do("GET", strings.ReplaceAll(strings.TrimPrefix(p, "GET "), "{file}", "track.css"), "", ""); rec.Code != http.StatusOK {
			t.Errorf("%s without a token: %d", p, rec.Code)
		}
	}
	for _, r := range append([]Role{""}, roles...) {
		rec := tg.do("POST", "/v1/channels/douyin/orders", `{}`, r)
		if rec.Code < 400 || rec.Code == http.StatusNotFound {
			t.Errorf("unsigned channel push as %q: %d %s", r, rec.Code, rec.Body)
		}
	}
}

func checkForbidden(t *testing.T, a access, r Role, rec *httptest.ResponseRecorder) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s as %s: %d %s, want 403", a.route, r, rec.Code, rec.Body)
		return
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Type != ProblemTypeBase+"forbidden" {
		t.Errorf("%s as %s: %s", a.route, r, rec.Body)
		return
	}
	needs := "needs role " + strings.Join(append(roleNames(a.roles), "admin"), " or ")
	if !strings.Contains(p.Detail, needs) {
		t.Errorf("%s as %s: detail %q does not say %q", a.route, r, p.Detail, needs)
	}
	if strings.Contains(a.route, "include_personal") && (len(p.Errors) != 1 || p.Errors[0].Field != "include_personal") {
		t.Errorf("%s as %s: the problem does not name include_personal: %s", a.route, r, rec.Body)
	}
}

func roleNames(rs []Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// fixtureOrder makes stock and an order of channel douyin with personal
// fields, and returns its id.
func (tg *testGateway) fixtureOrder(t *testing.T) string {
	t.Helper()
	tg.must(t, "PUT", "/v1/skus/ACC-1/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	var o struct {
		ID string `json:"id"`
	}
	rec := tg.do("POST", "/v1/orders", strings.Replace(orderBodyJSON, "acc-1", "acc-fixture", 1), RoleIntake)
	if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
		t.Fatalf("fixture order: %d %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil || o.ID == "" {
		t.Fatalf("fixture order: %s", rec.Body)
	}
	return o.ID
}

// gRPC's GetOrder enforces the same rule as HTTP: personal fields for
// compliance and admin, PermissionDenied naming include_personal for the rest.
func TestGRPCPersonalReadNeedsCompliance(t *testing.T) {
	tg := startGateway(t)
	order := tg.fixtureOrder(t)
	for _, r := range roles {
		p, err := tg.gw.tokens.Authenticate("Bearer " + tg.tokens[r])
		if err != nil {
			t.Fatal(err)
		}
		ctx := WithPrincipal(context.Background(), p)
		_, err = tg.gw.Service.GetOrder(ctx, &pb.GetOrderRequest{Id: order, IncludePersonal: true})
		st := status.Convert(err)
		if r == RoleCompliance || r == RoleAdmin {
			if err != nil {
				t.Errorf("GetOrder include_personal as %s: %v", r, err)
			}
			continue
		}
		if st.Code() != codes.PermissionDenied {
			t.Errorf("GetOrder include_personal as %s: %v, want PermissionDenied", r, err)
			continue
		}
		named := false
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) == 1 && br.FieldViolations[0].Field == "include_personal" {
				named = true
			}
		}
		if !named {
			t.Errorf("GetOrder include_personal as %s: %v does not name include_personal", r, st.Details())
		}
	}
}

// readmeRoute finds the code spans of a README role table row's first cell.
var readmeRoute = regexp.MustCompile("`([^`]+)`")

// README.md's role table is accessTable: one row per route (or several
// routes of one row), a column per role, ✓ or 403.
func TestREADMERoleTable(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	header := "| route | " + strings.Join(roleNames(roles), " | ") + " |"
	_, table, ok := strings.Cut(string(raw), header+"\n")
	if !ok {
		t.Fatalf("README.md has no role table headed %q", header)
	}
	readme := map[string][]Role{}
	for _, line := range strings.Split(table, "\n")[1:] { // [0] is the |---| line
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 1+len(roles) {
			t.Fatalf("README role table row %q: %d cells, want %d", line, len(cells), 1+len(roles))
		}
		var may []Role
		for i, r := range roles {
			switch c := strings.TrimSpace(cells[1+i]); {
			case strings.HasPrefix(c, "✓"):
				may = append(may, r)
			case c == "403":
			default:
				t.Errorf("README role table row %q: %s cell %q is neither ✓ nor 403", line, r, c)
			}
		}
		spans := readmeRoute.FindAllStringSubmatch(cells[0], -1)
		if len(spans) == 0 {
			t.Errorf("README role table row %q names no route", line)
		}
		for _, m := range spans {
			readme[m[1]] = may
		}
	}
	for _, a := range accessTable {
		want := append(slices.Clone(a.roles), RoleAdmin)
		got, ok := readme[a.route]
		if !ok {
			t.Errorf("README role table has no row for %s", a.route)
			continue
		}
		delete(readme, a.route)
		sortRoles(want)
		sortRoles(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: README says %v may, the gateway lets %v", a.route, got, want)
		}
	}
	for r := range readme {
		t.Errorf("README role table row %s: no such route in accessTable", r)
	}
}

func sortRoles(rs []Role) { sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] }) }
