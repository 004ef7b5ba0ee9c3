package actors

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	"github.com/ordergrid/ordergrid/statemachine"
)

// paidOrder records an order on its partition, paid at the node's clock.
func (h *house) paidOrder(id, channel, warehouse string) {
	h.t.Helper()
	ref := h.n.parts.partitionOf(OrderKey(id))
	o := &gridpb.OrderRecord{Id: id, Channel: channel, RequestHash: []byte(id), PayByUnixNano: h.n.now().Add(time.Hour).UnixNano(),
		Lines: []*gridpb.OrderLineRecord{{Sku: "s", Qty: 1, UnitPrice: "1", Warehouse: warehouse}}}
	for _, cmd := range []*gridpb.Command{
		{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: o}}},
		{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: id, Type: lifecycle.StatusPaid}}},
	} {
		res, err := h.n.propose(context.Background(), ref, "test", cmd)
		if err != nil || res.Outcome != gridpb.Outcome_OUTCOME_OK {
			h.t.Fatalf("order %s: %v %v", id, res, err)
		}
	}
}

// The sweeper raises an alert for an order stuck past its stage's limit,
// on the order's partition, once: a proposal refused is made again by the
// next sweep, one applied whose answer was lost is not repeated (the order
// has its alert, so it is no longer due), and later sweeps propose nothing.
// The node's alert groups merge the partitions'.
func TestSweeperRaisesStuckOrderAlertsOnce(t *testing.T) {
	h := newHouse(t, testSeed(t), 2)
	clock := twinClock
	h.n.now = func() time.Time { return clock }
	h.n.opts.StageLimits = []statemachine.StageLimit{{Status: lifecycle.StatusPaid, Limit: 30 * time.Minute, Name: "paid-not-picked"}}
	a, b := h.idsOf(0, "a", 1)[0], h.idsOf(1, "b", 2)
	h.paidOrder(a, "tmall", "WH-1")
	h.paidOrder(b[0], "tmall", "WH-1")
	clock = clock.Add(10 * time.Minute)
	h.paidOrder(b[1], "web", "WH-2")

	s := sweeper{h.n}
	log := slog.New(slog.DiscardHandler)
	sweep := func() {
		for _, ref := range h.parts.refs {
			tp := ref.partition.(*twinPartition)
			s.raiseAlerts(ref, tp.m, clock, log)
		}
	}
	twin := func(part int) *twinPartition { return h.parts.refs[part].partition.(*twinPartition) }
	clock = twinClock.Add(30*time.Minute - time.Nanosecond)
	sweep()
	if twin(0).appliedOf("raise_alerts")+twin(1).appliedOf("raise_alerts") != 0 {
		t.Fatal("alerts proposed before the limit")
	}

	clock = twinClock.Add(30 * time.Minute)
	h.faults.always(faultRefused, func(cmd *gridpb.Command) bool { return cmd.GetRaiseAlerts() != nil })
	sweep()
	for _, id := range []string{a, b[0]} {
		if o, _ := h.order(id); o.Alert != nil {
			t.Fatalf("%s: alert raised by a refused proposal", id)
		}
	}
	h.faults.always(faultAmbiguous, func(cmd *gridpb.Command) bool { return cmd.GetRaiseAlerts() != nil })
	sweep()
	h.faults.set(0, nil)
	applied := twin(0).appliedOf("raise_alerts") + twin(1).appliedOf("raise_alerts")
	for range 3 {
		sweep()
	}
	if got := twin(0).appliedOf("raise_alerts") + twin(1).appliedOf("raise_alerts"); got != applied || applied != 2 {
		t.Fatalf("raise_alerts applied %d, then %d after more sweeps; want 2 and no more", applied, got)
	}
	for _, id := range []string{a, b[0]} {
		o, _ := h.order(id)
		if o.Alert == nil || o.Alert.Stage != lifecycle.StatusPaid || o.Alert.Name != "paid-not-picked" {
			t.Fatalf("%s: alert %v", id, o.Alert)
		}
		evs, err := statemachine.ReadEvents(h.local(), h.parts.partitionOf(OrderKey(id)).Prefix, id)
		if err != nil {
			t.Fatal(err)
		}
		raised := 0
		for _, e := range evs {
			if e.Type == statemachine.EventAlertRaised {
				raised++
				if e.Principal != SweeperPrincipal {
					t.Errorf("%s: raised by %q", id, e.Principal)
				}
			}
		}
		if raised != 1 {
			t.Fatalf("%s: %d alert_raised events", id, raised)
		}
	}
	if o, _ := h.order(b[1]); o.Alert != nil {
		t.Fatalf("%s: raised before its limit", b[1])
	}

	groups, err := mergeAlertGroups([]*statemachine.Machine{twin(0).m, twin(1).m}, []string{statemachine.AlertByChannel})
	if err != nil {
		t.Fatal(err)
	}
	if groups.Open != 2 || len(groups.Groups) != 1 || groups.Groups[0].Count != 2 || groups.Groups[0].Channel != "tmall" ||
		groups.Groups[0].Stage != "" || groups.Groups[0].OldestSinceUnixNano != twinClock.UnixNano() {
		t.Fatalf("groups %v", groups)
	}
}
