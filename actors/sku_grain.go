package actors

import (
	"errors"
	"fmt"
	"log/slog"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// skuGrain is the grain of one SKU. It keeps the SKU's stock per warehouse as
// last committed, answers hopeless Reserve calls from that cache without a
// Raft write, and folds the others into one proposal per round trip: while a
// proposal is in flight, new calls queue; when it commits, the queue goes out
// as the next proposal.
type skuGrain struct {
	node      *Node
	sku       string
	partition *partitionRef
	logger    *slog.Logger

	// stock is the committed stock per warehouse, as of the last read;
	// stockKnown is false when that read failed (the leader was away), and
	// then nothing is refused from the cache.
	stock      map[string]*gridpb.StockRecord
	stockKnown bool
	// held is the quantity per warehouse of queued and in-flight reservations,
	// not yet in stock.
	held     map[string]int64
	queue    []queuedReserve
	inFlight bool
}

type queuedReserve struct {
	req       *gridpb.ReserveRequest
	warehouse string
	strict    bool // the order's route: this warehouse or none
	reply     *reserveReply
	slot      int // the item's place in reply
}

// reserveReply is the answer of one Reserve or ReserveMany call, sent once
// every item has its outcome: some from the cache at once, the others when
// their proposal commits.
type reserveReply struct {
	send    func(msg any) // to the caller
	many    bool          // a ReserveMany: answer ReserveManyResponse, else ReserveResponse
	items   []*gridpb.ReserveResponse
	pending int // items still waiting for a proposal
	failed  bool
}

// answer records item slot's outcome; once none is pending, it sends the
// reply. An error fails the whole call: its items are retried together
// (every reservation is idempotent).
func (r *reserveReply) answer(slot int, res *gridpb.ReserveResponse, err error) {
	if r.failed {
		return
	}
	if err != nil {
		r.failed = true
		r.send(actorcluster.FromError(err))
		return
	}
	r.items[slot] = res
	if r.pending--; r.pending > 0 {
		return
	}
	if r.many {
		r.send(&gridpb.ReserveManyResponse{Items: r.items})
		return
	}
	r.send(r.items[0])
}

// replyTo sends to the sender of the grain's current message, from any
// goroutine.
func replyTo(ctx actorcluster.GrainContext) func(msg any) {
	system, sender := ctx.ActorSystem(), ctx.Sender()
	return func(msg any) { system.Root.Send(sender, msg) }
}

// mailbox hands a committed proposal back to the grain, from the proposing
// goroutine, as a message: the grain handles it between its calls.
func mailbox(ctx actorcluster.GrainContext) func(*reserveCommitted) {
	system, self := ctx.ActorSystem(), ctx.Self()
	return func(m *reserveCommitted) { system.Root.Send(self, m) }
}

// reserveCommitted is what the proposing goroutine sends back to the grain.
type reserveCommitted struct {
	batch  []queuedReserve
	result *statemachine.Result
	err    error
}

func (g *skuGrain) Init(ctx actorcluster.GrainContext) { g.activate(ctx.Identity()) }

// activate makes the grain the grain of sku, with its stock read.
func (g *skuGrain) activate(sku string) {
	g.sku = sku
	g.partition = g.node.skuPartition(g.sku)
	g.logger = g.node.opts.Logger.With(slog.String("grain", "sku"), slog.String("sku", g.sku))
	g.held = make(map[string]int64)
	g.node.metrics.activations.WithLabelValues("SkuGrain").Inc()
	g.reload()
}

// Terminate answers the reservations still queued with an error, so their
// callers retry (on the next activation) at once instead of timing out.
func (g *skuGrain) Terminate(actorcluster.GrainContext) { g.stop() }

func (g *skuGrain) stop() {
	for _, q := range g.queue {
		q.reply.answer(q.slot, nil, errGrainStopped)
	}
	g.queue = nil
}

// errGrainStopped answers reservations a stopping grain did not propose.
var errGrainStopped = errors.New("sku grain stopped before proposing; retry")

// reload reads the committed stock. The grain only reads on the partition's
// leader, after its own proposals commit, so it sees its own writes.
func (g *skuGrain) reload() {
	if _, err := g.readStock(); err != nil {
		g.logger.Warn("reading stock", slog.Any("error", err))
	}
}

// readStock reads the committed stock and refreshes the cache with it.
func (g *skuGrain) readStock() (*pb.SkuStock, error) {
	st, _, err := statemachine.ReadStock(g.node.reader(g.partition), g.partition.Prefix, g.sku)
	if err != nil {
		g.stockKnown = false
		return nil, err
	}
	g.stock = make(map[string]*gridpb.StockRecord, len(st.Warehouses))
	for _, w := range st.Warehouses {
		g.stock[w.Warehouse] = &gridpb.StockRecord{OnHand: w.OnHand, Pending: w.Pending, Committed: w.Committed}
	}
	g.stockKnown = true
	return st, nil
}

// errStockUnknown answers a reservation the grain can neither judge from its
// cache nor read the partition for: the caller retries (503), never "out of stock".
var errStockUnknown = errors.New("stock unknown: the partition's leader cannot be reached")

// pick chooses the warehouse with the most free stock that can hold qty, or
// "": free after the queued and in-flight reservations (held) when
// countHeld, else as last committed.
func (g *skuGrain) pick(qty int64, countHeld bool) string {
	best, bestFree := "", int64(-1)
	for wh, s := range g.stock {
		free := s.OnHand - s.Pending - s.Committed
		if countHeld {
			free -= g.held[wh]
		}
		if free >= qty && (free > bestFree || (free == bestFree && wh < best)) {
			best, bestFree = wh, free
		}
	}
	return best
}

// fits reports whether warehouse wh can hold qty: after the queued and
// in-flight reservations when countHeld, else as last committed.
func (g *skuGrain) fits(wh string, qty int64, countHeld bool) bool {
	s := g.stock[wh]
	if s == nil {
		return false
	}
	free := s.OnHand - s.Pending - s.Committed
	if countHeld {
		free -= g.held[wh]
	}
	return free >= qty
}

// freeView is the free stock per warehouse after the held reservations.
func (g *skuGrain) freeView() map[string]int64 {
	out := make(map[string]int64, len(g.stock))
	for wh, s := range g.stock {
		out[wh] = max(0, s.OnHand-s.Pending-s.Committed-g.held[wh])
	}
	return out
}

func (g *skuGrain) Reserve(req *gridpb.ReserveRequest, _ func(*gridpb.ReserveResponse), _ func(error), ctx actorcluster.GrainContext) error {
	return g.reserve(req, replyTo(ctx), mailbox(ctx))
}

// reserve judges one reservation; its answer goes to send, and a proposal
// it starts comes back through committed.
func (g *skuGrain) reserve(req *gridpb.ReserveRequest, send func(any), committed func(*reserveCommitted)) error {
	if !g.stockKnown {
		g.reload()
		if !g.stockKnown {
			return errStockUnknown
		}
	}
	reply := &reserveReply{send: send, items: make([]*gridpb.ReserveResponse, 1), pending: 1}
	fresh := false
	if err := g.judge(req, reply, 0, &fresh); err != nil {
		return err
	}
	g.flush(committed)
	return nil
}

// ReserveMany judges the reservations of one intake batch on this SKU
// together: each against the stock less what the batch's earlier items
// (and every queued or in-flight reservation) hold, the hopeless ones
// answered from the cache, the others proposed as one entry. One answer,
// item by item, once every item has its outcome.
func (g *skuGrain) ReserveMany(req *gridpb.ReserveManyRequest, _ func(*gridpb.ReserveManyResponse), _ func(error), ctx actorcluster.GrainContext) error {
	if len(req.Items) == 0 {
		ctx.Respond(&gridpb.ReserveManyResponse{})
		return nil
	}
	return g.reserveMany(req, replyTo(ctx), mailbox(ctx))
}

// reserveMany judges the reservations of a ReserveMany with items; its
// answer goes to send, and a proposal it starts comes back through committed.
func (g *skuGrain) reserveMany(req *gridpb.ReserveManyRequest, send func(any), committed func(*reserveCommitted)) error {
	if !g.stockKnown {
		g.reload()
		if !g.stockKnown {
			return errStockUnknown
		}
	}
	reply := &reserveReply{send: send, many: true, items: make([]*gridpb.ReserveResponse, len(req.Items)), pending: len(req.Items)}
	for i, it := range req.Items {
		if it.Sku != g.sku {
			return fmt.Errorf("reserve_many: item %d is of sku %q, not %q", i, it.Sku, g.sku)
		}
	}
	fresh := false
	for i, it := range req.Items {
		if err := g.judge(it, reply, i, &fresh); err != nil {
			reply.answer(i, nil, err)
			return nil
		}
	}
	g.flush(committed)
	return nil
}

// judge answers one reservation from the cache when it is hopeless, or
// queues it for the next proposal. Before it refuses from the cache, the
// cache is read again once per call (*fresh): another activation of this
// grain during a membership change, or a writer the grain did not see,
// may have freed stock since the last read, and a refusal must be of the
// committed stock as it is.
func (g *skuGrain) judge(req *gridpb.ReserveRequest, reply *reserveReply, slot int, fresh *bool) error {
	if req.Extend {
		// Takes no stock: the state machine answers it, whatever the cache holds.
		g.queue = append(g.queue, queuedReserve{req: req, warehouse: req.Warehouse, strict: true, reply: reply, slot: slot})
		return nil
	}
	strict := req.Warehouse != ""
	where := func() string {
		if strict {
			// Routed: that warehouse or a short answer with what is free where.
			if g.fits(req.Warehouse, req.Qty, true) || g.fits(req.Warehouse, req.Qty, false) {
				return req.Warehouse
			}
			return ""
		}
		if wh := g.pick(req.Qty, true); wh != "" {
			return wh
		}
		// Held stock is not taken yet: a held reservation may be a retry
		// of one that exists (it takes nothing) or be refused. Only the
		// committed stock may refuse; otherwise the state machine judges.
		return g.pick(req.Qty, false)
	}
	wh := where()
	if wh == "" && !*fresh {
		*fresh = true
		if _, err := g.readStock(); err != nil {
			return err
		}
		wh = where()
	}
	if wh == "" {
		// Hopeless by the cache; a retry of a reservation that exists is still answered with it.
		res, ok, err := statemachine.ReadReservation(g.node.reader(g.partition), g.partition.Prefix, g.sku, req.OrderId)
		if err != nil {
			return err
		}
		if ok && res.State != gridpb.ReservationState_RESERVATION_STATE_RELEASED {
			reply.answer(slot, &gridpb.ReserveResponse{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Warehouse: res.Warehouse,
				LimitHeld: res.LimitHeld, LimitCode: res.LimitCode, Detail: res.LimitDetail}, nil)
			return nil
		}
		g.node.metrics.reservations.WithLabelValues("insufficient_stock").Inc()
		short := &gridpb.ReserveResponse{Outcome: gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK}
		if strict {
			short.Warehouse, short.Free = req.Warehouse, g.freeView()
		}
		reply.answer(slot, short, nil)
		return nil
	}
	g.held[wh] += req.Qty
	g.queue = append(g.queue, queuedReserve{req: req, warehouse: wh, strict: strict, reply: reply, slot: slot})
	return nil
}

// flush proposes the queue as one entry unless a proposal is in flight;
// the proposal, once answered, comes back to the grain through committed.
func (g *skuGrain) flush(committed func(*reserveCommitted)) {
	if g.inFlight || len(g.queue) == 0 {
		return
	}
	n := min(len(g.queue), g.node.opts.ReserveBatchMax)
	batch := g.queue[:n:n]
	g.queue = append([]queuedReserve(nil), g.queue[n:]...)
	g.inFlight = true
	cmd := &gridpb.ReserveBatchCommand{Sku: g.sku, Items: make([]*gridpb.ReserveItem, n)}
	for i, q := range batch {
		cmd.Items[i] = &gridpb.ReserveItem{OrderId: q.req.OrderId, Qty: q.req.Qty, ExpiresUnixNano: q.req.ExpiresUnixNano, Warehouse: q.warehouse, Strict: q.strict,
			Principal: q.req.Principal, Buyer: q.req.Buyer, HoldExpiresUnixNano: q.req.HoldExpiresUnixNano, Extend: q.req.Extend}
	}
	// Each item names its own caller; the batch has no caller of its own.
	principal := batchPrincipal(cmd.Items, (*gridpb.ReserveItem).GetPrincipal)
	g.node.metrics.reserveBatch.Observe(float64(n))
	go func() {
		cctx, cancel := g.node.callCtx()
		defer cancel()
		res, err := g.node.propose(cctx, g.partition, principal, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: cmd}})
		// Answer the callers from here, not from the grain: they get their
		// answer even if the grain was stopped meanwhile (passivated, or
		// moved to its partition's new leader).
		// The replies are only touched by this goroutine until it hands
		// the batch back: the grain sends the next proposal after that.
		for i, q := range batch {
			if err != nil {
				q.reply.answer(q.slot, nil, err)
				continue
			}
			it := res.Reserve.Items[i]
			g.node.metrics.reservations.WithLabelValues(outcomeLabel(it.Outcome)).Inc()
			q.reply.answer(q.slot, &gridpb.ReserveResponse{Outcome: it.Outcome, Warehouse: it.Warehouse, LimitHeld: it.LimitHeld, Detail: it.Detail, LimitCode: it.LimitCode}, nil)
		}
		committed(&reserveCommitted{batch: batch, result: res, err: err})
	}()
}

