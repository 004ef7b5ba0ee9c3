package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// channelGrid remembers every call of the channel workflow: a purchase is
// a duplicate of the customer's previous one, a price conflicts with the
// previous price of its SKU from another channel.
type channelGrid struct {
	mu        sync.Mutex
	calls     []string
	purchases map[string]*gridpb.PurchaseRecord
	prices    map[string]*gridpb.ChannelPrice
	failOn    string // a call name that fails
	absent    bool   // ReadOrder finds nothing
}

func (g *channelGrid) call(s string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, s)
	if g.failOn != "" && strings.HasPrefix(s, g.failOn) {
		return errors.New("leader lost")
	}
	return nil
}

func (g *channelGrid) ResolveCustomer(_ context.Context, keys []channels.IdentityKey) (string, error) {
	return "cu_1", g.call("resolve") // one buyer across channels
}

func (g *channelGrid) NotePurchase(_ context.Context, customer string, p *gridpb.PurchaseRecord, _ time.Duration) (*gridpb.PurchaseRecord, error) {
	if err := g.call("purchase " + p.OrderId); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := &gridpb.PurchaseRecord{OrderId: p.OrderId, Channel: p.Channel}
	if prev := g.purchases[customer]; prev != nil && prev.Channel != p.Channel {
		out.DuplicateOf, out.DuplicateChannel = prev.OrderId, prev.Channel
	}
	g.purchases[customer] = p
	return out, nil
}

func (g *channelGrid) NotePrice(_ context.Context, sku string, p *gridpb.ChannelPrice, _ time.Duration, rule string) (*gridpb.PriceConflictRecord, error) {
	if err := g.call("price " + sku); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.prices[sku]
	g.prices[sku] = p
	if prev != nil && prev.Channel != p.Channel && prev.UnitPrice != p.UnitPrice {
		return &gridpb.PriceConflictRecord{Sku: sku, First: prev, Second: p, Rule: rule, Resolution: "first price stands"}, nil
	}
	return nil, nil
}

func (g *channelGrid) AnnotateOrder(_ context.Context, id, typ string, _ map[string]string, dedupe, _ string) error {
	return g.call(fmt.Sprintf("annotate %s %s %s", id, typ, dedupe))
}

func (g *channelGrid) ReadOrder(id string) (*gridpb.OrderRecord, bool, error) {
	if g.absent {
		return nil, false, g.call("read " + id)
	}
	return &gridpb.OrderRecord{Id: id, Status: "merged"}, true, g.call("read " + id)
}

func channelOrder(ch, id, price string) *ChannelOrder {
	req := &pb.CreateOrderRequest{Channel: ch, ChannelOrderId: id, Currency: "CNY",
		Lines: []*pb.OrderLineInput{{Sku: "S1", Qty: 1, UnitPrice: price}, {Sku: "S1", Qty: 2, UnitPrice: price}}}
	return &ChannelOrder{Mapped: &channels.Mapped{Request: req, BuyerID: "buyer-1"}, Principal: "channel:" + ch}
}

// channelOptions merge a tmall order into an earlier douyin one.
func channelOptions() ChannelOptions {
	cfg := &channels.Config{}
	cfg.Merge.Pairs = map[string]string{"douyin+tmall": channels.PolicyMerge}
	return ChannelOptions{Config: cfg, IdentityKey: make([]byte, 32)}
}

// The workflow's steps in order: the buyer resolved, the order created
// through the batches, the purchase noted, a cross-channel duplicate
// merged (an event through the batched events) and both orders annotated,
// each SKU's price noted once and a conflict annotated.
func TestChannelFlowSteps(t *testing.T) {
	c := &recordingCreator{}
	p := New(c, Options{})
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}}
	f := NewChannelFlow(p, grid, channelOptions())
	ctx := context.Background()

	first, err := f.Take(ctx, channelOrder("douyin", "D1", "10.00"))
	if err != nil || first.Duplicate != nil || len(first.PriceConflicts) != 0 || first.Order == nil {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := f.Take(ctx, channelOrder("tmall", "T1", "12.00"))
	if err != nil {
		t.Fatal(err)
	}
	firstID, secondID := OrderID(first.Request), OrderID(second.Request)
	if d := second.Duplicate; d == nil || d.Of != firstID || d.Channel != "douyin" || d.Policy != channels.PolicyMerge {
		t.Fatalf("duplicate %+v", second.Duplicate)
	}
	if second.Order.Status != "merged" || !slices.Equal(second.PriceConflicts, []string{"S1: first price stands"}) {
		t.Fatalf("second: %+v", second)
	}
	want := []string{"resolve", "purchase " + firstID, "price S1",
		"resolve", "purchase " + secondID, "annotate " + firstID + " duplicate_merged dup/" + secondID, "read " + secondID,
		"price S1", "annotate " + secondID + " price_conflict price/S1"}
	if !slices.Equal(grid.calls, want) {
		t.Fatalf("calls\n %q\nwant\n %q", grid.calls, want)
	}
	// The merge went as an event of the batched path, after the order's creation.
	if got := c.batches[len(c.batches)-1]; !slices.Equal(got, []string{secondID}) || len(c.batches) != 3 {
		t.Fatalf("batches %v", c.batches)
	}
}

