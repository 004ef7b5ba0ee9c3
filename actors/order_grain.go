package actors

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/failure"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/routing"
	"github.com/ordergrid/ordergrid/statemachine"
)

// orderGrain is the grain of one order. It holds no state of its own between
// calls: it reads the order from its partition (the grain's calls run one at
// a time, and every write goes through its partition), so an activation never
// serves a stale order.
type orderGrain struct {
	node      *Node
	id        string
	partition *partitionRef
	logger    *slog.Logger
}

func (g *orderGrain) Init(ctx actorcluster.GrainContext) {
	g.id = ctx.Identity()
	g.partition = g.node.orderPartition(g.id)
	g.logger = g.node.opts.Logger.With(slog.String("grain", "order"), slog.String("order", g.id))
	g.node.metrics.activations.WithLabelValues("OrderGrain").Inc()
}

func (g *orderGrain) Terminate(actorcluster.GrainContext) {}

func (g *orderGrain) ReceiveDefault(actorcluster.GrainContext) {}

func (g *orderGrain) read() (*gridpb.OrderRecord, bool, error) {
	return statemachine.ReadOrder(g.node.reader(g.partition), g.partition.Prefix, g.id)
}

// RequestHash is the hash that tells a retry (same hash) from a different
// request under the same idempotency key.
func RequestHash(r *pb.CreateOrderRequest) []byte {
	c := proto.Clone(r).(*pb.CreateOrderRequest)
	c.IdempotencyKey = ""
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	h := sha256.Sum256(b)
	return h[:]
}

func replayOrConflict(o *gridpb.OrderRecord, hash []byte) *gridpb.OrderGrainResponse {
	if string(o.RequestHash) == string(hash) {
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: o}
	}
	return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: o,
		Detail: "this idempotency key was used with a different request"}
}

// skuQty is one SKU's total quantity in an order, in first-appearance order.
type skuQty struct {
	sku string
	qty int64
}

func groupLines(lines []*pb.OrderLineInput) []skuQty {
	var out []skuQty
	at := make(map[string]int, len(lines))
	for _, l := range lines {
		if i, ok := at[l.Sku]; ok {
			out[i].qty += l.Qty
			continue
		}
		at[l.Sku] = len(out)
		out = append(out, skuQty{sku: l.Sku, qty: l.Qty})
	}
	return out
}

