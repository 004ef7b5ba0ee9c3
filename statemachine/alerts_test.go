package statemachine

import (
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
)

var alertBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

var testLimits = []StageLimit{{Status: lifecycle.StatusPaid, Limit: 30 * time.Minute, Name: "paid-not-picked"},
	{Status: lifecycle.StatusPicked, Limit: 2 * time.Hour}}

// newPaidOrder creates an order at alertBase and pays it at paidAt.
func newPaidOrder(t *testing.T, h *harness, id, channel string, paidAt int64, warehouses ...string) {
	t.Helper()
	o := &gridpb.OrderRecord{Id: id, Channel: channel, RequestHash: []byte("h" + id), PayByUnixNano: alertBase + int64(time.Hour)}
	for _, w := range warehouses {
		o.Lines = append(o.Lines, &gridpb.OrderLineRecord{Sku: "s", Qty: 1, UnitPrice: "1", Warehouse: w})
	}
	if r := h.apply(alertBase, createOrders(o)); r.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("create %s: %v", id, r)
	}
	if r := transitionTo(h, paidAt, id, lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("pay %s: %v", id, r)
	}
}

func transitionTo(h *harness, at int64, id, status string) *Result {
	return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: id, Type: status}}})
}

func raise(h *harness, at int64, due ...*gridpb.AlertDue) *Result {
	return h.applyAs(at, "system:sweeper", &gridpb.Command{Kind: &gridpb.Command_RaiseAlerts{RaiseAlerts: &gridpb.RaiseAlertsCommand{Alerts: due}}})
}

