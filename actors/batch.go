package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/screening"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The batched path of new orders. An intake batch (the orders of one order
// partition that queued while the previous batch was in flight) is routed
// in memory against one view of free stock, reserved with one ReserveMany
// message per SKU grain, sealed with cached subject keys (new subjects'
// keys made in one entry per subject partition), and recorded with one
// create_orders entry. No order grain is activated: an order's grain
// activates when the order is next addressed, and reads it from its
// partition. An order the batch cannot finish plainly (routing refuses
// it, or a routed warehouse turned out short) is handed, with nothing of
// this batch's reservations held for it, to its grain's Create, which
// routes again with fresher views and answers the refusal exactly as
// before.

// BatchAnswer is the outcome of one order of a batch: the grain's answer,
// or the error that kept it from one (the caller answers 503: a retry finds
// what was committed).
type BatchAnswer struct {
	Response *gridpb.OrderGrainResponse
	Err      error
}

// batchOrder is one order's state through CreateBatch.
type batchOrder struct {
	req      *gridpb.CreateOrderGrainRequest
	hash     []byte
	skus     []skuQty
	strategy *routing.Strategy
	order    *routing.Order
	decision *routing.Decision
	results  []*gridpb.ReserveResponse
	errs     []error
	personal *gridpb.PersonalFields
	record   *gridpb.OrderRecord
	// screen is what intake judged of it before reserving (screen.go).
	screen *screened
	// fallback: the order goes to its grain; done: answered.
	fallback bool
	done     bool
}

// batchInventory is the free stock one batch routes against: each SKU's
// view read once from the local replica, less what the batch's earlier
// orders were routed to take, and each warehouse's load plus their parcels.
type batchInventory struct {
	n     *Node
	free  map[string]map[string]int64
	loads map[int32]map[string]int64
	// total is each SKU's free stock when the batch first read it, and
	// taken what the batch's routed orders take of it (sale pressure).
	total, taken map[string]int64
}

func (inv *batchInventory) view(sku string) (map[string]int64, error) {
	if v, ok := inv.free[sku]; ok {
		return v, nil
	}
	p := inv.n.skuPartition(sku)
	names, free, err := statemachine.ReadFree(inv.n.parts.localReader(), p.Prefix, sku)
	if err != nil {
		return nil, err
	}
	v := make(map[string]int64, len(names))
	var total int64
	for i, name := range names {
		v[name] = free[i]
		total += free[i]
	}
	inv.free[sku] = v
	inv.total[sku] = total
	return v, nil
}

func (inv *batchInventory) Free(sku string) ([]string, []int64, error) {
	v, err := inv.view(sku)
	if err != nil {
		return nil, nil, err
	}
	names, free := routing.SortedFree(v)
	return names, free, nil
}

func (inv *batchInventory) Load(wh string, day int32) int64 {
	return inv.n.load(wh, day) + inv.loads[day][wh]
}

// take records a routed order's lines and parcels in the batch's view.
func (inv *batchInventory) take(skus []skuQty, d *routing.Decision) {
	for i, s := range skus {
		inv.taken[s.sku] += s.qty
		if v, ok := inv.free[s.sku]; ok {
			v[d.Warehouses[i]] = max(0, v[d.Warehouses[i]]-s.qty)
		}
	}
	for _, sh := range d.Shipments {
		if inv.loads[sh.ShipDay] == nil {
			inv.loads[sh.ShipDay] = map[string]int64{}
		}
		inv.loads[sh.ShipDay][sh.Warehouse]++
	}
}

