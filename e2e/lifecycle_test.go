package e2e

import (
	"testing"
	"time"
)

// An unpaid order releases its stock when the pending timeout passes and
// becomes expired; paying it afterwards is refused.
func TestPendingTimeoutReleasesStock(t *testing.T) {
	n := newNode(t, "--orders-pending-timeout", "1s", "--orders-sweep-interval", "100ms", "--orders-orphan-grace", "0s")
	n.start()
	n.must("PUT", "/v1/skus/TIMEOUT-1/stock/WH1", map[string]any{"on_hand": 5}, 200)
	var o order
	n.must("POST", "/v1/orders", orderBody("t-1", "TIMEOUT-1", 3), 201).json(t, &o)
	if s := n.checkConserved("TIMEOUT-1"); s.Total.Pending != 3 || s.Total.Available != 2 {
		t.Fatalf("after order: %+v", s.Total)
	}
	// A second order is paid in time and keeps its stock.
	var paid order
	n.must("POST", "/v1/orders", orderBody("t-2", "TIMEOUT-1", 1), 201).json(t, &paid)
	n.must("POST", "/v1/orders/"+paid.ID+"/pay", nil, 200)

	deadline := time.Now().Add(15 * time.Second)
	for {
		n.must("GET", "/v1/orders/"+o.ID, nil, 200).json(t, &o)
		s := n.checkConserved("TIMEOUT-1")
		if o.Status == "expired" && s.Total.Pending == 0 {
			if s.Total.Available != 4 || s.Total.Committed != 1 {
				t.Fatalf("after expiry: %+v", s.Total)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is %s with stock %+v 15s after a 1s timeout", o.ID, o.Status, s.Total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var p problem
	n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 409).json(t, &p)
	if p.CurrentStatus != "expired" {
		t.Fatalf("pay after expiry: %+v", p)
	}
	var evs struct {
		Events []struct {
			Type, Principal, Status string
		} `json:"events"`
	}
	n.must("GET", "/v1/orders/"+o.ID+"/events", nil, 200).json(t, &evs)
	if len(evs.Events) != 2 || evs.Events[1].Type != "expired" || evs.Events[1].Principal != "system:sweeper" {
		t.Fatalf("events: %+v", evs.Events)
	}
}

// The whole lifecycle moves stock: pending until paid, committed after,
// gone from on_hand when shipped, back when returned; cancel releases.
func TestLifecycleMovesStock(t *testing.T) {
	file, tok := makeTokens(t, tokenSpec{name: "wms-sync", role: "ops"}, tokenSpec{name: "douyin-connector", role: "intake", channels: "douyin"})
	n := newNode(t, "--auth-tokens-file", file)
	n.start()
	n.must("PUT", "/v1/skus/LC-1/stock/WH-A", map[string]any{"on_hand": 10}, 200)
	n.must("PUT", "/v1/skus/LC-1/stock/WH-B", map[string]any{"on_hand": 4}, 200, bearerHeader(tok["wms-sync"])...)
	var stockEvents struct {
		Events []struct {
			Type, Principal string
			Details         map[string]string
		} `json:"events"`
	}
	n.must("GET", "/v1/skus/LC-1/events", nil, 200).json(t, &stockEvents)
	if len(stockEvents.Events) != 2 || stockEvents.Events[1].Principal != "wms-sync" || stockEvents.Events[1].Type != "stock_set" ||
		stockEvents.Events[1].Details["warehouse"] != "WH-B" || stockEvents.Events[1].Details["on_hand"] != "4" {
		t.Fatalf("stock events: %+v", stockEvents.Events)
	}

	var o order
	n.must("POST", "/v1/orders", orderBody("lc-1", "LC-1", 6), 201, bearerHeader(tok["douyin-connector"])...).json(t, &o)
	if o.Lines[0].Warehouse != "WH-A" {
		t.Fatalf("6 units must come from WH-A (WH-B has 4): %+v", o)
	}
	want := func(step string, onHand, avail, pending, committed int64) {
		t.Helper()
		s := n.checkConserved("LC-1")
		got := s.Total
		if got.OnHand != onHand || got.Available != avail || got.Pending != pending || got.Committed != committed {
			t.Fatalf("%s: stock %+v, want on_hand=%d available=%d pending=%d committed=%d", step, got, onHand, avail, pending, committed)
		}
	}
	want("created", 14, 8, 6, 0)
	n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200)
	want("paid", 14, 8, 0, 6)
	var p problem
	n.must("POST", "/v1/orders/"+o.ID+"/events", map[string]any{"type": "delivered"}, 409).json(t, &p)
	if p.CurrentStatus != "paid" || p.Type != "https://ordergrid.dev/problems/illegal-transition" {
		t.Fatalf("illegal transition: %+v", p)
	}
	for _, ev := range []map[string]any{
		{"type": "picked"}, {"type": "packed"},
		{"type": "shipped", "carrier": "SF Express", "tracking_number": "SF1234567890"},
	} {
		n.must("POST", "/v1/orders/"+o.ID+"/events", ev, 200)
	}
	want("shipped", 8, 8, 0, 0)
	for _, typ := range []string{"in_transit", "out_for_delivery", "delivered", "return_requested", "returned"} {
		n.must("POST", "/v1/orders/"+o.ID+"/events", map[string]any{"type": typ}, 200)
	}
	want("returned", 14, 14, 0, 0)
	n.must("POST", "/v1/orders/"+o.ID+"/events", map[string]any{"type": "refunded"}, 200).json(t, &o)
	if o.Status != "refunded" {
		t.Fatalf("status %s", o.Status)
	}
	var evs struct {
		Events []struct {
			Seq       uint64
			Type      string
			Principal string
			At        string
		} `json:"events"`
	}
	n.must("GET", "/v1/orders/"+o.ID+"/events", nil, 200).json(t, &evs)
	if len(evs.Events) != 11 || evs.Events[0].Principal != "douyin-connector" || evs.Events[0].Type != "created" || evs.Events[10].Type != "refunded" {
		t.Fatalf("timeline: %+v", evs.Events)
	}

	// Cancel releases a paid order's committed stock.
	var c order
	n.must("POST", "/v1/orders", orderBody("lc-2", "LC-1", 2), 201).json(t, &c)
	n.must("POST", "/v1/orders/"+c.ID+"/pay", nil, 200)
	want("paid 2", 14, 12, 0, 2)
	n.must("POST", "/v1/orders/"+c.ID+"/cancel", map[string]any{"reason": "buyer changed mind"}, 200)
	want("cancelled", 14, 14, 0, 0)
	// Setting on_hand below what is reserved is refused and changes nothing.
	var d order
	n.must("POST", "/v1/orders", orderBody("lc-3", "LC-1", 9), 201).json(t, &d)
	n.must("PUT", "/v1/skus/LC-1/stock/"+d.Lines[0].Warehouse, map[string]any{"on_hand": 1}, 409)
	want("below reserved refused", 14, 5, 9, 0)
}