// Create routes the order, reserves its stock where the route says and
// records the order. It does not read the order first: a new order (nearly
// every call) would pay a read that misses. A retry is recognised instead by
// its reservations (a reservation of this order that exists is answered,
// never taken twice, and pins its line to its warehouse) and by the state
// machine, which records an order id once and answers a later create_order
// with the order it has.
func (g *orderGrain) Create(req *gridpb.CreateOrderGrainRequest, _ actorcluster.GrainContext) (*gridpb.OrderGrainResponse, error) {
	hash := RequestHash(req.Request)
	now := g.node.now()
	payBy := now.Add(g.node.opts.PendingTimeout).UnixNano()
	expires := payBy + g.node.opts.OrphanGrace.Nanoseconds()
	skus := groupLines(req.Request.Lines)
	r, err := g.route(req, skus, now, expires)
	if err != nil {
		return nil, err
	}
	refused := r.screen.limitAnswers(skus, r.results)
	if sc := r.screen; sc != nil && sc.refused != nil {
		refused = sc.refused // refused before reserving
	}
	if refused != nil {
		// Refused at intake, unless it is recorded (a retry): what this
		// call holds and the record does not is released.
		prev, found, err := g.read()
		if err != nil {
			return nil, err
		}
		if found {
			g.node.releaseNotOf(g.id, prev, skus, r.results, req.Principal)
			return replayOrConflict(prev, hash), nil
		}
		g.node.releaseAll(g.id, skus, r.results, req.Principal)
		g.node.metrics.screened.WithLabelValues("refuse", refusalReason(refused)).Inc()
		return refused, nil
	}
	results, errs := r.results, r.errs
	short, replayed := "", 0
	for i := range skus {
		switch {
		case errs[i] != nil:
		case results[i] == nil:
		case results[i].Outcome == gridpb.Outcome_OUTCOME_REPLAYED:
			replayed++
		case results[i].Outcome != gridpb.Outcome_OUTCOME_OK && short == "":
			short = skus[i].sku
		}
	}
	refusal := r.decision.Refusal
	if refusal != nil && short == "" {
		short = refusal.SKU
	}
	reserveErr := errors.Join(errs...)
	if reserveErr != nil || short != "" || refusal != nil || replayed == len(skus) {
		// Not a plain new order: a retry (every reservation existed), or
		// routing or reserving failed. If the order is recorded, it is the answer.
		prev, found, err := g.read()
		if err != nil {
			return nil, err // reservations stay for the orphan sweep
		}
		if found {
			g.node.releaseNotOf(g.id, prev, skus, results, req.Principal)
			return replayOrConflict(prev, hash), nil
		}
	}
	if reserveErr != nil {
		// Infrastructure failed: what this call reserved stays pending for
		// a retry (or the orphan sweep), since another activation of this
		// grain during a move may be using it.
		return nil, fmt.Errorf("reserving: %w", reserveErr)
	}
	if refusal != nil || short != "" {
		// The business said no: free what this call took at once. (A
		// second activation of this grain during a move that reserved the
		// short SKU a moment later, and this call's other SKUs as REPLAYED,
		// could record the order with a reservation freed here: a narrow
		// window this design does not close; the reservations would need to
		// name the attempt that made them.)
		g.node.releaseAll(g.id, skus, results, req.Principal)
		if refusal != nil && !refusal.Stock {
			g.node.metrics.routed.WithLabelValues("unroutable").Inc()
			return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_UNROUTABLE, Sku: refusal.SKU, Detail: refusal.Detail}, nil
		}
		g.node.metrics.routed.WithLabelValues("out_of_stock").Inc()
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK, Sku: short,
			Detail: fmt.Sprintf("not enough stock of %s", short)}, nil
	}
	g.node.extendHeld(g.id, r.screen, skus, results, req.Principal)
	rq := req.Request
	o, err := r.record(g.id, rq, skus, hash, payBy, g.node.Catalog(), now)
	if err != nil {
		g.node.releaseAll(g.id, skus, results, req.Principal) // the request itself is wrong: every attempt fails
		return nil, err
	}
	g.node.mark(o, r.screen, now)
	if o.Personal, err = g.seal(rq.Customer); err != nil {
		return nil, fmt.Errorf("sealing personal fields: %w", err) // reservations stay, as above
	}
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, req.Principal, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: o, Routing: r.decision.Record}}})
	if err != nil {
		// Not known to be recorded: the reservations stay pending and the
		// orphan sweep releases them unless a retry records the order first.
		return nil, fmt.Errorf("recording order: %w", err)
	}
	switch {
	case res.Outcome == gridpb.Outcome_OUTCOME_OK:
		g.node.counted(o.Shipments)
		g.node.metrics.routed.WithLabelValues(r.decision.Record.Arm).Inc()
		if r.decision.Record.Attempts > 1 {
			g.node.metrics.reroutes.Add(float64(r.decision.Record.Attempts - 1))
		}
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK, Order: res.Order}, nil
	case res.Order != nil: // recorded before (a retry, or a different request under the same key)
		g.node.releaseNotOf(g.id, res.Order, skus, results, req.Principal)
		return replayOrConflict(res.Order, hash), nil
	default: // refused: nothing recorded
		return nil, fmt.Errorf("recording order: refused: %s %s", res.Outcome, res.Detail)
	}
}

// routed is the outcome of routing and reserving one order.
type routed struct {
	strategy *routing.Strategy
	order    *routing.Order
	decision *routing.Decision
	// Per SKU: this call's last reservation answer, or the error of its call.
	results []*gridpb.ReserveResponse
	errs    []error
	// screen is what intake judged of the order on its first route.
	screen *screened
}

