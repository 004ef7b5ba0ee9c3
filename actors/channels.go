package actors

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

func (n *Node) proposeIn(ctx context.Context, key, principal string, cmd *pb.Command) (*statemachine.Result, error) {
	return n.propose(ctx, n.host.PartitionOf(key), principal, cmd)
}

// ResolveCustomer finds the customer behind fingerprints (strongest
// first): the customer any of them is linked to, else a new one named by
// the strongest; then links every fingerprint not linked yet to it. Two
// orders of a new customer at once name the same customer: the id comes
// from the fingerprint, and the first link wins.
func (n *Node) ResolveCustomer(ctx context.Context, keys []channels.IdentityKey) (string, error) {
	if len(keys) == 0 {
		return "", fmt.Errorf("actors: no fingerprint to resolve a customer by")
	}
	customer := ""
	linked := make([]bool, len(keys))
	for i, k := range keys {
		p := n.host.PartitionOf("identity/" + k.Hash)
		owner, ok, err := statemachine.ReadIdentity(n.reader(p), p.Prefix, k.Hash)
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
		res, err := n.proposeIn(ctx, "identity/"+k.Hash, "system:identity", &pb.Command{Kind: &pb.Command_LinkIdentity{
			LinkIdentity: &pb.LinkIdentityCommand{KeyHash: k.Hash, Customer: customer}}})
		if err != nil {
			return "", err
		}
		if i == 0 && res.Detail != customer {
			customer = res.Detail // another order linked the strongest fingerprint first
		}
		if res.Detail == customer {
			if _, err := n.propose(ctx, n.subjectPartition(customer), "system:identity", &pb.Command{Kind: &pb.Command_RememberIdentity{
				RememberIdentity: &pb.RememberIdentityCommand{Customer: customer, KeyHash: k.Hash}}}); err != nil {
				return "", err
			}
		}
	}
	return customer, nil
}

// unlinkIdentities removes every fingerprint's link to a customer: the
// first step of its erasure (the erasure then forgets the list).
func (n *Node) unlinkIdentities(ctx context.Context, customer string) error {
	sp := n.subjectPartition(customer)
	hashes, err := statemachine.IdentityHashes(n.reader(sp), sp.Prefix, customer)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := n.proposeIn(ctx, "identity/"+h, "system:erasure", &pb.Command{Kind: &pb.Command_UnlinkIdentity{
			UnlinkIdentity: &pb.UnlinkIdentityCommand{KeyHash: h, Customer: customer}}}); err != nil {
			return err
		}
	}
	return nil
}

// NotePurchase records a customer's purchase and answers it with its
// duplicate verdict (the first verdict, for a retry).
func (n *Node) NotePurchase(ctx context.Context, customer string, p *pb.PurchaseRecord, window time.Duration) (*pb.PurchaseRecord, error) {
	slices.Sort(p.Skus)
	p.Skus = slices.Compact(p.Skus)
	res, err := n.propose(ctx, n.subjectPartition(customer), "system:merge", &pb.Command{Kind: &pb.Command_NotePurchase{
		NotePurchase: &pb.NotePurchaseCommand{Customer: customer, Purchase: p, WindowNanos: window.Nanoseconds()}}})
	if err != nil {
		return nil, err
	}
	if res.Purchase == nil {
		return nil, fmt.Errorf("actors: note purchase: %s %s", res.Outcome, res.Detail)
	}
	return res.Purchase, nil
}

// NotePrice records a channel's price of a SKU and answers the conflict it
// makes with another channel's recent price, if any.
func (n *Node) NotePrice(ctx context.Context, sku string, p *pb.ChannelPrice, window time.Duration, rule string) (*pb.PriceConflictRecord, error) {
	res, err := n.propose(ctx, n.skuPartition(sku), "system:prices", &pb.Command{Kind: &pb.Command_NotePrice{
		NotePrice: &pb.NotePriceCommand{Sku: sku, Price: p, WindowNanos: window.Nanoseconds(), Rule: rule}}})
	if err != nil {
		return nil, err
	}
	return res.Conflict, nil
}

// AnnotateOrder adds an event to an order, once per dedupe key.
func (n *Node) AnnotateOrder(ctx context.Context, id, typ string, details map[string]string, dedupe, principal string) error {
	res, err := n.propose(ctx, n.orderPartition(id), principal, &pb.Command{Kind: &pb.Command_AnnotateOrder{
		AnnotateOrder: &pb.AnnotateOrderCommand{OrderId: id, Type: typ, Details: details, Dedupe: dedupe}}})
	if err != nil {
		return err
	}
	if res.Outcome != pb.Outcome_OUTCOME_OK && res.Outcome != pb.Outcome_OUTCOME_REPLAYED {
		return outcomeErr(res.Outcome, "annotating order "+id)
	}
	return nil
}

// PriceConflictsMax bounds one listing of price conflicts.
const PriceConflictsMax = 1000

// PriceConflicts returns the newest price conflicts of every partition.
func (n *Node) PriceConflicts(limit int) ([]*pb.PriceConflictRecord, error) {
	limit = min(max(limit, 1), PriceConflictsMax)
	var out []*pb.PriceConflictRecord
	for _, p := range n.host.Partitions() {
		got, err := statemachine.PriceConflicts(n.reader(p), p.Prefix, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	slices.SortFunc(out, func(a, b *pb.PriceConflictRecord) int { return cmp.Compare(b.AtUnixNano, a.AtUnixNano) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