// A failed grid call is a StepError naming what it was about; a refused
// creation stops the workflow before anything else is written.
func TestChannelFlowFailures(t *testing.T) {
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}, failOn: "price"}
	c := &recordingCreator{}
	f := NewChannelFlow(New(c, Options{}), grid, channelOptions())
	_, err := f.Take(context.Background(), channelOrder("douyin", "D2", "1.00"))
	var step *StepError
	if !errors.As(err, &step) || step.What != "sku" || step.ID != "S1" {
		t.Fatalf("err %v", err)
	}

	order := channelOrder("douyin", "D3", "1.00")
	refusing := &refusingCreator{}
	grid.calls, grid.failOn = nil, ""
	f = NewChannelFlow(New(refusing, Options{}), grid, channelOptions())
	res, err := f.Take(context.Background(), order)
	if err != nil || res.Created.Outcome != gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK || res.Order != nil {
		t.Fatalf("refused: %+v %v", res, err)
	}
	if !slices.Equal(grid.calls, []string{"resolve"}) {
		t.Fatalf("calls after a refusal: %q", grid.calls)
	}
}

type refusingCreator struct{ recordingCreator }

func (c *refusingCreator) CreateBatch(_ context.Context, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer {
	out := make([]actors.BatchAnswer, len(orders))
	for i := range orders {
		out[i].Response = &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK, Sku: "S1"}
	}
	return out
}

// A push is shaped into the order it creates (masked receiver fields
// opened, the channel's fields kept, its discounts, tax and shipping the
// order's adjustments, the customer a
// placeholder) and checked before anything is written: a refused push
// writes nothing and answers the check's error.
func TestChannelFlowShapesAndChecksFirst(t *testing.T) {
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}}
	c := &recordingCreator{}
	opts := channelOptions()
	opts.Decrypter = unmasking{}
	f := NewChannelFlow(New(c, Options{}), grid, opts)
	in := channelOrder("douyin", "D9", "5.00")
	in.Connection = &channels.Connection{Channel: "douyin", Name: "flagship"}
	in.Mapped.Masked = true
	in.Mapped.Request.Customer = &pb.Customer{Name: "张*"}
	in.Mapped.Extra = map[string]string{"shop": "flagship"}
	in.Mapped.Discounts = []channels.Discount{{Amount: "2.00", FundedBy: "platform", Kind: "coupon", Line: -1},
		{Amount: "0.50", FundedBy: "shop", Kind: "promotion", Line: 0}}
	in.Mapped.Charges = []channels.Charge{{Kind: "shipping", Amount: "6.00", Line: -1, Title: "post_amount"}, {Kind: "tax", Amount: "0.45", Line: 0, Title: "VAT"}}
	in.Mapped.PlacedAt = time.Date(2026, 11, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	refusal := errors.New("refused")
	var checked *pb.CreateOrderRequest
	in.Check = func(req *pb.CreateOrderRequest) error { checked = req; return refusal }
	if _, err := f.Take(context.Background(), in); !errors.Is(err, refusal) {
		t.Fatalf("err %v, want the check's", err)
	}
	if len(grid.calls) != 0 || len(c.batches) != 0 {
		t.Fatalf("a refused push wrote: calls %q, batches %v", grid.calls, c.batches)
	}
	if checked.Customer.GetId() != UnresolvedCustomer || checked.Customer.GetName() != "张三" {
		t.Fatalf("customer %+v", checked.Customer)
	}
	want := map[string]string{"shop": "flagship",
		"buyer_id_sha256": checked.ChannelFields["buyer_id_sha256"], "placed_at": "2026-11-01T00:00:00Z"}
	if len(checked.ChannelFields["buyer_id_sha256"]) != 16 || !maps.Equal(checked.ChannelFields, want) {
		t.Fatalf("channel fields %v", checked.ChannelFields)
	}
	wantAdj := []*pb.Adjustment{
		{Kind: "discount", Amount: "2.00", Line: 0, FundedBy: "platform", Detail: "coupon"},
		{Kind: "discount", Amount: "0.50", Line: 1, FundedBy: "shop", Detail: "promotion"},
		{Kind: "shipping", Amount: "6.00", Line: 0, Detail: "post_amount"},
		{Kind: "tax", Amount: "0.45", Line: 1, Detail: "VAT"},
	}
	if !slices.EqualFunc(checked.Adjustments, wantAdj, func(a, b *pb.Adjustment) bool { return proto.Equal(a, b) }) {
		t.Fatalf("adjustments %v", checked.Adjustments)
	}

	in.Check = func(*pb.CreateOrderRequest) error { return nil }
	res, err := f.Take(context.Background(), in)
	if err != nil || res.Request.Customer.GetId() != "cu_1" || res.CustomerID != "cu_1" {
		t.Fatalf("taken: %+v %v", res, err)
	}
}