// shipments are the order's parcels as reserved: the decision's, or (when
// a line stayed pinned elsewhere by an earlier attempt's reservation) one
// per warehouse the lines hold, shipping on that warehouse's day.
func (r *routed) shipments(c *routing.Catalog, now time.Time) []*gridpb.ShipmentRecord {
	actual := make([]string, len(r.results))
	for i, res := range r.results {
		actual[i] = res.Warehouse
	}
	if slices.Equal(actual, r.decision.Warehouses) {
		return r.decision.Shipments
	}
	var out []*gridpb.ShipmentRecord
	seen := map[string]bool{}
	for _, wh := range actual {
		if !seen[wh] {
			seen[wh] = true
			out = append(out, &gridpb.ShipmentRecord{Warehouse: wh, ShipDay: c.DayOf(wh, now)})
		}
	}
	return out
}

// record is the order's record as routed and reserved (its lines at the
// warehouses that hold them, its total), before sealing. It fails only
// for a request whose total cannot be computed: every attempt fails alike.
func (r *routed) record(id string, rq *pb.CreateOrderRequest, skus []skuQty, hash []byte, payBy int64, c *routing.Catalog, now time.Time) (*gridpb.OrderRecord, error) {
	o := &gridpb.OrderRecord{
		Id: id, Channel: rq.Channel, ChannelOrderId: rq.ChannelOrderId,
		Customer: &pb.Customer{Id: rq.Customer.GetId()}, Currency: rq.Currency, IdempotencyKey: rq.IdempotencyKey,
		RequestHash: hash, PayByUnixNano: payBy, RoutingStrategy: r.strategy.Ref(), Shipments: r.shipments(c, now),
		Region: rq.DeliveryRegion, Tier: rq.CustomerTier, Capabilities: r.order.Capabilities, ChannelFields: rq.ChannelFields,
		Adjustments: rq.Adjustments,
	}
	if !r.order.Promise.IsZero() {
		o.PromiseUnixNano = r.order.Promise.UnixNano()
	}
	where := make(map[string]string, len(skus))
	for i, s := range skus {
		where[s.sku] = r.results[i].Warehouse
	}
	for _, l := range rq.Lines {
		o.Lines = append(o.Lines, &gridpb.OrderLineRecord{Sku: l.Sku, Qty: l.Qty, UnitPrice: l.UnitPrice, Warehouse: where[l.Sku]})
	}
	var err error
	if o.Total, err = OrderTotal(rq.Lines); err != nil {
		return nil, invalidErr("lines", fmt.Errorf("%w: %w", errBadTotal, err))
	}
	if len(rq.Adjustments) > 0 { // without any, the amount due is the total, shown as such
		if o.AmountDue, err = AmountDue(o.Total, rq.Adjustments); err != nil {
			return nil, invalidErr("adjustments", fmt.Errorf("%w: %w", errBadTotal, err))
		}
	}
	return o, nil
}

