package gateway

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Alerts are the open stuck-order alerts (actors.Node in a node).
type Alerts interface {
	// AlertGroups counts the open alerts of every partition grouped by the
	// fields by names (alertFields), in no order.
	AlertGroups(by []string) (*gridpb.AlertGroups, error)
}

// alertFields are the fields GET /v1/alerts may group by, in the order a
// group lists them (statemachine.AlertGroupFields).
var alertFields = []string{"stage", "warehouse", "channel", "carrier"}

// alertGroupsListedMax bounds the groups one GET /v1/alerts answers.
const alertGroupsListedMax = 1000

// getAlerts groups the open stuck-order alerts by cause (group_by: a comma
// list of stage, warehouse, channel, carrier; default all four), the
// largest groups first (then the oldest), at most limit groups.
func (g *Gateway) getAlerts(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading alerts", RoleOps); p != nil {
		return p
	}
	by := alertFields
	if q := r.URL.Query(); q.Has("group_by") {
		by = nil
		for _, f := range strings.Split(q.Get("group_by"), ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(alertFields, f) {
				return malformed("group_by", fmt.Sprintf("group_by %q: a comma list of %s", f, strings.Join(alertFields, ", ")))
			}
			if !slices.Contains(by, f) {
				by = append(by, f)
			}
		}
	}
	limit, p := limitParam(r, 100, alertGroupsListedMax)
	if p != nil {
		return p
	}
	got := &gridpb.AlertGroups{}
	if g.alerts != nil {
		var err error
		if got, err = g.alerts.AlertGroups(by); err != nil {
			return g.grainProblem(err, "alerts", "")
		}
	}
	groups := got.Groups
	slices.SortFunc(groups, func(a, b *gridpb.AlertGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.OldestSinceUnixNano, b.OldestSinceUnixNano), cmp.Compare(a.OldestOrder, b.OldestOrder))
	})
	type groupJSON struct {
		Stage       string `json:"stage,omitempty"`
		Warehouse   string `json:"warehouse,omitempty"`
		Channel     string `json:"channel,omitempty"`
		Carrier     string `json:"carrier,omitempty"`
		Count       int64  `json:"count"`
		OldestSince string `json:"oldest_since"`
		OldestOrder string `json:"oldest_order"`
	}
	out := make([]groupJSON, 0, min(len(groups), limit))
	for _, gr := range groups[:min(len(groups), limit)] {
		out = append(out, groupJSON{Stage: gr.Stage, Warehouse: gr.Warehouse, Channel: gr.Channel, Carrier: gr.Carrier, Count: gr.Count,
			OldestSince: timeString(gr.OldestSinceUnixNano), OldestOrder: gr.OldestOrder})
	}
	writeJSON(w, http.StatusOK, map[string]any{"open": got.Open, "group_by": by, "groups": out,
		"groups_total": len(groups), "ungrouped": got.Ungrouped})
	return nil
}
