package statemachine

import (
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"github.com/ordergrid/ordergrid/cluster"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

func notePurchase(h *harness, at time.Duration, order, channel string, skus ...string) *gridpb.PurchaseRecord {
	h.t.Helper()
	res := h.apply(int64(at), &gridpb.Command{Kind: &gridpb.Command_NotePurchase{NotePurchase: &gridpb.NotePurchaseCommand{Customer: "cu_1",
		Purchase: &gridpb.PurchaseRecord{OrderId: order, Channel: channel, Skus: skus, AtUnixNano: int64(at)}, WindowNanos: int64(30 * time.Minute)}}})
	if res.Purchase == nil {
		h.t.Fatalf("note purchase %s: %+v", order, res)
	}
	return res.Purchase
}

func TestDuplicatePurchasesAcrossChannels(t *testing.T) {
	h := newHarness(t)
	base := 100 * time.Hour
	if p := notePurchase(h, base, "o1", "shopify", "A", "B"); p.DuplicateOf != "" {
		t.Fatalf("first purchase is a duplicate: %+v", p)
	}
	if p := notePurchase(h, base+time.Minute, "o2", "shopify", "A", "B"); p.DuplicateOf != "" {
		t.Fatalf("same channel counts as a duplicate: %+v", p)
	}
	if p := notePurchase(h, base+2*time.Minute, "o3", "pos", "A"); p.DuplicateOf != "" {
		t.Fatalf("other SKUs count as a duplicate: %+v", p)
	}
	p := notePurchase(h, base+3*time.Minute, "o4", "pos", "A", "B")
	if p.DuplicateOf != "o1" || p.DuplicateChannel != "shopify" {
		t.Fatalf("want a duplicate of o1: %+v", p)
	}
	if again := notePurchase(h, base+4*time.Minute, "o4", "pos", "A", "B"); again.DuplicateOf != "o1" {
		t.Fatalf("a retry answers its first verdict: %+v", again)
	}
	if late := notePurchase(h, base+40*time.Minute, "o5", "tmall", "A", "B"); late.DuplicateOf != "" {
		t.Fatalf("outside the window: %+v", late)
	}
}

func TestPriceConflictsAndRules(t *testing.T) {
	h := newHarness(t)
	price := func(at time.Duration, order, channel, unit, rule string) *gridpb.PriceConflictRecord {
		return h.apply(int64(at), &gridpb.Command{Kind: &gridpb.Command_NotePrice{NotePrice: &gridpb.NotePriceCommand{Sku: "A",
			Price:       &gridpb.ChannelPrice{Channel: channel, UnitPrice: unit, Currency: "CNY", OrderId: order, AtUnixNano: int64(at)},
			WindowNanos: int64(30 * time.Minute), Rule: rule}}}).Conflict
	}
	base := 100 * time.Hour
	if c := price(base, "o1", "douyin", "59.00", "transaction_time"); c != nil {
		t.Fatalf("first price conflicts: %+v", c)
	}
	if c := price(base+time.Minute, "o2", "douyin", "49.00", "transaction_time"); c != nil {
		t.Fatalf("same channel conflicts: %+v", c)
	}
	c := price(base+2*time.Minute, "o3", "tmall", "65.00", "lowest")
	// The nearest other-channel price in time is o2's.
	if c == nil || c.First.OrderId != "o2" || !strings.Contains(c.Resolution, "49.00") || !strings.Contains(c.Resolution, "lowest") {
		t.Fatalf("conflict: %+v", c)
	}
	if c := price(base+3*time.Minute, "o3", "tmall", "65.00", "lowest"); c != nil {
		t.Fatalf("a retry records a second conflict: %+v", c)
	}
	got, err := PriceConflicts(cluster.LocalReader{R: h.db}, h.prefix, 10)
	if err != nil || len(got) != 1 || got[0].Second.OrderId != "o3" {
		t.Fatalf("listed %v %v", got, err)
	}
	if !decimalLess("9.5", "10.00") || decimalLess("10.00", "10") || !decimalLess("1.05", "1.5") {
		t.Fatal("decimalLess")
	}
}

// TestPriceConflictsIgnoreArrivalOrder: a late-arriving order is compared
// with the prices around its own transaction time, and a later-placed
// order evicts no earlier price from the comparison.
func TestPriceConflictsIgnoreArrivalOrder(t *testing.T) {
	h := newHarness(t)
	window := 30 * time.Minute
	base := 100 * time.Hour
	// note applies at arrival, for an order placed at placed.
	note := func(arrival, placed time.Duration, order, channel, unit string) *gridpb.PriceConflictRecord {
		t.Helper()
		res := h.apply(int64(arrival), &gridpb.Command{Kind: &gridpb.Command_NotePrice{NotePrice: &gridpb.NotePriceCommand{Sku: "A",
			Price:       &gridpb.ChannelPrice{Channel: channel, UnitPrice: unit, Currency: "CNY", OrderId: order, AtUnixNano: int64(placed)},
			WindowNanos: int64(window), Rule: "transaction_time"}}})
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("note %s: %+v", order, res)
		}
		return res.Conflict
	}
	// An early price, then an order placed two hours later: no conflict
	// (outside the window), and the early price must stay.
	if c := note(base, base, "o1", "douyin", "59.00"); c != nil {
		t.Fatalf("first: %+v", c)
	}
	if c := note(base+2*time.Hour, base+2*time.Hour, "o2", "tmall", "49.00"); c != nil {
		t.Fatalf("two hours apart: %+v", c)
	}
	// A Tmall order placed 10 minutes after o1 arrives three hours late:
	// it conflicts with o1 (its own time), not with o2 (the newest).
	c := note(base+3*time.Hour, base+10*time.Minute, "o3", "tmall", "65.00")
	if c == nil || c.First.OrderId != "o1" || c.Second.OrderId != "o3" {
		t.Fatalf("late arrival: %+v", c)
	}
	// The same three orders in the opposite arrival order judge alike.
	h2 := newHarness(t)
	h = h2
	if c := note(base, base+2*time.Hour, "o2", "tmall", "49.00"); c != nil {
		t.Fatalf("reversed first: %+v", c)
	}
	if c := note(base+time.Minute, base+10*time.Minute, "o3", "tmall", "65.00"); c != nil {
		t.Fatalf("reversed, same channel: %+v", c)
	}
	c = note(base+2*time.Minute, base, "o1", "douyin", "59.00")
	if c == nil || c.First.OrderId != "o1" || c.Second.OrderId != "o3" {
		t.Fatalf("reversed: %+v", c)
	}
	// Retention counts from when a price was noted: a day past the window
	// it is gone.
	if c := note(base+2*time.Minute+window+25*time.Hour, base+5*time.Minute, "o4", "jd", "70.00"); c != nil {
		t.Fatalf("expired prices still compared: %+v", c)
	}
}

