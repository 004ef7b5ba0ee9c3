package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/batching"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// The batched path of order events (pay, pick, pack, ship, cancel, ...).
// The events of one intake batch (one order partition's queue) are judged
// by one transitions entry; the stock actions they owe go to each SKU's
// grain in one SettleMany (one settle_batch entry per SKU); then the
// events are answered, and stock_synced_batch entries (batched across
// event batches) record the actions done. An action that fails stays owed
// and recorded, and the sweeper finishes it, as for a single event.

// TransitionBatch records the events of one batch, all of one order
// partition, in order (two events of one order apply one after the
// other). It answers one BatchAnswer per event.
func (n *Node) TransitionBatch(ctx context.Context, reqs []*gridpb.OrderEventGrainRequest) []BatchAnswer {
	answers := make([]BatchAnswer, len(reqs))
	if len(reqs) == 0 {
		return answers
	}
	part := n.orderPartition(reqs[0].Event.GetId())
	cmd := &gridpb.TransitionsCommand{Transitions: make([]*gridpb.TransitionCommand, len(reqs))}
	for i, req := range reqs {
		ev := req.Event
		if p := n.orderPartition(ev.GetId()); p != part {
			panic(fmt.Sprintf("actors: batch of partition %d holds order %s of partition %d", part.ID, ev.GetId(), p.ID))
		}
		cmd.Transitions[i] = &gridpb.TransitionCommand{OrderId: ev.Id, Type: ev.Type, Details: eventDetails(ev), Principal: req.Principal}
	}
	n.metrics.transitionBatch.Observe(float64(len(reqs)))
	res, err := n.propose(ctx, part, batchPrincipal(cmd.Transitions, (*gridpb.TransitionCommand).GetPrincipal), &gridpb.Command{Kind: &gridpb.Command_Transitions{Transitions: cmd}})
	if err == nil && len(res.Results) != len(reqs) {
		err = fmt.Errorf("transitions answered %d results for %d events: %s", len(res.Results), len(reqs), res.Detail)
	}
	if err != nil {
		for i := range answers {
			answers[i] = BatchAnswer{Err: err}
		}
		return answers
	}
	// The orders that owe a stock action after the batch: each order's last
	// result holds what it owes in the end (a later event's action replaces
	// an earlier one's, as the sweeper would find it).
	last := map[string]int{}
	for i, r := range res.Results {
		answers[i] = BatchAnswer{Response: &gridpb.OrderGrainResponse{Outcome: r.Outcome, Order: r.Order, Detail: r.Detail}}
		if r.Order != nil {
			last[r.Order.Id] = i
		}
	}
	var owing []int
	for i, r := range res.Results {
		if r.Order != nil && r.Order.StockAction != "" && last[r.Order.Id] == i {
			owing = append(owing, i)
		}
	}
	if len(owing) == 0 {
		return answers
	}
	synced, err := n.syncStockBatch(part, reqs, owing, res.Results)
	if err != nil {
		// Owed and recorded: the sweeper finishes them. The transitions stand.
		n.opts.Logger.Warn("stock actions owed", slog.Int("orders", len(owing)), slog.Any("error", err))
		return answers
	}
	for k, i := range owing {
		if synced[k] != nil {
			answers[i].Response.Order = synced[k]
		}
	}
	return answers
}

