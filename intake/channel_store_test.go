package intake

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/actors/memgrid"
	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

func fingerprint(kind, c string) channels.IdentityKey {
	return channels.IdentityKey{Kind: kind, Hash: strings.Repeat(c, 64)}
}

// The channel workflow's records on an in-memory grid: a buyer seen
// through any fingerprint is one customer, named by the first strongest
// fingerprint; a purchase of the same SKUs on another channel within the
// window is that purchase's duplicate; a second channel's different price
// is a conflict, listed; annotating an order that does not exist is its
// outcome.
func TestChannelStoreRecords(t *testing.T) {
	grid, err := memgrid.New(3)
	if err != nil {
		t.Fatal(err)
	}
	defer grid.Close()
	s := NewChannelStore(grid)
	ctx := context.Background()

	phone, device := fingerprint("phone", "a"), fingerprint("device", "b")
	first, err := s.ResolveCustomer(ctx, []channels.IdentityKey{phone})
	if err != nil || first != channels.CustomerID(phone) {
		t.Fatalf("first: %s %v", first, err)
	}
	again, err := s.ResolveCustomer(ctx, []channels.IdentityKey{device, phone})
	if err != nil || again != first {
		t.Fatalf("the same buyer through another fingerprint: %s, want %s (%v)", again, first, err)
	}
	if byDevice, err := s.ResolveCustomer(ctx, []channels.IdentityKey{device}); err != nil || byDevice != first {
		t.Fatalf("the new fingerprint is linked: %s %v", byDevice, err)
	}

	at := time.Now()
	noted, err := s.NotePurchase(ctx, first, &gridpb.PurchaseRecord{OrderId: "o_1", Channel: "douyin", Skus: []string{"S1", "S2", "S1"}, AtUnixNano: at.UnixNano()}, time.Hour)
	if err != nil || noted.DuplicateOf != "" {
		t.Fatalf("first purchase: %+v %v", noted, err)
	}
	noted, err = s.NotePurchase(ctx, first, &gridpb.PurchaseRecord{OrderId: "o_2", Channel: "tmall", Skus: []string{"S2", "S1"}, AtUnixNano: at.UnixNano()}, time.Hour)
	if err != nil || noted.DuplicateOf != "o_1" || noted.DuplicateChannel != "douyin" {
		t.Fatalf("duplicate: %+v %v", noted, err)
	}

	price := func(ch, order, p string) *gridpb.PriceConflictRecord {
		c, err := s.NotePrice(ctx, "S1", &gridpb.ChannelPrice{Channel: ch, UnitPrice: p, Currency: "CNY", OrderId: order, AtUnixNano: at.UnixNano()}, time.Hour, "transaction_time")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := price("douyin", "o_1", "10.00"); c != nil {
		t.Fatalf("a first price conflicts: %+v", c)
	}
	if c := price("tmall", "o_2", "12.00"); c == nil || c.Sku != "S1" {
		t.Fatalf("no conflict: %+v", c)
	}
	if cs, err := s.PriceConflicts(10); err != nil || len(cs) != 1 || cs[0].Second.OrderId != "o_2" {
		t.Fatalf("conflicts: %+v %v", cs, err)
	}

	err = s.AnnotateOrder(ctx, "o_missing", "price_conflict", map[string]string{"sku": "S1"}, "price/S1", "test")
	if failure.OutcomeOf(err) != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("annotating a missing order: %v", err)
	}
	if _, found, err := s.ReadOrder("o_missing"); err != nil || found {
		t.Fatalf("read a missing order: %v %v", found, err)
	}
}
