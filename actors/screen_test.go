package actors

import (
	"context"
	"testing"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/screening"
)

// setLimit puts a purchase-limit rule in sku's partition, without faults.
func (h *house) setLimit(sku string, rule *gridpb.SkuLimitRule) {
	h.t.Helper()
	p := h.n.skuPartition(sku)
	res, err := h.n.propose(context.Background(), p.partition.(*twinPartition).unfaulted(), "test",
		&gridpb.Command{Kind: &gridpb.Command_SetSkuLimit{SetSkuLimit: &gridpb.SetSkuLimitCommand{Sku: sku, Rule: rule}}})
	if err != nil || res.Outcome != gridpb.Outcome_OUTCOME_OK {
		h.t.Fatalf("set limit on %s: %v %v", sku, res, err)
	}
}

// One batch, one buyer, two orders of a SKU under a limit of one: the
// first is taken, the second refused (LIMIT_EXCEEDED naming the SKU, with
// a limit_exceeded finding) with nothing of it reserved, its other line
// released too; stock is conserved.
func TestCreateBatchLimitRefusesInTheBatch(t *testing.T) {
	h := newHouse(t, testSeed(t), 2)
	h.setStock("lipstick", "ams", 10)
	h.setStock("mirror", "ams", 10)
	h.setLimit("lipstick", &gridpb.SkuLimitRule{Rule: "one-each", Version: 1, Per: "customer", MaxQty: 1})
	ids := h.idsOf(0, "lim", 2)
	reqs := []*gridpb.CreateOrderGrainRequest{newOrder(ids[0], line("lipstick", 1)), newOrder(ids[1], line("mirror", 1), line("lipstick", 1))}
	for _, r := range reqs {
		r.Request.Customer.Id = "cu-one"
	}
	answers := h.create("batch", reqs)
	h.checkAnswer("batch", reqs[0], answers[0], true)
	if a := answers[0]; a.Err != nil || a.Response.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("first order: %+v", a)
	}
	a := answers[1]
	if a.Err != nil || a.Response.Outcome != gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED || a.Response.Sku != "lipstick" ||
		len(a.Response.Findings) != 1 || a.Response.Findings[0].Code != "limit_exceeded" {
		t.Fatalf("second order: %+v", a)
	}
	if _, recorded := h.order(ids[1]); recorded {
		t.Fatal("the refused order is recorded")
	}
	for _, sku := range []string{"mirror", "lipstick"} {
		if r, ok := h.reservation(sku, ids[1]); ok && r.State == gridpb.ReservationState_RESERVATION_STATE_PENDING {
			t.Fatalf("the refused order holds %d of %s", r.Qty, sku)
		}
	}
	if st := h.stockOf("lipstick")["ams"]; st.Pending != 1 {
		t.Fatalf("lipstick: %v", st)
	}
	if st := h.stockOf("mirror")["ams"]; st.Pending != 0 {
		t.Fatalf("mirror: %v", st)
	}
}

// A holding limit on one line holds the order (on_hold, reason limit, its
// pay-by the hold's timeout) and every line's reservation lasts the hold:
// the held line's by the state machine, the other's by an extend.
func TestCreateBatchLimitHoldKeepsEveryLine(t *testing.T) {
	h := newHouse(t, testSeed(t), 2)
	h.setStock("lipstick", "ams", 10)
	h.setStock("mirror", "ams", 10)
	h.setLimit("lipstick", &gridpb.SkuLimitRule{Rule: "one-each", Version: 1, Per: "customer", MaxQty: 1, Hold: true})
	ids := h.idsOf(1, "hold", 2)
	reqs := []*gridpb.CreateOrderGrainRequest{newOrder(ids[0], line("lipstick", 1)), newOrder(ids[1], line("mirror", 2), line("lipstick", 1))}
	for _, r := range reqs {
		r.Request.Customer.Id = "cu-two"
	}
	answers := h.create("batch", reqs)
	for i := range reqs {
		h.checkAnswer("batch", reqs[i], answers[i], true)
	}
	o, ok := h.order(ids[1])
	if !ok || o.Status != lifecycle.StatusOnHold || o.Hold.GetReason() != "limit" || len(o.Hold.Findings) != 1 || o.Hold.Findings[0].Code != "limit_exceeded" {
		t.Fatalf("held order: %v", o)
	}
	if want := twinClock.Add(h.n.opts.HoldTimeout).UnixNano(); o.PayByUnixNano != want || o.Hold.UntilUnixNano != want {
		t.Fatalf("pay-by %d, until %d, want %d", o.PayByUnixNano, o.Hold.UntilUnixNano, want)
	}
	holdExpires := twinClock.Add(h.n.opts.HoldTimeout + h.n.opts.PendingTimeout + h.n.opts.OrphanGrace).UnixNano()
	for _, sku := range []string{"mirror", "lipstick"} {
		r, ok := h.reservation(sku, ids[1])
		if !ok || r.State != gridpb.ReservationState_RESERVATION_STATE_PENDING || r.ExpiresUnixNano != holdExpires {
			t.Fatalf("%s reservation of the held order: %v, want expiry %d", sku, r, holdExpires)
		}
	}
	if r, _ := h.reservation("lipstick", ids[0]); r.ExpiresUnixNano >= holdExpires {
		t.Fatalf("the accepted order's reservation lasts the hold: %v", r)
	}
}

// An address the screener holds: the order is recorded on_hold (reason
// address, its finding), and its reservations were made for the hold.
func TestCreateBatchAddressHold(t *testing.T) {
	h := newHouse(t, testSeed(t), 2)
	sc, err := screening.New(screening.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.n.opts.Screen = sc
	master, err := privacy.NewMasterKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	if h.n.opts.Keyring, err = privacy.ParseKeyring(master); err != nil {
		t.Fatal(err)
	}
	h.setStock("lipstick", "ams", 10)
	ids := h.idsOf(0, "addr", 2)
	reqs := []*gridpb.CreateOrderGrainRequest{newOrder(ids[0], line("lipstick", 1)), newOrder(ids[1], line("lipstick", 1))}
	reqs[0].Request.Customer.Address = "上海市 浦东新区 碧波路 690号"
	reqs[1].Request.Customer.Address = "浙江省 杭州市 文三路 90号"
	answers := h.create("batch", reqs)
	for i := range reqs {
		h.checkAnswer("batch", reqs[i], answers[i], true)
	}
	if o, _ := h.order(ids[0]); o.Status != lifecycle.StatusPendingPayment || o.Hold != nil {
		t.Fatalf("complete address: %v", o)
	}
	o, _ := h.order(ids[1])
	if o.Status != lifecycle.StatusOnHold || o.Hold.GetReason() != "address" || o.Hold.Findings[0].Code != "address_incomplete" {
		t.Fatalf("incomplete address: %v", o)
	}
	holdExpires := twinClock.Add(h.n.opts.HoldTimeout + h.n.opts.PendingTimeout + h.n.opts.OrphanGrace).UnixNano()
	if r, _ := h.reservation("lipstick", ids[1]); r.ExpiresUnixNano != holdExpires {
		t.Fatalf("held order's reservation: %v, want expiry %d", r, holdExpires)
	}
}
