package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// fakeAlerts groups a fixed list of open alerts as a node does.
type fakeAlerts struct {
	alerts []*gridpb.AlertGroup // one per alert: its fields, count 1
	asked  [][]string
}

func (f *fakeAlerts) AlertGroups(by []string) (*gridpb.AlertGroups, error) {
	f.asked = append(f.asked, by)
	out := &gridpb.AlertGroups{}
	idx := map[[4]string]*gridpb.AlertGroup{}
	for _, a := range f.alerts {
		out.Open++
		var k [4]string
		for _, field := range by {
			switch field {
			case "stage":
				k[0] = a.Stage
			case "warehouse":
				k[1] = a.Warehouse
			case "channel":
				k[2] = a.Channel
			case "carrier":
				k[3] = a.Carrier
			}
		}
		g := idx[k]
		if g == nil {
			g = &gridpb.AlertGroup{Stage: k[0], Warehouse: k[1], Channel: k[2], Carrier: k[3]}
			idx[k] = g
			out.Groups = append(out.Groups, g)
		}
		g.Count++
		if g.OldestOrder == "" || a.OldestSinceUnixNano < g.OldestSinceUnixNano {
			g.OldestSinceUnixNano, g.OldestOrder = a.OldestSinceUnixNano, a.OldestOrder
		}
	}
	return out, nil
}

// GET /v1/alerts groups the open alerts by the causes asked for, the
// largest group first, and names group_by or limit when they are bad.
func TestGetAlertsGroupsByCause(t *testing.T) {
	at := func(min int) int64 { return time.Date(2026, 3, 1, 12, min, 0, 0, time.UTC).UnixNano() }
	f := &fakeAlerts{}
	for i := range 5 {
		f.alerts = append(f.alerts, &gridpb.AlertGroup{Stage: "paid", Warehouse: "WH-1", Channel: "tmall", OldestSinceUnixNano: at(10 + i), OldestOrder: "o_a" + string(rune('0'+i))})
	}
	f.alerts = append(f.alerts,
		&gridpb.AlertGroup{Stage: "shipped", Warehouse: "WH-2", Channel: "web", Carrier: "SF", OldestSinceUnixNano: at(1), OldestOrder: "o_s1"},
		&gridpb.AlertGroup{Stage: "shipped", Warehouse: "WH-2", Channel: "tmall", Carrier: "SF", OldestSinceUnixNano: at(2), OldestOrder: "o_s2"},
		&gridpb.AlertGroup{Stage: "paid", Warehouse: "WH-1", Channel: "web", OldestSinceUnixNano: at(0), OldestOrder: "o_w"})
	gw, toks := tokenGateway(t, Backend{Alerts: f})
	get := func(path string, role Role) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+toks[role])
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		return rec
	}
	type body struct {
		Open    int64    `json:"open"`
		GroupBy []string `json:"group_by"`
		Groups  []struct {
			Stage, Warehouse, Channel, Carrier string
			Count                              int64
			OldestSince                        string `json:"oldest_since"`
			OldestOrder                        string `json:"oldest_order"`
		} `json:"groups"`
		GroupsTotal int `json:"groups_total"`
	}
	decode := func(rec *httptest.ResponseRecorder) body {
		t.Helper()
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		var b body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		return b
	}

	all := decode(get("/v1/alerts", RoleOps))
	if all.Open != 8 || all.GroupsTotal != 4 || !slices.Equal(all.GroupBy, alertFields) {
		t.Fatalf("all: %+v", all)
	}
	if g := all.Groups[0]; g.Stage != "paid" || g.Channel != "tmall" || g.Count != 5 || g.OldestOrder != "o_a0" || g.OldestSince != "2026-03-01T12:10:00Z" {
		t.Fatalf("largest group first: %+v", all.Groups)
	}
	// Ties on count: the oldest first.
	if all.Groups[1].OldestOrder != "o_w" || all.Groups[2].OldestOrder != "o_s1" || all.Groups[3].OldestOrder != "o_s2" {
		t.Fatalf("ties: %+v", all.Groups)
	}

	byStage := decode(get("/v1/alerts?group_by=stage,stage&limit=1", RoleAdmin))
	if byStage.Open != 8 || byStage.GroupsTotal != 2 || len(byStage.Groups) != 1 || byStage.Groups[0].Stage != "paid" || byStage.Groups[0].Count != 6 ||
		byStage.Groups[0].Channel != "" || byStage.Groups[0].OldestOrder != "o_w" || !slices.Equal(byStage.GroupBy, []string{"stage"}) {
		t.Fatalf("by stage: %+v", byStage)
	}
	byCarrier := decode(get("/v1/alerts?group_by=carrier,%20warehouse", RoleOps))
	if byCarrier.GroupsTotal != 2 || byCarrier.Groups[0].Carrier != "" || byCarrier.Groups[0].Count != 6 || byCarrier.Groups[1].Carrier != "SF" {
		t.Fatalf("by carrier: %+v", byCarrier)
	}

	asked := len(f.asked)
	for _, path := range []string{"/v1/alerts?group_by=stage,customer", "/v1/alerts?group_by=", "/v1/alerts?limit=0", "/v1/alerts?limit=5000"} {
		rec := get(path, RoleOps)
		field := "group_by"
		if strings.Contains(path, "limit") {
			field = "limit"
		}
		if rec.Code != http.StatusBadRequest || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") ||
			!strings.Contains(rec.Body.String(), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s %s, want a 400 problem naming %s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body, field)
		}
	}
	if len(f.asked) != asked {
		t.Errorf("bad requests reached the grid")
	}
	if rec := get("/v1/alerts", RolePartner); rec.Code != http.StatusForbidden {
		t.Errorf("partner: %d", rec.Code)
	}
}