// syncStockBatch carries out the stock actions the orders at owing owe:
// one SettleMany per SKU. It answers each order as synced (nil where its
// action stays owed).
func (n *Node) syncStockBatch(part *partitionRef, reqs []*gridpb.OrderEventGrainRequest, owing []int, results []*gridpb.ApplyResult) ([]*gridpb.OrderRecord, error) {
	bySku := map[string][]int{} // sku -> places in owing
	var skus []string
	for k, i := range owing {
		seen := map[string]bool{}
		for _, l := range results[i].Order.Lines {
			if seen[l.Sku] {
				continue
			}
			seen[l.Sku] = true
			if _, ok := bySku[l.Sku]; !ok {
				skus = append(skus, l.Sku)
			}
			bySku[l.Sku] = append(bySku[l.Sku], k)
		}
	}
	failed := make([]bool, len(owing))
	var mu sync.Mutex
	fanOut(len(skus), linesFanOutMax, func(j int) {
		sku := skus[j]
		ks := bySku[sku]
		req := &gridpb.SettleManyRequest{Items: make([]*gridpb.SettleRequest, len(ks))}
		for m, k := range ks {
			o := results[owing[k]].Order
			req.Items[m] = &gridpb.SettleRequest{Sku: sku, OrderId: o.Id, Action: o.StockAction, Principal: reqs[owing[k]].Principal}
		}
		var res *gridpb.SettleManyResponse
		err := retrySku(func() (err error) {
			res, err = n.grains.settleMany(sku, req)
			if err == nil && len(res.Items) != len(ks) {
				err = fmt.Errorf("sku %s answered %d settles for %d", sku, len(res.Items), len(ks))
			}
			return err
		})
		mu.Lock()
		defer mu.Unlock()
		for m, k := range ks {
			switch {
			case err != nil:
				failed[k] = true
			case res.Items[m].Outcome != gridpb.Outcome_OUTCOME_OK:
				// The state machine refused (e.g. a reservation swept long
				// ago): nothing a retry can change; recorded and moved on.
				n.opts.Logger.Error("stock action refused", slog.String("sku", sku), slog.String("order", req.Items[m].OrderId),
					slog.String("action", req.Items[m].Action), slog.String("outcome", res.Items[m].Outcome.String()))
			}
		}
		if err != nil {
			n.opts.Logger.Warn("stock actions owed", slog.String("sku", sku), slog.Int("orders", len(ks)), slog.Any("error", err))
		}
	})
	// The actions are done: the answers say so at once, and the marks
	// that they are no longer owed go into the partition's next
	// stock_synced_batch entry, batched with other batches' marks, off the
	// answer's path. A mark lost with a node leaves the action owed: the
	// sweeper carries it out again (settling is idempotent) and marks it.
	out := make([]*gridpb.OrderRecord, len(owing))
	for k, i := range owing {
		if failed[k] {
			continue
		}
		o := results[i].Order
		if _, err := n.syncedBatching.Submit(part.ID, syncedMark{p: part, principal: reqs[i].Principal,
			cmd: &gridpb.StockSyncedCommand{OrderId: o.Id, Version: o.Version, Action: o.StockAction}}); err != nil {
			n.opts.Logger.Warn("stock action left owed", slog.String("order", o.Id), slog.Any("error", err))
			continue
		}
		synced := proto.Clone(o).(*gridpb.OrderRecord)
		synced.StockAction = ""
		out[k] = synced
	}
	return out, nil
}

// syncedMark marks one order's stock action carried out.
type syncedMark struct {
	p         *partitionRef
	principal string
	cmd       *gridpb.StockSyncedCommand
}

// newSyncedBatching batches the marks of carried-out stock actions per
// order partition, across event batches.
func (n *Node) newSyncedBatching() *batching.Coalescer[syncedMark, struct{}] {
	return batching.New(func(ctx context.Context, _ uint32, batch []syncedMark) ([]struct{}, error) {
		cmd := &gridpb.StockSyncedBatchCommand{Orders: make([]*gridpb.StockSyncedCommand, len(batch))}
		for i, m := range batch {
			cmd.Orders[i] = m.cmd
		}
		if _, err := n.propose(ctx, batch[0].p, batchPrincipal(batch, func(m syncedMark) string { return m.principal }), &gridpb.Command{Kind: &gridpb.Command_StockSyncedBatch{StockSyncedBatch: cmd}}); err != nil {
			n.opts.Logger.Warn("stock actions left owed for the sweeper", slog.Int("orders", len(batch)), slog.Any("error", err))
			return nil, err
		}
		return make([]struct{}, len(batch)), nil
	}, batching.Options{BatchItemsMax: syncedMarksBatchMax, BatchTimeout: n.opts.RequestTimeout})
}

// syncedMarksBatchMax caps the marks of one stock_synced_batch entry (the state machine takes 4,096).
const syncedMarksBatchMax = 4096

// eventDetails are an event's details as its transition records them.
func eventDetails(ev *pb.OrderEventRequest) map[string]string {
	details := map[string]string{}
	for k, v := range map[string]string{"carrier": ev.Carrier, "tracking_number": ev.TrackingNumber, "reason": ev.Reason} {
		if v != "" {
			details[k] = v
		}
	}
	return details
}