// unmasking opens every masked receiver name.
type unmasking struct{}

func (unmasking) Decrypt(_ context.Context, _ *channels.Connection, m *channels.Mapped) error {
	m.Request.Customer.Name = "张三"
	return nil
}

// failingDecrypter fails every call with err.
type failingDecrypter struct{ err error }

func (d failingDecrypter) Decrypt(context.Context, *channels.Connection, *channels.Mapped) error {
	return d.err
}

// A decryption failure the caller deems worth a retry stops the workflow
// before anything is written; another keeps the masked fields.
func TestChannelFlowDecryptFailures(t *testing.T) {
	busy := errors.New("platform busy")
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}}
	c := &recordingCreator{}
	opts := channelOptions()
	opts.Decrypter = failingDecrypter{err: busy}
	opts.Logger = slog.New(slog.DiscardHandler)
	f := NewChannelFlow(New(c, Options{}), grid, opts)
	in := channelOrder("douyin", "D10", "5.00")
	in.Connection = &channels.Connection{Channel: "douyin", Name: "flagship"}
	in.Mapped.Masked = true
	in.Mapped.Request.Customer = &pb.Customer{Name: "张*"}
	in.DecryptRetry = func(err error) bool { return errors.Is(err, busy) }
	_, err := f.Take(context.Background(), in)
	var step *StepError
	if !errors.As(err, &step) || step.What != "receiver" || !errors.Is(err, busy) || len(grid.calls) != 0 || len(c.batches) != 0 {
		t.Fatalf("retryable decryption failure: %v, calls %q, batches %v", err, grid.calls, c.batches)
	}
	in.DecryptRetry = func(error) bool { return false }
	res, err := f.Take(context.Background(), in)
	if err != nil || res.Request.Customer.GetName() != "张*" {
		t.Fatalf("kept masked: %+v %v", res, err)
	}
}

// An order the platform says is paid is taken as paid: a "paid" event
// through the batched events right after its creation, the answer the
// order as it then is; an unpaid one is left to be paid.
func TestChannelFlowTakesPaidOrdersAsPaid(t *testing.T) {
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}}
	c := &recordingCreator{}
	f := NewChannelFlow(New(c, Options{}), grid, channelOptions())
	in := channelOrder("douyin", "D11", "5.00")
	in.Mapped.PaidAt = time.Date(2026, 11, 11, 9, 30, 0, 0, time.UTC)
	res, err := f.Take(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	id := OrderID(res.Request)
	if len(c.batches) != 2 || !slices.Equal(c.batches[1], []string{id}) || !slices.Contains(grid.calls, "read "+id) {
		t.Fatalf("batches %v, calls %q: want the creation, then the paid event", c.batches, grid.calls)
	}
	unpaid := channelOrder("douyin", "D12", "5.00")
	if _, err := f.Take(context.Background(), unpaid); err != nil {
		t.Fatal(err)
	}
	if len(c.batches) != 3 {
		t.Fatalf("an unpaid order had an event: batches %v", c.batches)
	}
}

// An order cancelled at the platform before the grid took it is not
// created: nothing is reserved or recorded.
func TestChannelFlowSkipsOrdersCancelledBeforeTaken(t *testing.T) {
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}, absent: true}
	c := &recordingCreator{}
	f := NewChannelFlow(New(c, Options{}), grid, channelOptions())
	in := channelOrder("douyin", "D13", "5.00")
	in.Mapped.Cancelled = true
	res, err := f.Take(context.Background(), in)
	if err != nil || res.Skipped == "" || res.Created != nil || len(c.batches) != 0 {
		t.Fatalf("cancelled before taken: %+v %v, batches %v", res, err, c.batches)
	}
	if !slices.Equal(grid.calls, []string{"read " + OrderID(res.Request)}) {
		t.Fatalf("calls %q", grid.calls)
	}
}