// committed takes back a proposal flush started, and flushes the queue.
func (g *skuGrain) committed(m *reserveCommitted, next func(*reserveCommitted)) {
	g.inFlight = false
	for _, q := range m.batch {
		g.held[q.warehouse] -= q.req.Qty
		if g.held[q.warehouse] == 0 {
			delete(g.held, q.warehouse)
		}
	}
	g.reload()
	g.flush(next)
}

func (g *skuGrain) ReceiveDefault(ctx actorcluster.GrainContext) {
	if m, ok := ctx.Message().(*reserveCommitted); ok {
		g.committed(m, mailbox(ctx))
	}
}

// Settle moves an order's reservation (commit, release, ship, restock, or
// expire: release only if still pending and past its expiry).
func (g *skuGrain) Settle(req *gridpb.SettleRequest, _ actorcluster.GrainContext) (*gridpb.SettleResponse, error) {
	cmd := &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: g.sku, OrderId: req.OrderId, Action: req.Action}}}
	if req.Action == "expire" {
		cmd = &gridpb.Command{Kind: &gridpb.Command_ExpireReservations{ExpireReservations: &gridpb.ExpireReservationsCommand{Sku: g.sku, OrderIds: []string{req.OrderId}}}}
	}
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, req.Principal, cmd)
	if err != nil {
		return nil, err
	}
	g.reload()
	return &gridpb.SettleResponse{Outcome: res.Outcome}, nil
}