// CreateBatch creates the orders of one intake batch. Every order must be
// of one order partition, each id once (the caller answers duplicates from
// the first). It answers one BatchAnswer per order, in order.
func (n *Node) CreateBatch(ctx context.Context, reqs []*gridpb.CreateOrderGrainRequest) []BatchAnswer {
	answers := make([]BatchAnswer, len(reqs))
	if len(reqs) == 0 {
		return answers
	}
	now := n.now()
	payBy := now.Add(n.opts.PendingTimeout).UnixNano()
	expires := payBy + n.opts.OrphanGrace.Nanoseconds()
	orders := make([]*batchOrder, len(reqs))
	part := n.orderPartition(reqs[0].OrderId)
	for i, req := range reqs {
		if p := n.orderPartition(req.OrderId); p != part {
			panic(fmt.Sprintf("actors: batch of partition %d holds order %s of partition %d", part.ID, req.OrderId, p.ID))
		}
		orders[i] = &batchOrder{req: req, hash: RequestHash(req.Request), skus: groupLines(req.Request.Lines),
			personal: personalFields(req.Request.Customer)}
	}

	// Route every order against one view, in arrival order.
	cat := n.Catalog()
	inv := &batchInventory{n: n, free: map[string]map[string]int64{}, loads: map[int32]map[string]int64{},
		total: map[string]int64{}, taken: map[string]int64{}}
	for i, o := range orders {
		strategy, arm := cat.StrategyFor(o.req.OrderId)
		o.strategy = strategy
		o.order = routingOrder(o.req.OrderId, o.req.Request, o.skus, now)
		d, err := routing.Decide(cat, strategy, arm, o.order, inv)
		if err != nil {
			answers[i] = BatchAnswer{Err: err}
			o.done = true
			continue
		}
		d.Record.Attempts = 1
		o.decision = d
		if d.Refusal != nil {
			// The grain takes it again on the SKU grains' own view, and
			// answers a retry of a recorded order with it.
			o.fallback = true
			continue
		}
		inv.take(o.skus, d)
	}

	// Screen the routed orders (address and risk), their history read
	// for the whole batch at once.
	var ins []*screenInput
	var qs []statemachine.HistoryQuery
	for _, o := range orders {
		if o.done || o.fallback {
			continue
		}
		in := n.screenOf(o.req.Request, o.decision.Warehouses, inv.pressure(o.skus))
		ins = append(ins, in)
		qs = append(qs, statemachine.HistoryQuery{Customer: o.req.Request.GetCustomer().GetId(), AddressKey: in.addressKey, DeviceKey: in.deviceKey})
	}
	if sc := n.opts.Screen; sc != nil && sc.Model() != nil && len(qs) > 0 {
		for k, h := range n.histories(qs, now) {
			ins[k].history = &h
		}
	}
	k := 0
	for i, o := range orders {
		if o.done || o.fallback {
			continue
		}
		o.screen = n.screen(ins[k], now)
		k++
		if o.screen.refused != nil {
			answers[i] = n.refusedAtIntake(part, o, o.screen.refused)
			o.done = true
		}
	}

	// The subjects' keys (cached, or made in batches per subject
	// partition) while the stock is reserved.
	var subjects []string
	for _, o := range orders {
		if !o.done && !o.fallback && o.personal != nil {
			subjects = append(subjects, o.req.Request.Customer.GetId())
		}
	}
	var keys map[string]*privacy.DataKey
	var keyErr error
	keysDone := make(chan struct{})
	go func() {
		defer close(keysDone)
		keys, keyErr = n.dataKeys(ctx, subjects)
	}()

	// Reserve: one ReserveMany per SKU grain.
	n.reserveBatch(orders, expires)
	for i, o := range orders {
		if o.done || o.fallback {
			continue
		}
		if err := errors.Join(o.errs...); err != nil {
			// Infrastructure failed: what was reserved stays pending for a
			// retry (or the orphan sweep).
			answers[i] = BatchAnswer{Err: fmt.Errorf("reserving: %w", err)}
			o.done = true
			continue
		}
		if refused := o.screen.limitAnswers(o.skus, o.results); refused != nil {
			// Past a purchase limit whose rule refuses: nothing of it stays.
			answers[i] = n.refusedAtIntake(part, o, refused)
			o.done = true
			continue
		}
		for _, res := range o.results {
			if res.Outcome != gridpb.Outcome_OUTCOME_OK && res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
				o.fallback = true
			}
		}
		if o.fallback {
			// A routed warehouse was short: free what this batch took for
			// the order, and let its grain route it again.
			n.releaseAll(o.req.OrderId, o.skus, o.results, o.req.Principal)
			continue
		}
		n.extendHeld(o.req.OrderId, o.screen, o.skus, o.results, o.req.Principal)
	}

	<-keysDone

	// Record: one create_orders entry for the orders left.
	var cmds []*gridpb.CreateOrderCommand
	for i, o := range orders {
		if o.done || o.fallback {
			continue
		}
		rec, err := n.batchRecord(o, keys, keyErr, payBy, now)
		if err != nil {
			if errors.Is(err, errBadTotal) {
				n.releaseAll(o.req.OrderId, o.skus, o.results, o.req.Principal) // every attempt fails alike
			}
			answers[i] = BatchAnswer{Err: err}
			o.done = true
			continue
		}
		o.record = rec
		cmds = append(cmds, &gridpb.CreateOrderCommand{Order: rec, Routing: o.decision.Record, Principal: o.req.Principal})
	}
	if len(cmds) > 0 {
		n.metrics.createBatch.Observe(float64(len(cmds)))
		res, err := n.propose(ctx, part, batchPrincipal(cmds, (*gridpb.CreateOrderCommand).GetPrincipal), &gridpb.Command{Kind: &gridpb.Command_CreateOrders{CreateOrders: &gridpb.CreateOrdersCommand{Orders: cmds}}})
		if err == nil && len(res.Results) != len(cmds) {
			err = internalErr(fmt.Errorf("create_orders answered %d results for %d orders: %s", len(res.Results), len(cmds), res.Detail))
		}
		at := 0
		for i, o := range orders {
			if o.record == nil {
				continue
			}
			if err != nil {
				// Not known to be recorded: the reservations stay pending and
				// the orphan sweep releases them unless a retry records the order first.
				answers[i] = BatchAnswer{Err: fmt.Errorf("recording order: %w", err)}
				at++
				continue
			}
			answers[i] = n.recorded(o, res.Results[at])
			at++
		}
	}

	// The orders the batch could not finish: their grains, at once.
	fanOut(len(orders), batchFallbackFanOutMax, func(i int) {
		o := orders[i]
		if !o.fallback {
			return
		}
		n.metrics.batchFallbacks.Inc()
		res, err := n.grains.createOrder(o.req)
		answers[i] = BatchAnswer{Response: res, Err: err}
	})
	return answers
}