func TestIdentityLinksOnce(t *testing.T) {
	h := newHarness(t)
	link := func(customer string) *Result {
		return h.apply(1, &gridpb.Command{Kind: &gridpb.Command_LinkIdentity{LinkIdentity: &gridpb.LinkIdentityCommand{KeyHash: "k", Customer: customer}}})
	}
	if r := link("cu_a"); r.Outcome != gridpb.Outcome_OUTCOME_OK || r.Detail != "cu_a" {
		t.Fatalf("%+v", r)
	}
	if r := link("cu_b"); r.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || r.Detail != "cu_a" {
		t.Fatalf("second link: %+v", r)
	}
}

func TestHoldMergeAndAnnotations(t *testing.T) {
	h := newHarness(t)
	now := int64(time.Hour)
	create := func(id string) {
		h.apply(now, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: &gridpb.OrderRecord{
			Id: id, Customer: &pb.Customer{Id: "cu_1"}, PayByUnixNano: now + int64(time.Minute),
			Lines: []*gridpb.OrderLineRecord{{Sku: "A", Qty: 1, UnitPrice: "1.00"}}}}}})
	}
	move := func(id, to string) *Result {
		return h.apply(now, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: id, Type: to}}})
	}
	create("held")
	if r := move("held", lifecycle.StatusOnHold); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("hold: %+v", r)
	}
	if r := move("held", lifecycle.StatusPaid); r.Outcome != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION {
		t.Fatalf("paying a held order: %+v", r)
	}
	if due := h.m.DueOrders(now+int64(2*time.Minute), 10); len(due) != 1 {
		t.Fatalf("a held order keeps its pay-by deadline: %v", due)
	}
	if r := move("held", lifecycle.StatusPendingPayment); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("lifting: %+v", r)
	}
	h.apply(now+int64(2*time.Minute), &gridpb.Command{Kind: &gridpb.Command_ExpireOrders{ExpireOrders: &gridpb.ExpireOrdersCommand{OrderIds: []string{"held"}}}})
	if o, _, _ := ReadOrder(cluster.LocalReader{R: h.db}, h.prefix, "held"); o.Status != lifecycle.StatusExpired {
		t.Fatalf("a lifted order past its deadline expires: %s", o.Status)
	}
	create("second")
	r := move("second", lifecycle.StatusMerged)
	if r.Outcome != gridpb.Outcome_OUTCOME_OK || r.Order.StockAction != lifecycle.ActionRelease || !IsClosed(lifecycle.StatusMerged) {
		t.Fatalf("merge: %+v", r)
	}
	annotate := func() *Result {
		return h.apply(now, &gridpb.Command{Kind: &gridpb.Command_AnnotateOrder{AnnotateOrder: &gridpb.AnnotateOrderCommand{OrderId: "held",
			Type: "duplicate_merged", Details: map[string]string{"order": "second"}, Dedupe: "dup/second"}}})
	}
	if r := annotate(); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("annotate: %+v", r)
	}
	if r := annotate(); r.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("annotate twice: %+v", r)
	}
	evs, _ := ReadEvents(cluster.LocalReader{R: h.db}, h.prefix, "held")
	if last := evs[len(evs)-1]; last.Type != "duplicate_merged" || last.Status != lifecycle.StatusExpired || evs[len(evs)-2].Type != lifecycle.StatusExpired {
		t.Fatalf("events %v", evs)
	}
}