// SettleMany moves the reservations of one batch's orders on this SKU
// (their orders' owed stock actions) with one entry, and answers each.
func (g *skuGrain) SettleMany(req *gridpb.SettleManyRequest, _ actorcluster.GrainContext) (*gridpb.SettleManyResponse, error) {
	cmd := &gridpb.SettleBatchCommand{Sku: g.sku, Items: make([]*gridpb.SettleItem, len(req.Items))}
	for i, it := range req.Items {
		if it.Sku != g.sku || it.Action == "expire" {
			return nil, fmt.Errorf("settle_many: item %d: sku %q action %q on the grain of %q", i, it.Sku, it.Action, g.sku)
		}
		cmd.Items[i] = &gridpb.SettleItem{OrderId: it.OrderId, Action: it.Action, Principal: it.Principal}
	}
	principal := batchPrincipal(cmd.Items, (*gridpb.SettleItem).GetPrincipal)
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, principal, &gridpb.Command{Kind: &gridpb.Command_SettleBatch{SettleBatch: cmd}})
	if err != nil {
		return nil, err
	}
	g.reload()
	if len(res.Results) != len(req.Items) {
		return nil, fmt.Errorf("settle_batch: %d results for %d items: %s", len(res.Results), len(req.Items), res.Detail)
	}
	out := &gridpb.SettleManyResponse{Items: make([]*gridpb.SettleResponse, len(res.Results))}
	for i, r := range res.Results {
		out.Items[i] = &gridpb.SettleResponse{Outcome: r.Outcome}
	}
	return out, nil
}