// route decides where each SKU ships and reserves it there. A reservation
// that finds its warehouse short (the replica the decision read was
// behind, or another order took the stock first) answers with the SKU
// grain's view of free stock, and the order is routed again with it, at
// most routeAttemptsMax times; what this call reserved at a warehouse the
// new route leaves is released first. A decision that would refuse the
// order is taken again on the SKU grains' own view before it stands.
func (g *orderGrain) route(req *gridpb.CreateOrderGrainRequest, skus []skuQty, now time.Time, expires int64) (*routed, error) {
	cat := g.node.Catalog()
	strategy, arm := cat.StrategyFor(g.id)
	r := &routed{strategy: strategy, order: routingOrder(g.id, req.Request, skus, now),
		results: make([]*gridpb.ReserveResponse, len(skus)), errs: make([]error, len(skus))}
	inv := &orderInventory{n: g.node}
	authoritative := false
	for attempt := 1; ; attempt++ {
		var err error
		if r.decision, err = routing.Decide(cat, strategy, arm, r.order, inv); err != nil {
			return nil, err // reading a local replica failed: what this call reserved stays for a retry or the sweep
		}
		r.decision.Record.Attempts = uint32(attempt)
		if r.decision.Refusal != nil && !authoritative {
			authoritative = true
			if err := inv.authoritative(skus); err != nil {
				return nil, fmt.Errorf("reading stock: %w", err)
			}
			g.creditOwn(inv, skus, r.results)
			if err := g.creditEarlier(inv, skus, r.results); err != nil {
				return nil, fmt.Errorf("reading reservations: %w", err)
			}
			attempt--
			continue
		}
		if r.decision.Refusal != nil {
			return r, nil
		}
		if r.screen == nil {
			r.screen = g.node.screen(g.node.screenOf(req.Request, r.decision.Warehouses, inv.pressure(skus)), now)
			if r.screen.refused != nil {
				return r, nil
			}
		}
		var todo []int
		for i := range skus {
			res := r.results[i]
			if res != nil && (res.Outcome == gridpb.Outcome_OUTCOME_OK || res.Outcome == gridpb.Outcome_OUTCOME_REPLAYED) && res.Warehouse == r.decision.Warehouses[i] {
				continue
			}
			todo = append(todo, i)
		}
		if len(todo) == 0 {
			return r, nil
		}
		// What this call holds where the new route does not go is released
		// first (a business decision of this call, like a short release).
		moved := make([]*gridpb.ReserveResponse, len(skus))
		for _, i := range todo {
			if res := r.results[i]; res != nil && res.Outcome == gridpb.Outcome_OUTCOME_OK {
				moved[i] = res
			}
		}
		if err := g.node.release(g.id, skus, moved, req.Principal); err != nil {
			return nil, fmt.Errorf("moving a reservation: %w", err)
		}
		fanOut(len(todo), linesFanOutMax, func(k int) {
			i := todo[k]
			var res *gridpb.ReserveResponse
			r.errs[i] = retrySku(func() (err error) {
				res, err = g.node.grains.reserve(&gridpb.ReserveRequest{
					Sku: skus[i].sku, OrderId: g.id, Qty: skus[i].qty, ExpiresUnixNano: r.screen.expiry(expires), Principal: req.Principal,
					Warehouse: r.decision.Warehouses[i], Buyer: r.screen.limitBuyer(), HoldExpiresUnixNano: r.screen.holdExpiry(),
				})
				return err
			})
			r.results[i] = res
		})
		if errors.Join(r.errs...) != nil {
			return r, nil
		}
		again := false
		for _, i := range todo {
			res := r.results[i]
			switch {
			case res.Outcome == gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED:
				return r, nil // a purchase limit refuses: no route changes that
			case res.Outcome == gridpb.Outcome_OUTCOME_OK:
			case res.Outcome == gridpb.Outcome_OUTCOME_REPLAYED:
				// An earlier attempt's reservation: the line is pinned there.
				inv.set(skus[i].sku, map[string]int64{res.Warehouse: skus[i].qty})
				again = again || res.Warehouse != r.decision.Warehouses[i]
			default:
				again = true
				if res.Free != nil {
					inv.set(skus[i].sku, res.Free)
				} else if err := inv.authoritative(skus[i : i+1]); err != nil {
					return nil, fmt.Errorf("reading stock: %w", err)
				}
			}
		}
		if !again || attempt >= routeAttemptsMax {
			return r, nil
		}
		g.creditOwn(inv, skus, r.results)
	}
}

// creditOwn adds back, in the inventory's view, the stock this call holds:
// for routing again, it is free to this order where it is.
func (g *orderGrain) creditOwn(inv *orderInventory, skus []skuQty, results []*gridpb.ReserveResponse) {
	for i, res := range results {
		if res == nil || res.Outcome != gridpb.Outcome_OUTCOME_OK {
			continue
		}
		view, err := inv.view(skus[i].sku)
		if err != nil {
			continue // the decision reads it again and fails there
		}
		view[res.Warehouse] += skus[i].qty
		inv.set(skus[i].sku, view)
	}
}