// errBadTotal is an order whose total cannot be computed: every attempt fails alike.
var errBadTotal = errors.New("order total")

// batchFallbackFanOutMax bounds the grain calls of one batch's fallbacks at once.
const batchFallbackFanOutMax = 64

// reserveBatch sends each SKU's reservations of the batch to its grain in
// one ReserveMany, the SKUs at once.
func (n *Node) reserveBatch(orders []*batchOrder, expires int64) {
	type slot struct{ order, line int }
	bySku := map[string][]slot{}
	var skus []string
	for i, o := range orders {
		if o.done || o.fallback {
			continue
		}
		o.results = make([]*gridpb.ReserveResponse, len(o.skus))
		o.errs = make([]error, len(o.skus))
		for j, s := range o.skus {
			if _, ok := bySku[s.sku]; !ok {
				skus = append(skus, s.sku)
			}
			bySku[s.sku] = append(bySku[s.sku], slot{i, j})
		}
	}
	fanOut(len(skus), linesFanOutMax, func(k int) {
		sku := skus[k]
		slots := bySku[sku]
		req := &gridpb.ReserveManyRequest{Items: make([]*gridpb.ReserveRequest, len(slots))}
		for m, sl := range slots {
			o := orders[sl.order]
			req.Items[m] = &gridpb.ReserveRequest{Sku: sku, OrderId: o.req.OrderId, Qty: o.skus[sl.line].qty,
				ExpiresUnixNano: o.screen.expiry(expires), Principal: o.req.Principal, Warehouse: o.decision.Warehouses[sl.line],
				Buyer: o.screen.limitBuyer(), HoldExpiresUnixNano: o.screen.holdExpiry()}
		}
		var res *gridpb.ReserveManyResponse
		err := retrySku(func() (err error) {
			res, err = n.grains.reserveMany(sku, req)
			if err == nil && len(res.Items) != len(slots) {
				err = fmt.Errorf("sku %s answered %d reservations for %d", sku, len(res.Items), len(slots))
			}
			return err
		})
		for m, sl := range slots {
			o := orders[sl.order]
			if err != nil {
				o.errs[sl.line] = err
				continue
			}
			o.results[sl.line] = res.Items[m]
		}
	})
}