func (g *skuGrain) SetStock(req *gridpb.SetStockGrainRequest, _ actorcluster.GrainContext) (*pb.SkuStock, error) {
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, req.Principal, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{
		Sku: g.sku, Warehouse: req.Stock.Warehouse, OnHand: req.Stock.OnHand, RequestId: req.RequestId,
	}}})
	if err != nil {
		return nil, err
	}
	st, readErr := g.readStock()
	if res.Outcome != gridpb.Outcome_OUTCOME_OK && res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED { // replayed: this call's own set, applied
		return nil, outcomeErr(res.Outcome, res.Detail)
	}
	return st, readErr
}

func (g *skuGrain) GetStock(*gridpb.SkuQuery, actorcluster.GrainContext) (*pb.SkuStock, error) {
	st, err := g.readStock()
	if err != nil {
		return nil, err
	}
	if len(st.Warehouses) == 0 {
		return nil, outcomeErr(gridpb.Outcome_OUTCOME_NOT_FOUND, "unknown sku")
	}
	return st, nil
}

func outcomeLabel(o gridpb.Outcome) string {
	switch o {
	case gridpb.Outcome_OUTCOME_OK:
		return "reserved"
	case gridpb.Outcome_OUTCOME_REPLAYED:
		return "replayed"
	case gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK:
		return "insufficient_stock"
	default:
		return "other"
	}
}