// creditEarlier adds back, in the inventory's view, what an earlier
// attempt of this order still holds pending: an attempt answered 503 after
// it reserved (a node died, a proposal timed out) leaves its reservations
// for its retry, and a retry must take them, not be refused because the
// only free stock left is its own. Only for an order about to be refused,
// so it costs a read per SKU on the refusal path alone (on the SKU
// partitions' leaders). Lines this call reserved or found pinned are
// credited by creditOwn or pinned already.
func (g *orderGrain) creditEarlier(inv *orderInventory, skus []skuQty, results []*gridpb.ReserveResponse) error {
	earlier := make([]*gridpb.ReservationRecord, len(skus))
	errs := make([]error, len(skus))
	fanOut(len(skus), linesFanOutMax, func(i int) {
		if results[i] != nil {
			return
		}
		p := g.node.skuPartition(skus[i].sku)
		rec, ok, err := statemachine.ReadReservation(g.node.reader(p), p.Prefix, skus[i].sku, g.id)
		if err != nil {
			errs[i] = err
			return
		}
		if ok && rec.State == gridpb.ReservationState_RESERVATION_STATE_PENDING {
			earlier[i] = rec
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, rec := range earlier {
		if rec == nil {
			continue
		}
		view, err := inv.view(skus[i].sku)
		if err != nil {
			return err
		}
		view[rec.Warehouse] += rec.Qty
		inv.set(skus[i].sku, view)
		g.node.metrics.retriedReservations.Inc()
	}
	return nil
}

// releaseNotOf releases what this call reserved that the recorded order o
// does not hold: a reservation of a SKU o has no line of (a different
// request under the same key), or any when o holds no live stock any more
// (cancelled, expired, merged, refunded: its reservation was released, so
// a retry re-reserved it; shipped ones answer the retry REPLAYED and
// reserve nothing). A reservation of a SKU of an o that holds its stock is
// o's: perhaps made by this very call for another activation that
// recorded o first.
func (n *Node) releaseNotOf(id string, o *gridpb.OrderRecord, skus []skuQty, results []*gridpb.ReserveResponse, principal string) {
	released := !lifecycle.HoldsStock(o.Status)
	keep := make([]*gridpb.ReserveResponse, len(results))
	for i, s := range skus {
		holds := false
		for _, l := range o.Lines {
			holds = holds || l.Sku == s.sku
		}
		if released || !holds {
			keep[i] = results[i]
		}
	}
	n.releaseAll(id, skus, keep, principal)
}

// seal seals the customer's personal fields by the subject's grain; nil
// when there are none.
func (g *orderGrain) seal(c *pb.Customer) ([]byte, error) {
	f := personalFields(c)
	if f == nil {
		return nil, nil
	}
	if c.GetId() == "" {
		return nil, internalErr(errors.New("personal fields without a customer id"))
	}
	res, err := g.node.subjectClient(c.Id).Seal(&gridpb.SealPersonalRequest{OrderId: g.id, Fields: f}, g.node.callOptions()...)
	if err != nil {
		return nil, err
	}
	return res.Sealed, nil
}

// releaseAll releases, before it returns, the reservations this call made
// (outcome OK): the stock is free again when the 409 goes out. It never
// releases a reservation it found made by an earlier attempt (REPLAYED):
// that attempt's create_order may still be queued in Raft and commit after
// this call gives up, and an order must not lose its stock. Such a
// reservation of an order never recorded is released by the orphan sweep.
func (n *Node) releaseAll(id string, skus []skuQty, results []*gridpb.ReserveResponse, principal string) {
	if err := n.release(id, skus, results, principal); err != nil {
		// The orphan sweep releases them after the pending timeout.
		n.opts.Logger.Warn("releasing reservations", slog.String("order", id), slog.Any("error", err))
	}
}

// release releases the reservations this call made (outcome OK) in results.
func (n *Node) release(id string, skus []skuQty, results []*gridpb.ReserveResponse, principal string) error {
	errs := make([]error, len(skus))
	fanOut(len(skus), linesFanOutMax, func(i int) {
		if results[i] == nil || results[i].Outcome != gridpb.Outcome_OUTCOME_OK {
			return
		}
		errs[i] = retrySku(func() error {
			_, err := n.grains.settle(&gridpb.SettleRequest{Sku: skus[i].sku, OrderId: id,
				Action: lifecycle.ActionRelease, Principal: principal})
			if err != nil {
				return fmt.Errorf("%s: %w", skus[i].sku, err)
			}
			return nil
		})
	})
	return errors.Join(errs...)
}

func (g *orderGrain) Get(*gridpb.OrderQuery, actorcluster.GrainContext) (*gridpb.OrderGrainResponse, error) {
	o, found, err := g.read()
	if err != nil {
		return nil, err
	}
	if !found {
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}, nil
	}
	return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}, nil
}

func (g *orderGrain) AddEvent(req *gridpb.OrderEventGrainRequest, _ actorcluster.GrainContext) (*gridpb.OrderGrainResponse, error) {
	ev := req.Event
	details := eventDetails(ev)
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, req.Principal, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{
		OrderId: g.id, Type: ev.Type, Details: details,
	}}})
	if err != nil {
		return nil, err
	}
	out := &gridpb.OrderGrainResponse{Outcome: res.Outcome, Order: res.Order, Detail: res.Detail}
	if res.Order != nil && res.Order.StockAction != "" {
		synced, err := g.syncStock(res.Order, req.Principal)
		if err != nil {
			// Owed and recorded: the sweeper finishes it. The transition stands.
			g.logger.Warn("stock action owed", slog.String("action", res.Order.StockAction), slog.Any("error", err))
		} else {
			out.Order = synced
		}
	}
	return out, nil
}

