package e2e

import (
	"testing"
	"time"
)

// A paid order that is not picked within its stage limit gets one
// alert_raised event, judged in its partition: a kill -9 of the node after
// it fired does not fire it again, and one killed before it fired fires it
// after the restart. GET /v1/alerts groups it; picking the order clears it
// (alert_cleared after the move).
func TestStuckOrderAlertsFireOnceAcrossKill(t *testing.T) {
	n := newNode(t, "--alerts-stages", "paid=2s:paid-not-picked", "--orders-sweep-interval", "100ms")
	n.start()
	n.must("PUT", "/v1/skus/ALERT-1/stock/WH1", map[string]any{"on_hand": 10}, 200)
	var early, late order
	n.must("POST", "/v1/orders", orderBody("alert-1", "ALERT-1", 1), 201).json(t, &early)
	n.must("POST", "/v1/orders/"+early.ID+"/pay", nil, 200)

	type event struct{ Type, Status, Principal string }
	events := func(id string) []event {
		var evs struct{ Events []event }
		n.must("GET", "/v1/orders/"+id+"/events", nil, 200).json(t, &evs)
		return evs.Events
	}
	count := func(evs []event, typ string) int {
		c := 0
		for _, e := range evs {
			if e.Type == typ {
				c++
			}
		}
		return c
	}
	waitAlert := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); count(events(id), "alert_raised") == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("order %s: no alert_raised 20s after its 2s limit: %+v", id, events(id))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitAlert(early.ID)
	// The second order is paid, then the node is killed before its limit.
	n.must("POST", "/v1/orders", orderBody("alert-2", "ALERT-1", 1), 201).json(t, &late)
	n.must("POST", "/v1/orders/"+late.ID+"/pay", nil, 200)
	n.kill()
	time.Sleep(2500 * time.Millisecond) // past the second order's limit while down
	n.start()
	waitAlert(late.ID)
	time.Sleep(time.Second) // ten more sweeps
	for _, id := range []string{early.ID, late.ID} {
		if evs := events(id); count(evs, "alert_raised") != 1 {
			t.Fatalf("order %s: %d alert_raised events across the kill: %+v", id, count(evs, "alert_raised"), evs)
		}
	}
	var alerts struct {
		Open   int `json:"open"`
		Groups []struct {
			Stage, Warehouse string
			Count            int
		} `json:"groups"`
	}
	n.must("GET", "/v1/alerts?group_by=stage", nil, 200).json(t, &alerts)
	if alerts.Open != 2 || len(alerts.Groups) != 1 || alerts.Groups[0].Stage != "paid" || alerts.Groups[0].Count != 2 {
		t.Fatalf("GET /v1/alerts: %+v", alerts)
	}
	n.must("GET", "/v1/alerts?group_by=stage,colour", nil, 400)
	// Moving the order clears its alert, right after the move.
	n.must("POST", "/v1/orders/"+early.ID+"/events", map[string]any{"type": "picked"}, 200)
	evs := events(early.ID)
	if last := evs[len(evs)-1]; last.Type != "alert_cleared" || evs[len(evs)-2].Type != "picked" {
		t.Fatalf("after picking: %+v", evs)
	}
	n.must("GET", "/v1/alerts", nil, 200).json(t, &alerts)
	if alerts.Open != 1 {
		t.Fatalf("GET /v1/alerts after one cleared: %+v", alerts)
	}
}