// batchRecord is the record of an order whose every line is reserved.
func (n *Node) batchRecord(o *batchOrder, keys map[string]*privacy.DataKey, keyErr error, payBy int64, now time.Time) (*gridpb.OrderRecord, error) {
	rq := o.req.Request
	r := &routed{strategy: o.strategy, order: o.order, decision: o.decision, results: o.results}
	rec, err := r.record(o.req.OrderId, rq, o.skus, o.hash, payBy, n.Catalog(), now)
	if err != nil {
		return nil, err
	}
	n.mark(rec, o.screen, now)
	if o.personal == nil {
		return rec, nil
	}
	subject := rq.Customer.GetId()
	if subject == "" {
		return nil, internalErr(errors.New("personal fields without a customer id"))
	}
	if keyErr != nil {
		return nil, fmt.Errorf("sealing personal fields: %w", keyErr) // reservations stay, as in the grain
	}
	if rec.Personal, err = sealWith(keys[subject], rec.Id, o.personal); err != nil {
		return nil, fmt.Errorf("sealing personal fields: %w", err)
	}
	return rec, nil
}

// recorded answers one order of a create_orders result.
func (n *Node) recorded(o *batchOrder, res *gridpb.ApplyResult) BatchAnswer {
	switch {
	case res.Outcome == gridpb.Outcome_OUTCOME_OK:
		n.counted(o.record.Shipments)
		n.metrics.routed.WithLabelValues(o.decision.Record.Arm).Inc()
		return BatchAnswer{Response: &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK, Order: res.Order}}
	case res.Order != nil: // recorded before (a retry, or a different request under the same key)
		n.releaseNotOf(o.req.OrderId, res.Order, o.skus, o.results, o.req.Principal)
		return BatchAnswer{Response: replayOrConflict(res.Order, o.hash)}
	default: // refused: nothing recorded
		return BatchAnswer{Err: fmt.Errorf("recording order: refused: %s %s", res.Outcome, res.Detail)}
	}
}

// OrderPartition is the index of an order's partition: the orders of one
// intake batch share it.
func (n *Node) OrderPartition(id string) uint32 { return n.orderPartition(id).ID }

// pressure is how much of the free stock of the hottest of skus the
// batch's routed orders take (the risk feature sku_pressure).
func (inv *batchInventory) pressure(skus []skuQty) float64 {
	var p float64
	for _, s := range skus {
		p = max(p, float64(inv.taken[s.sku])/float64(max(inv.total[s.sku], 1)))
	}
	return p
}

// refusedAtIntake answers an order refused at intake, unless it is
// recorded already (a retry of an order accepted before: the record is
// the answer); what this batch reserved for it and the record does not
// hold is released first.
func (n *Node) refusedAtIntake(p *partitionRef, o *batchOrder, refused *gridpb.OrderGrainResponse) BatchAnswer {
	id := o.req.OrderId
	prev, found, err := statemachine.ReadOrder(n.reader(p), p.Prefix, id)
	if err != nil {
		// Unknown: what was reserved stays pending for a retry (or the orphan sweep).
		return BatchAnswer{Err: fmt.Errorf("reading order %s: %w", id, err)}
	}
	if o.results != nil {
		if found {
			n.releaseNotOf(id, prev, o.skus, o.results, o.req.Principal)
		} else {
			n.releaseAll(id, o.skus, o.results, o.req.Principal)
		}
	}
	if found {
		return BatchAnswer{Response: replayOrConflict(prev, o.hash)}
	}
	n.metrics.screened.WithLabelValues("refuse", refusalReason(refused)).Inc()
	return BatchAnswer{Response: refused}
}

// refusalReason is the reason of a refusal at intake (limit, address, risk).
func refusalReason(r *gridpb.OrderGrainResponse) string {
	if r.Outcome == gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED {
		return statemachine.HoldLimit
	}
	for _, f := range r.Findings {
		if f.Code == screening.CodeRiskScore {
			return statemachine.HoldRisk
		}
	}
	return statemachine.HoldAddress
}