func TestErasureForgetsFingerprints(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_LinkIdentity{LinkIdentity: &gridpb.LinkIdentityCommand{KeyHash: "phone-hash", Customer: "cu_1"}}})
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_LinkIdentity{LinkIdentity: &gridpb.LinkIdentityCommand{KeyHash: "other-hash", Customer: "cu_2"}}})
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_RememberIdentity{RememberIdentity: &gridpb.RememberIdentityCommand{Customer: "cu_1", KeyHash: "phone-hash"}}})
	h.apply(1, &gridpb.Command{Kind: &gridpb.Command_PutSubjectKey{PutSubjectKey: &gridpb.PutSubjectKeyCommand{Key: &gridpb.SubjectKeyRecord{Subject: "cu_1", MasterKeyId: "k1", WrappedKey: []byte("w")}}}})
	notePurchase(h, time.Hour, "o1", "pos", "A")
	if got, _ := IdentityHashes(r, h.prefix, "cu_1"); len(got) != 1 || got[0] != "phone-hash" {
		t.Fatalf("remembered %v", got)
	}
	for _, c := range []string{"cu_1", "cu_2"} { // only the link to cu_1 goes
		h.apply(2, &gridpb.Command{Kind: &gridpb.Command_UnlinkIdentity{UnlinkIdentity: &gridpb.UnlinkIdentityCommand{KeyHash: "phone-hash", Customer: c}}})
	}
	h.apply(2, &gridpb.Command{Kind: &gridpb.Command_UnlinkIdentity{UnlinkIdentity: &gridpb.UnlinkIdentityCommand{KeyHash: "other-hash", Customer: "cu_1"}}})
	if _, ok, _ := ReadIdentity(r, h.prefix, "phone-hash"); ok {
		t.Fatal("the erased customer's fingerprint is still linked")
	}
	if owner, ok, _ := ReadIdentity(r, h.prefix, "other-hash"); !ok || owner != "cu_2" {
		t.Fatal("another customer's fingerprint was unlinked")
	}
	if res := h.apply(3, &gridpb.Command{Kind: &gridpb.Command_EraseSubject{EraseSubject: &gridpb.EraseSubjectCommand{Subject: "cu_1"}}}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("erase: %+v", res)
	}
	if got, _ := IdentityHashes(r, h.prefix, "cu_1"); len(got) != 0 {
		t.Fatalf("fingerprint list kept: %v", got)
	}
	if _, ok, _ := r.Get(purchasesKey(h.prefix, "cu_1")); ok {
		t.Fatal("recent purchases kept")
	}
}