func eventTypes(t *testing.T, h *harness, id string) []string {
	t.Helper()
	evs, err := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func readOrder(t *testing.T, h *harness, id string) *gridpb.OrderRecord {
	t.Helper()
	o, ok, err := ReadOrder(cluster.LocalReader{R: h.db}, h.prefix, id)
	if err != nil || !ok {
		t.Fatalf("read %s: %v %v", id, ok, err)
	}
	return o
}

// An order past its stage's limit gets one alert_raised event, whatever
// the proposals: one made too early, a duplicate, or one whose order moved
// on is skipped. Moving the order clears it with an alert_cleared event
// right after the moving one, and its next stage is timed afresh.
func TestAlertRaisedOnceAndClearedOnMove(t *testing.T) {
	h := newHarness(t)
	paidAt := alertBase + int64(time.Second)
	newPaidOrder(t, h, "o1", "tmall", paidAt, "WH-2", "WH-1", "WH-2")
	if o := readOrder(t, h, "o1"); o.StageStatus != lifecycle.StatusPaid || o.StageSinceUnixNano != paidAt {
		t.Fatalf("stage %q since %d, want paid since %d", o.StageStatus, o.StageSinceUnixNano, paidAt)
	}
	limit := int64(30 * time.Minute)
	if due := h.m.StuckOrders(paidAt+limit-1, testLimits, 10); len(due) != 0 {
		t.Fatalf("due before the limit: %v", due)
	}
	due := h.m.StuckOrders(paidAt+limit, testLimits, 10)
	if len(due) != 1 || due[0].OrderId != "o1" || due[0].Stage != lifecycle.StatusPaid || due[0].SinceUnixNano != paidAt ||
		due[0].LimitMs != limit/int64(time.Millisecond) || due[0].Name != "paid-not-picked" {
		t.Fatalf("due at the limit: %v", due)
	}

	// Proposed with a time before the limit: the judge refuses it.
	if r := raise(h, paidAt+limit-1, due[0]); len(r.OrderIds) != 0 {
		t.Fatalf("raised before the limit: %v", r)
	}
	// Proposed for another stage start (a stale view): skipped.
	stale := proto.Clone(due[0]).(*gridpb.AlertDue)
	stale.SinceUnixNano--
	if r := raise(h, paidAt+limit, stale); len(r.OrderIds) != 0 {
		t.Fatalf("raised for a stale stage: %v", r)
	}
	if r := raise(h, paidAt+limit+5, due[0]); len(r.OrderIds) != 1 || r.OrderIds[0] != "o1" {
		t.Fatalf("raise: %v", r)
	}
	// A duplicate proposal (a retry, another leader's) finds it open.
	if r := raise(h, paidAt+limit+6, due[0]); len(r.OrderIds) != 0 {
		t.Fatalf("raised twice: %v", r)
	}
	if got, want := eventTypes(t, h, "o1"), []string{"created", "paid", EventAlertRaised}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	evs, _ := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "o1")
	d := evs[2].Details
	if d["stage"] != "paid" || d["limit"] != "30m0s" || d["since"] != time.Unix(0, paidAt).UTC().Format(time.RFC3339Nano) ||
		d["name"] != "paid-not-picked" || evs[2].Principal != "system:sweeper" || evs[2].Status != lifecycle.StatusPaid {
		t.Fatalf("alert_raised event: %v", evs[2])
	}
	o := readOrder(t, h, "o1")
	if o.Alert == nil || o.Alert.Stage != "paid" || o.Alert.RaisedUnixNano != paidAt+limit+5 || o.Status != lifecycle.StatusPaid {
		t.Fatalf("record after the alert: %v", o)
	}
	if due := h.m.StuckOrders(paidAt+10*limit, testLimits, 10); len(due) != 0 {
		t.Fatalf("an order with an open alert is due again: %v", due)
	}
	g, err := h.m.AlertGroups(AlertGroupFields)
	if err != nil {
		t.Fatal(err)
	}
	if g.Open != 1 || len(g.Groups) != 1 || g.Groups[0].Warehouse != "WH-1,WH-2" || g.Groups[0].Channel != "tmall" ||
		g.Groups[0].OldestOrder != "o1" || g.Groups[0].OldestSinceUnixNano != paidAt {
		t.Fatalf("groups %v", g)
	}

	pickedAt := paidAt + 2*limit
	if r := transitionTo(h, pickedAt, "o1", lifecycle.StatusPicked); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("pick: %v", r)
	}
	if got, want := eventTypes(t, h, "o1"), []string{"created", "paid", EventAlertRaised, "picked", EventAlertCleared}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	evs, _ = ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "o1")
	if c := evs[4]; c.Details["stage"] != "paid" || c.Details["open_seconds"] != "1799" || c.Status != lifecycle.StatusPicked {
		t.Fatalf("alert_cleared event: %v", c)
	}
	o = readOrder(t, h, "o1")
	if o.Alert != nil || o.StageStatus != lifecycle.StatusPicked || o.StageSinceUnixNano != pickedAt || o.Version != 5 {
		t.Fatalf("record after the move: %v", o)
	}
	if h.m.OpenAlerts() != 0 || h.m.AlertsCleared() != 1 {
		t.Fatalf("open %d cleared %d after the move", h.m.OpenAlerts(), h.m.AlertsCleared())
	}
	// The alert for paid cannot be raised again: the order is no longer in it.
	if r := raise(h, pickedAt+1, due[0]); len(r.OrderIds) != 0 {
		t.Fatalf("raised for a stage left: %v", r)
	}
	// Its new stage is timed from the move.
	if due := h.m.StuckOrders(pickedAt+int64(2*time.Hour)-1, testLimits, 10); len(due) != 0 {
		t.Fatalf("picked due early: %v", due)
	}
	if due := h.m.StuckOrders(pickedAt+int64(2*time.Hour), testLimits, 10); len(due) != 1 || due[0].Stage != "picked" || due[0].SinceUnixNano != pickedAt {
		t.Fatalf("picked due: %v", due)
	}
	// An event that does not move the order keeps its stage.
	if r := transitionTo(h, pickedAt+5, "o1", lifecycle.StatusCancelled); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("cancel: %v", r)
	}
	if due := h.m.StuckOrders(pickedAt+int64(100*time.Hour), testLimits, 10); len(due) != 0 {
		t.Fatalf("a closed order is due: %v", due)
	}
}