// SyncStock carries out the stock action the order still owes, if any.
// The sweeper calls it, so the settles it records are the sweeper's
// (SweeperPrincipal), not the caller's whose event left the action owed.
func (g *orderGrain) SyncStock(req *gridpb.SyncStockRequest, _ actorcluster.GrainContext) (*gridpb.OrderGrainResponse, error) {
	o, found, err := g.read()
	if err != nil {
		return nil, err
	}
	if !found {
		return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}, nil
	}
	if o.StockAction != "" {
		if o, err = g.syncStock(o, SweeperPrincipal); err != nil {
			return nil, err
		}
	}
	return &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK, Order: o}, nil
}

func (g *orderGrain) syncStock(o *gridpb.OrderRecord, principal string) (*gridpb.OrderRecord, error) {
	var skus []string
	seen := map[string]bool{}
	for _, l := range o.Lines {
		if !seen[l.Sku] {
			seen[l.Sku] = true
			skus = append(skus, l.Sku)
		}
	}
	errs := make([]error, len(skus))
	fanOut(len(skus), linesFanOutMax, func(i int) {
		var res *gridpb.SettleResponse
		err := retrySku(func() (err error) {
			res, err = g.node.grains.settle(&gridpb.SettleRequest{Sku: skus[i], OrderId: o.Id, Action: o.StockAction, Principal: principal})
			return err
		})
		if err != nil {
			errs[i] = err
			return
		}
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			// The state machine refused (e.g. a reservation swept long ago):
			// nothing a retry can change; recorded in the log and moved on.
			g.logger.Error("stock action refused", slog.String("sku", skus[i]), slog.String("action", o.StockAction), slog.String("outcome", res.Outcome.String()))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, principal, &gridpb.Command{Kind: &gridpb.Command_StockSynced{StockSynced: &gridpb.StockSyncedCommand{OrderId: o.Id, Version: o.Version}}})
	if err != nil {
		return nil, err
	}
	return res.Order, nil
}

const (
	// skuCallAttemptsMax bounds how often an order grain repeats a failed
	// call to a SKU grain (every such call is idempotent).
	skuCallAttemptsMax = 3
	skuCallBackoff     = 50 * time.Millisecond
)

// retrySku repeats call while it fails, up to skuCallAttemptsMax times: a SKU
// grain that is moving to its partition's new leader, or a leader election,
// fails a call that succeeds a moment later.
func retrySku(call func() error) error {
	var err error
	for attempt := 0; attempt < skuCallAttemptsMax; attempt++ {
		if err = call(); err == nil {
			return nil
		}
		if failure.OutcomeOf(err) != gridpb.Outcome_OUTCOME_UNSPECIFIED {
			return err // the state machine answered: repeating changes nothing
		}
		time.Sleep(skuCallBackoff * time.Duration(attempt+1))
	}
	return err
}
