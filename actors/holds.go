package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// HoldsPageMax bounds the holds one Holds call returns.
const HoldsPageMax = 500

// Holds returns up to limit (at most HoldsPageMax) of the orders held at
// intake and not decided (of reason, when not empty), oldest hold first,
// after the hold (afterAt, afterID); read from this node's replicas (as
// fresh as they have applied).
func (n *Node) Holds(reason string, afterAt int64, afterID string, limit int) ([]*gridpb.OrderRecord, error) {
	limit = min(max(limit, 1), HoldsPageMax)
	var all []statemachine.HeldOrder
	for _, m := range n.parts.machines() {
		all = append(all, m.Holds(reason, afterAt, afterID, limit)...)
	}
	slices.SortFunc(all, func(a, b statemachine.HeldOrder) int {
		return cmp.Or(cmp.Compare(a.HeldAt, b.HeldAt), strings.Compare(a.ID, b.ID))
	})
	out := make([]*gridpb.OrderRecord, 0, min(len(all), limit))
	r := n.parts.localReader()
	for _, h := range all {
		if len(out) == limit {
			break
		}
		o, ok, err := statemachine.ReadOrder(r, n.orderPartition(h.ID).Prefix, h.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// HoldCounts counts the undecided holds by reason over this node's replicas.
func (n *Node) HoldCounts() map[string]int64 {
	out := map[string]int64{}
	for _, m := range n.parts.machines() {
		for reason, c := range m.HoldCounts() {
			out[reason] += int64(c)
		}
	}
	return out
}

// DecideHold records a reviewer's decision on a held order (release:
// to pending payment, with a fresh payment window; cancel: its stock
// released) and carries out the stock action it owes.
func (n *Node) DecideHold(ctx context.Context, principal, id, decision, reason string) (*gridpb.OrderGrainResponse, error) {
	part := n.orderPartition(id)
	payBy := n.now().Add(n.opts.PendingTimeout).UnixNano()
	if decision == statemachine.DecisionRelease {
		// The fresh payment window must not outlast the order's
		// reservations (a duplicate's were made for its first window):
		// each waits for the window and the orphan grace first.
		if err := n.extendFor(id, part, payBy+n.opts.OrphanGrace.Nanoseconds(), principal); err != nil {
			return nil, fmt.Errorf("deciding the hold of %s: %w", id, err)
		}
	}
	res, err := n.propose(ctx, part, principal, &gridpb.Command{Kind: &gridpb.Command_DecideHold{DecideHold: &gridpb.DecideHoldCommand{
		OrderId: id, Decision: decision, Reason: reason, PayByUnixNano: payBy}}})
	if err != nil {
		return nil, fmt.Errorf("deciding the hold of %s: %w", id, err)
	}
	answer := &gridpb.OrderGrainResponse{Outcome: res.Outcome, Order: res.Order, Detail: res.Detail}
	if res.Outcome == gridpb.Outcome_OUTCOME_OK {
		n.metrics.decisions.WithLabelValues(decision).Inc()
	}
	if res.Outcome == gridpb.Outcome_OUTCOME_OK && res.Order.GetStockAction() != "" {
		reqs := []*gridpb.OrderEventGrainRequest{{Principal: principal, Event: &pb.OrderEventRequest{Id: id}}}
		synced, err := n.syncStockBatch(part, reqs, []int{0}, []*gridpb.ApplyResult{res})
		if err != nil {
			// Owed and recorded: the sweeper finishes it. The decision stands.
			n.opts.Logger.Warn("stock action owed after a hold decision", slog.String("order", id), slog.Any("error", err))
		} else if synced[0] != nil {
			answer.Order = synced[0]
		}
	}
	return answer, nil
}

// extendFor makes the pending reservations of a held order last until
// expires at least.
func (n *Node) extendFor(id string, part *partitionRef, expires int64, principal string) error {
	o, found, err := statemachine.ReadOrder(n.reader(part), part.Prefix, id)
	if err != nil || !found || o.Status != lifecycle.StatusOnHold {
		return err // the decision itself answers a missing or unheld order
	}
	where := map[string]string{}
	for _, l := range o.Lines {
		where[l.Sku] = l.Warehouse
	}
	skus := slices.Sorted(maps.Keys(where))
	errs := make([]error, len(skus))
	fanOut(len(skus), linesFanOutMax, func(i int) {
		errs[i] = retrySku(func() error {
			_, err := n.grains.reserve(&gridpb.ReserveRequest{Sku: skus[i], OrderId: id, Extend: true, HoldExpiresUnixNano: expires,
				Warehouse: where[skus[i]], Principal: principal})
			return err
		})
	})
	return errors.Join(errs...)
}