// Unpaid orders are not timed by stage limits, and nothing is due without
// limits; StuckOrders answers at most its limit, the longest overdue first.
func TestStuckOrdersBoundsAndOrder(t *testing.T) {
	h := newHarness(t)
	o := &gridpb.OrderRecord{Id: "unpaid", RequestHash: []byte("u"), PayByUnixNano: alertBase + int64(time.Hour)}
	h.apply(alertBase, createOrders(o))
	for i, id := range []string{"c", "a", "b"} {
		newPaidOrder(t, h, id, "web", alertBase+int64(i+1))
	}
	all := h.m.StuckOrders(alertBase+int64(24*time.Hour), []StageLimit{{Status: lifecycle.StatusPendingPayment, Limit: time.Second}, testLimits[0]}, 2)
	if len(all) != 2 || all[0].OrderId != "c" || all[1].OrderId != "a" {
		t.Fatalf("due %v", all)
	}
	if due := h.m.StuckOrders(alertBase+int64(24*time.Hour), nil, 10); len(due) != 0 {
		t.Fatalf("due without limits: %v", due)
	}
	if _, err := h.m.AlertGroups([]string{"customer"}); err == nil {
		t.Fatal("grouped by an unknown field")
	}
}

// The stages and open alerts are rebuilt by Load from the order records
// (after a restart or a snapshot): due orders are due again, an open
// alert stays open (not raised twice) and clears when its order moves.
// A record written before stages were kept is timed from its last change.
func TestAlertIndexRebuiltOnLoad(t *testing.T) {
	h := newHarness(t)
	paidAt := alertBase + int64(time.Second)
	newPaidOrder(t, h, "o1", "web", paidAt, "W")
	newPaidOrder(t, h, "o2", "web", paidAt+1, "W")
	limit := int64(30 * time.Minute)
	due := h.m.StuckOrders(paidAt+limit+1, testLimits, 10)
	if len(due) != 2 {
		t.Fatalf("due %v", due)
	}
	if r := raise(h, paidAt+limit+1, due[0]); len(r.OrderIds) != 1 {
		t.Fatalf("raise: %v", r)
	}
	// A record as versions before stages wrote it.
	legacy := &gridpb.OrderRecord{Id: "old", Status: lifecycle.StatusPacked, Channel: "web", Version: 4, UpdatedUnixNano: alertBase}
	v, _ := proto.Marshal(legacy)
	if err := h.db.Set(orderKey(h.prefix, "old"), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}

	h.m = New(0, h.prefix).(*Machine)
	if err := h.m.Load(h.db); err != nil {
		t.Fatal(err)
	}
	limits := append(testLimits, StageLimit{Status: lifecycle.StatusPacked, Limit: time.Hour})
	due = h.m.StuckOrders(paidAt+limit+1+int64(time.Hour), limits, 10)
	if len(due) != 2 || due[0].OrderId != "o2" || due[1].OrderId != "old" || due[1].SinceUnixNano != alertBase {
		t.Fatalf("due after load: %v", due)
	}
	if h.m.OpenAlerts() != 1 {
		t.Fatalf("open alerts after load: %d", h.m.OpenAlerts())
	}
	if r := raise(h, paidAt+2*limit, &gridpb.AlertDue{OrderId: "o1", Stage: "paid", SinceUnixNano: paidAt, LimitMs: limit / 1e6}); len(r.OrderIds) != 0 {
		t.Fatalf("raised again after load: %v", r)
	}
	if r := raise(h, paidAt+2*limit, due[1]); len(r.OrderIds) != 1 {
		t.Fatalf("legacy order: %v", r)
	}
	if r := transitionTo(h, paidAt+3*limit, "o1", lifecycle.StatusPicked); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatal(r)
	}
	if got := eventTypes(t, h, "o1"); got[len(got)-1] != EventAlertCleared {
		t.Fatalf("events after load: %v", got)
	}
	if h.m.OpenAlerts() != 1 {
		t.Fatalf("open alerts: %d, want the legacy order's", h.m.OpenAlerts())
	}
}
