package intake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Partitions is what ChannelStore needs of the grid: the partition that
// owns a key and every partition (actors.Node in a node).
type Partitions interface {
	PartitionOf(key string) actors.Partition
	Partitions() []actors.Partition
}

// ChannelStore is the ChannelGrid of a node: the channel workflow's
// records (customer fingerprints, purchases, channel prices, order
// annotations), each one command to the partition that owns it, judged
// there like every other. Every call is idempotent.
type ChannelStore struct {
	grid Partitions
}

var _ ChannelGrid = (*ChannelStore)(nil)

// NewChannelStore returns the records of the channel workflow over grid.
func NewChannelStore(grid Partitions) *ChannelStore { return &ChannelStore{grid: grid} }

// ResolveCustomer finds the customer behind fingerprints (strongest
// first): the customer any of them is linked to, else a new one named by
// the strongest; then links every fingerprint not linked yet to it. Two
// orders of a new customer at once name the same customer: the id comes
// from the fingerprint, and the first link wins.
func (s *ChannelStore) ResolveCustomer(ctx context.Context, keys []channels.IdentityKey) (string, error) {
	if len(keys) == 0 {
		return "", errors.New("intake: no fingerprint to resolve a customer by")
	}
	customer := ""
	linked := make([]bool, len(keys))
	for i, k := range keys {
		p := s.grid.PartitionOf(actors.IdentityKey(k.Hash))
		owner, ok, err := statemachine.ReadIdentity(p.Reader(), p.Prefix(), k.Hash)
		if err != nil {
			return "", err
		}
		if ok {
			linked[i] = true
			if customer == "" {
				customer = owner
			}
		}
	}
	if customer == "" {
		customer = channels.CustomerID(keys[0])
	}
	for i, k := range keys {
		if linked[i] {
			continue
		}
		res, err := s.grid.PartitionOf(actors.IdentityKey(k.Hash)).Propose(ctx, "system:identity", &gridpb.Command{Kind: &gridpb.Command_LinkIdentity{
			LinkIdentity: &gridpb.LinkIdentityCommand{KeyHash: k.Hash, Customer: customer}}})
		if err != nil {
			return "", err
		}
		if i == 0 && res.Detail != customer {
			customer = res.Detail // another order linked the strongest fingerprint first
		}
		if res.Detail == customer {
			if _, err := s.grid.PartitionOf(actors.SubjectKey(customer)).Propose(ctx, "system:identity", &gridpb.Command{Kind: &gridpb.Command_RememberIdentity{
				RememberIdentity: &gridpb.RememberIdentityCommand{Customer: customer, KeyHash: k.Hash}}}); err != nil {
				return "", err
			}
		}
	}
	return customer, nil
}

// NotePurchase records a customer's purchase and answers it with its
// duplicate verdict (the first verdict, for a retry).
func (s *ChannelStore) NotePurchase(ctx context.Context, customer string, p *gridpb.PurchaseRecord, window time.Duration) (*gridpb.PurchaseRecord, error) {
	slices.Sort(p.Skus)
	p.Skus = slices.Compact(p.Skus)
	res, err := s.grid.PartitionOf(actors.SubjectKey(customer)).Propose(ctx, "system:merge", &gridpb.Command{Kind: &gridpb.Command_NotePurchase{
		NotePurchase: &gridpb.NotePurchaseCommand{Customer: customer, Purchase: p, WindowNanos: window.Nanoseconds()}}})
	if err != nil {
		return nil, err
	}
	if res.Purchase == nil {
		return nil, fmt.Errorf("intake: note purchase: %s %s", res.Outcome, res.Detail)
	}
	return res.Purchase, nil
}

// NotePrice records a channel's price of a SKU and answers the conflict it
// makes with another channel's recent price, if any.
func (s *ChannelStore) NotePrice(ctx context.Context, sku string, p *gridpb.ChannelPrice, window time.Duration, rule string) (*gridpb.PriceConflictRecord, error) {
	res, err := s.grid.PartitionOf(actors.SkuKey(sku)).Propose(ctx, "system:prices", &gridpb.Command{Kind: &gridpb.Command_NotePrice{
		NotePrice: &gridpb.NotePriceCommand{Sku: sku, Price: p, WindowNanos: window.Nanoseconds(), Rule: rule}}})
	if err != nil {
		return nil, err
	}
	return res.Conflict, nil
}

// AnnotateOrder adds an event to an order, once per dedupe key.
func (s *ChannelStore) AnnotateOrder(ctx context.Context, id, typ string, details map[string]string, dedupe, principal string) error {
	res, err := s.grid.PartitionOf(actors.OrderKey(id)).Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_AnnotateOrder{
		AnnotateOrder: &gridpb.AnnotateOrderCommand{OrderId: id, Type: typ, Details: details, Dedupe: dedupe}}})
	if err != nil {
		return err
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_OK && res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		return failure.FromOutcome(res.Outcome, "annotating order "+id)
	}
	return nil
}

// ReadOrder reads an order's record on its partition's leader.
func (s *ChannelStore) ReadOrder(id string) (*gridpb.OrderRecord, bool, error) {
	p := s.grid.PartitionOf(actors.OrderKey(id))
	return statemachine.ReadOrder(p.Reader(), p.Prefix(), id)
}

// PriceConflictsMax bounds one listing of price conflicts.
const PriceConflictsMax = 1000

// PriceConflicts returns the newest price conflicts of every partition,
// newest first, at most limit (1..PriceConflictsMax).
func (s *ChannelStore) PriceConflicts(limit int) ([]*gridpb.PriceConflictRecord, error) {
	limit = min(max(limit, 1), PriceConflictsMax)
	var out []*gridpb.PriceConflictRecord
	for _, p := range s.grid.Partitions() {
		got, err := statemachine.PriceConflicts(p.Reader(), p.Prefix(), limit)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	slices.SortFunc(out, func(a, b *gridpb.PriceConflictRecord) int { return cmp.Compare(b.AtUnixNano, a.AtUnixNano) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
