package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Service implements the API once, for both HTTP and gRPC.
type Service struct {
	admission *admission
	pb.UnimplementedOrderServiceServer
	pb.UnimplementedInventoryServiceServer
	pb.UnimplementedPrivacyServiceServer
	pb.UnimplementedEventServiceServer

	grid    Grid
	routing RoutingAdmin
	intake  *intake.Pipeline
	// channelFlow takes pushed channel orders.
	channelFlow *intake.ChannelFlow
	archives    Archives
	tokens      *Tokens
	limits      Limits
	logger      *slog.Logger
	metrics     *metrics
	// events serve the event streams; streamSlots bound them.
	events             EventStream
	streamSlots        chan struct{}
	streamWriteTimeout time.Duration
	streamMetrics      *streamMetrics
	streamsStopped     context.Context
	stopStreams        context.CancelFunc
}

// grainProblem maps a failed grain call to a problem: 503 with Retry-After
// only for what a retry can fix (a timeout, no leader, a peer unreachable);
// a request that can never succeed as sent gets its 4xx, a broken
// invariant 500 (see failureProblem).
func (s *Service) grainProblem(err error, what, id string) *Problem {
	p := failureProblem(err, what, id)
	switch p.Status {
	case http.StatusInternalServerError:
		s.logger.Error("grain call failed: no retry can succeed", slog.String("what", what), slog.String("id", id), slog.Any("error", err))
		s.metrics.rejects.WithLabelValues("internal").Inc()
	case http.StatusServiceUnavailable:
		s.logger.Warn("grain call failed", slog.String("what", what), slog.String("id", id), slog.Any("error", err))
		s.metrics.rejects.WithLabelValues("unavailable").Inc()
	case http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		s.metrics.rejects.WithLabelValues("invalid").Inc()
	}
	return p
}

// failureProblem is the problem of a failed grain call: its outcome (404,
// 409), else its failure (failure.Of): Invalid 422 naming the field,
// TooLarge 413, Internal 500, Transient 503 with Retry-After.
func failureProblem(err error, what, id string) *Problem {
	switch failure.OutcomeOf(err) {
	case gridpb.Outcome_OUTCOME_NOT_FOUND:
		return notFound(what, id)
	case gridpb.Outcome_OUTCOME_BELOW_RESERVED:
		return &Problem{Status: http.StatusConflict, Name: "below-reserved", Title: "Stock below reservations", Detail: failure.Detail(err),
			Errors: []*pb.FieldViolation{{Field: "on_hand", Detail: "below what is reserved"}}}
	}
	switch kind, field := failure.Of(err); kind {
	case failure.Invalid:
		return invalid(&pb.FieldViolation{Field: cmp.Or(field, bodyField), Detail: failure.Detail(err)})
	case failure.TooLarge:
		return &Problem{Status: http.StatusRequestEntityTooLarge, Name: "too-large", Title: "Too large for one log entry",
			Detail: fmt.Sprintf("the %s does not fit in one Raft entry (%d bytes at most): send fewer or smaller orders", what, cluster.CommandBytesMax)}
	case failure.Internal:
		return internalProblem(fmt.Sprintf("%s %s: %s", what, id, failure.Detail(err)))
	}
	return unavailable("the order grid could not complete the call in time; retry with the same idempotency key")
}

func (s *Service) createOrder(ctx context.Context, req *pb.CreateOrderRequest) (*pb.CreateOrderResponse, int, *Problem) {
	if p := allow(ctx, "creating orders", RoleIntake); p != nil {
		return nil, 0, p
	}
	if v := validateCreateOrder(req, s.limits, ""); len(v) > 0 {
		s.metrics.rejects.WithLabelValues("invalid").Inc()
		return nil, 0, invalid(v...)
	}
	if p := allowChannel(ctx, req.Channel, "channel"); p != nil {
		return nil, 0, p
	}
	return s.createValid(ctx, req)
}

func (s *Service) createValid(ctx context.Context, req *pb.CreateOrderRequest) (*pb.CreateOrderResponse, int, *Problem) {
	w, p := s.submit(ctx, req)
	if p != nil {
		return nil, 0, p
	}
	return s.answer(ctx, req, w)
}

// submit queues a valid order for its partition's next intake batch.
func (s *Service) submit(ctx context.Context, req *pb.CreateOrderRequest) (*intake.Pending, *Problem) {
	id := intake.OrderID(req)
	w, err := s.intake.Submit(&gridpb.CreateOrderGrainRequest{Request: req, Principal: principalName(ctx), OrderId: id})
	if errors.Is(err, intake.ErrQueueFull) {
		s.metrics.rejects.WithLabelValues("overloaded").Inc()
		return nil, overloaded()
	}
	if err != nil {
		return nil, s.grainProblem(err, "order", id)
	}
	return w, nil
}

// answer waits for a submitted order's outcome and maps it to the API's.
func (s *Service) answer(ctx context.Context, req *pb.CreateOrderRequest, w *intake.Pending) (*pb.CreateOrderResponse, int, *Problem) {
	id := w.OrderID()
	res, err := w.Wait(ctx)
	if err != nil {
		return nil, 0, s.grainProblem(err, "order", id)
	}
	return s.created(req, id, res)
}

// created maps a creation's outcome to the API's answer.
func (s *Service) created(req *pb.CreateOrderRequest, id string, res *gridpb.OrderGrainResponse) (*pb.CreateOrderResponse, int, *Problem) {
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK:
		s.metrics.orders.WithLabelValues("created").Inc()
		s.metrics.observed.ordersAccepted(1)
		return &pb.CreateOrderResponse{Order: orderView(res.Order)}, http.StatusCreated, nil
	case gridpb.Outcome_OUTCOME_REPLAYED:
		s.metrics.orders.WithLabelValues("replayed").Inc()
		return &pb.CreateOrderResponse{Order: orderView(res.Order), Replayed: true}, http.StatusOK, nil
	case gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK:
		s.metrics.rejects.WithLabelValues("insufficient_stock").Inc()
		return nil, 0, &Problem{Status: http.StatusConflict, Name: "insufficient-stock", Title: "Insufficient stock",
			Detail: res.Detail, SKU: res.Sku, Errors: lineOfSKU(req, res.Sku)}
	case gridpb.Outcome_OUTCOME_UNROUTABLE:
		s.metrics.rejects.WithLabelValues("unroutable").Inc()
		errs := lineOfSKU(req, res.Sku)
		if len(errs) == 0 {
			errs = []*pb.FieldViolation{{Field: "lines", Detail: res.Detail}}
		}
		for _, e := range errs {
			e.Detail = res.Detail
		}
		return nil, 0, &Problem{Status: http.StatusConflict, Name: "unroutable", Title: "No warehouse can ship this order",
			Detail: res.Detail + " (GET /v1/warehouses shows the warehouses and their state)", SKU: res.Sku, Errors: errs}
	case gridpb.Outcome_OUTCOME_LIMIT_EXCEEDED:
		s.metrics.rejects.WithLabelValues("purchase_limit").Inc()
		var errs []*pb.FieldViolation
		for i, l := range req.Lines {
			if l.Sku == res.Sku {
				errs = append(errs, &pb.FieldViolation{Field: "lines[" + itoa(i) + "].qty", Detail: res.Detail})
				break
			}
		}
		if len(errs) == 0 {
			errs = []*pb.FieldViolation{{Field: "lines", Detail: res.Detail}}
		}
		return nil, 0, &Problem{Status: http.StatusUnprocessableEntity, Name: "purchase-limit", Title: "Purchase limit reached",
			Detail: res.Detail + " (GET /v1/limits lists the limits)", SKU: res.Sku, Errors: errs}
	case gridpb.Outcome_OUTCOME_REFUSED:
		s.metrics.rejects.WithLabelValues("screened").Inc()
		var errs []*pb.FieldViolation
		for _, f := range res.Findings {
			errs = append(errs, &pb.FieldViolation{Field: findingField(f.Code), Detail: f.Code + ": " + f.Detail})
		}
		return nil, 0, &Problem{Status: http.StatusUnprocessableEntity, Name: "refused-at-intake", Title: "Refused at intake",
			Detail: res.Detail, Errors: errs}
	case gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT:
		s.metrics.rejects.WithLabelValues("idempotency_conflict").Inc()
		return nil, 0, &Problem{Status: http.StatusConflict, Name: "idempotency-conflict", Title: "Idempotency key reused",
			Detail: res.Detail, Errors: []*pb.FieldViolation{{Field: "idempotency_key", Detail: "already used with a different request for order " + res.Order.GetId()}}}
	default:
		// An outcome creation never has: a broken invariant, not a reason to retry.
		s.logger.Error("order creation: unexpected outcome", slog.String("id", id), slog.String("outcome", res.Outcome.String()), slog.String("detail", res.Detail))
		return nil, 0, internalProblem("order " + id + ": unexpected outcome " + res.Outcome.String() + ": " + res.Detail)
	}
}

// findingField is the request field a refusal's finding is about.
func findingField(code string) string {
	switch {
	case strings.HasPrefix(code, "address_"), code == "po_box", code == "bonded_zone", code == "region_unserved":
		return "customer.address"
	case strings.HasPrefix(code, "limit_"):
		return "lines"
	default:
		return "order"
	}
}

func lineOfSKU(req *pb.CreateOrderRequest, sku string) []*pb.FieldViolation {
	for i, l := range req.Lines {
		if l.Sku == sku {
			return []*pb.FieldViolation{{Field: "lines[" + itoa(i) + "].sku", Detail: "not enough stock of " + sku}}
		}
	}
	return nil
}

// batchCreate creates the orders of a batch request, each answered on its
// own; malformed holds the orders the decoder already refused, by index.
func (s *Service) batchCreate(ctx context.Context, req *pb.BatchCreateOrdersRequest, malformed map[int]*Problem) (*pb.BatchCreateOrdersResponse, *Problem) {
	if p := allow(ctx, "creating orders", RoleIntake); p != nil {
		return nil, p
	}
	if len(req.Orders) == 0 {
		return nil, invalid(&pb.FieldViolation{Field: "orders", Detail: "must have at least one order"})
	}
	if len(req.Orders) > s.limits.BatchMax {
		return nil, invalid(&pb.FieldViolation{Field: "orders", Detail: "has " + itoa(len(req.Orders)) + " orders, at most " + itoa(s.limits.BatchMax) + " allowed"})
	}
	// Every valid order goes into its partition's queue at once, then each
	// is awaited: the batch's orders share intake batches.
	out := &pb.BatchCreateOrdersResponse{Results: make([]*pb.BatchCreateOrderResult, len(req.Orders))}
	waits := make([]*intake.Pending, len(req.Orders))
	for i, o := range req.Orders {
		if p := malformed[i]; p != nil {
			s.metrics.rejects.WithLabelValues("malformed").Inc()
			out.Results[i] = problemResult(p)
			continue
		}
		prefix := "orders[" + itoa(i) + "]."
		if p := s.checkOne(ctx, o, prefix); p != nil {
			out.Results[i] = problemResult(p)
			continue
		}
		w, p := s.submit(ctx, o)
		if p != nil {
			out.Results[i] = problemResult(p)
			continue
		}
		waits[i] = w
	}
	for i, w := range waits {
		if w != nil {
			out.Results[i] = s.resultOf(s.answer(ctx, req.Orders[i], w))
		}
	}
	return out, nil
}

// createOne creates one order of a batch or a stream and answers its
// result: the status it would have had alone, with the order or the
// problem. prefix names the order's fields in violations.
func (s *Service) createOne(ctx context.Context, o *pb.CreateOrderRequest, prefix string) *pb.BatchCreateOrderResult {
	if p := s.checkOne(ctx, o, prefix); p != nil {
		return problemResult(p)
	}
	return s.resultOf(s.createValid(ctx, o))
}

// checkOne validates one order of a batch or a stream: its problem, or nil.
func (s *Service) checkOne(ctx context.Context, o *pb.CreateOrderRequest, prefix string) *Problem {
	if o == nil {
		return invalid(&pb.FieldViolation{Field: strings.TrimSuffix(prefix, "."), Detail: "must be an object"})
	}
	if v := validateCreateOrder(o, s.limits, prefix); len(v) > 0 {
		s.metrics.rejects.WithLabelValues("invalid").Inc()
		return invalid(v...)
	}
	return allowChannel(ctx, o.Channel, prefix+"channel")
}

func problemResult(p *Problem) *pb.BatchCreateOrderResult {
	return &pb.BatchCreateOrderResult{Status: int32(p.Status), Problem: p.Proto()}
}

func (s *Service) resultOf(resp *pb.CreateOrderResponse, code int, p *Problem) *pb.BatchCreateOrderResult {
	if p != nil {
		return problemResult(p)
	}
	return &pb.BatchCreateOrderResult{Status: int32(code), Order: resp.Order}
}

// getOrder reads an order; with includePersonal also its customer's
// personal fields, opened by the subject's grain, which records the read
// (principal, purpose) in the audit log first.
//
// Only compliance and admin may ask for the personal fields: anyone else
// who asks gets 403 naming include_personal, before the order is read.
func (s *Service) getOrder(ctx context.Context, id string, includePersonal bool, purpose string) (*pb.Order, *Problem) {
	if includePersonal {
		if p := allow(ctx, "reading personal fields", RoleCompliance); p != nil {
			p.Errors = []*pb.FieldViolation{{Field: "include_personal", Detail: "personal fields are for roles compliance and admin"}}
			return nil, p
		}
	}
	o, p := s.readOrder(ctx, id)
	if p != nil {
		return nil, p
	}
	v := orderView(o)
	if len(o.Personal) == 0 || o.Customer.GetId() == "" {
		return v, nil
	}
	v.Customer = &pb.Customer{Id: o.Customer.Id, Withheld: true}
	if !includePersonal {
		return v, nil
	}
	res, err := s.grid.OpenPersonal(ctx, o.Customer.Id, &gridpb.OpenPersonalRequest{OrderIds: []string{o.Id}, Sealed: [][]byte{o.Personal},
		Principal: principalName(ctx), Purpose: purpose})
	if err != nil {
		return nil, s.grainProblem(err, "order", id)
	}
	if res.Erased {
		v.Customer = &pb.Customer{Id: o.Customer.Id, Erased: true}
		return v, nil
	}
	f := res.Fields[0]
	v.Customer = &pb.Customer{Id: o.Customer.Id, Name: f.Name, Phone: f.Phone, Address: f.Address, IdNumber: f.IdNumber, Email: f.Email}
	return v, nil
}

// readOrder reads an order for a caller allowed to see it: ops,
// compliance, admin, or a partner of the order's channel (another
// partner's order is 403, after the read: a partner learns only that the
// id exists, which the id, a hash, does not give away).
func (s *Service) readOrder(ctx context.Context, id string) (*gridpb.OrderRecord, *Problem) {
	if p := allow(ctx, "reading orders", RoleOps, RoleCompliance, RolePartner); p != nil {
		return nil, p
	}
	if !validOrderID(id) {
		return nil, notFound("order", id)
	}
	res, err := s.grid.GetOrder(ctx, id)
	if err != nil {
		return nil, s.grainProblem(err, "order", id)
	}
	if res.Outcome == gridpb.Outcome_OUTCOME_NOT_FOUND {
		a, archived, err := s.archives.ReadArchived(id)
		if err != nil {
			return nil, s.grainProblem(err, "order", id)
		}
		if !archived {
			return nil, notFound("order", id)
		}
		if p := allowChannel(ctx, a.Channel, ""); p != nil {
			return nil, forbidden(PrincipalOf(ctx), "order "+id+" is another channel's")
		}
		return nil, archivedProblem(a)
	}
	if p := allowChannel(ctx, res.Order.Channel, ""); p != nil {
		return nil, forbidden(PrincipalOf(ctx), "order "+id+" is another channel's")
	}
	return res.Order, nil
}

// archivedProblem answers a read of an order retention archived: 410.
func archivedProblem(a *gridpb.ArchivedOrderRecord) *Problem {
	return &Problem{Status: http.StatusGone, Name: "archived", Title: "Order archived",
		Detail: fmt.Sprintf("order %s (%s) was archived at %s to %s; its proofs are still served, POST /v1/admin/archives/restore brings it back",
			a.Id, a.Status, timeString(a.ArchivedUnixNano), a.Archive), CurrentStatus: a.Status}
}

func (s *Service) listEvents(ctx context.Context, id string) (*pb.ListOrderEventsResponse, *Problem) {
	if _, p := s.readOrder(ctx, id); p != nil {
		return nil, p
	}
	evs, err := s.grid.OrderEvents(id)
	if err != nil {
		return nil, s.grainProblem(err, "order", id)
	}
	return &pb.ListOrderEventsResponse{OrderId: id, Events: eventViews(evs)}, nil
}

func (s *Service) addEvent(ctx context.Context, req *pb.OrderEventRequest) (*pb.Order, *Problem) {
	if p := allow(ctx, "recording order events", RoleOps); p != nil {
		return nil, p
	}
	if !validOrderID(req.Id) {
		return nil, notFound("order", req.Id)
	}
	if v := validateEvent(req); len(v) > 0 {
		return nil, invalid(v...)
	}
	res, err := s.intake.Event(ctx, &gridpb.OrderEventGrainRequest{Event: req, Principal: principalName(ctx)})
	if errors.Is(err, intake.ErrQueueFull) {
		s.metrics.rejects.WithLabelValues("overloaded").Inc()
		return nil, overloaded()
	}
	if err != nil {
		return nil, s.grainProblem(err, "order", req.Id)
	}
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK, gridpb.Outcome_OUTCOME_REPLAYED:
		return orderView(res.Order), nil
	case gridpb.Outcome_OUTCOME_NOT_FOUND:
		return nil, notFound("order", req.Id)
	case gridpb.Outcome_OUTCOME_EXPIRED:
		return nil, &Problem{Status: http.StatusConflict, Name: "payment-window-closed", Title: "Payment window closed",
			Detail: res.Detail, CurrentStatus: res.Order.GetStatus()}
	default:
		cur := res.Order.GetStatus()
		return nil, &Problem{Status: http.StatusConflict, Name: "illegal-transition", Title: "Illegal transition",
			Detail: "order is " + cur + ": " + res.Detail, CurrentStatus: cur,
			Errors: []*pb.FieldViolation{{Field: "type", Detail: "not allowed from status " + cur}}}
	}
}

func (s *Service) setStock(ctx context.Context, req *pb.SetStockRequest) (*pb.SkuStock, *Problem) {
	if p := allow(ctx, "setting stock", RoleOps); p != nil {
		return nil, p
	}
	var v violations
	v.name("sku", req.Sku)
	v.name("warehouse", req.Warehouse)
	if req.OnHand < 0 || req.OnHand > 1_000_000_000_000 {
		v.add("on_hand", "must be 0..1000000000000, got %d", req.OnHand)
	}
	if len(v) > 0 {
		return nil, invalid(v...)
	}
	known, err := s.routing.KnowsWarehouse(req.Warehouse)
	if err != nil {
		return nil, s.grainProblem(err, "warehouse", req.Warehouse)
	}
	if !known {
		return nil, invalid(&pb.FieldViolation{Field: "warehouse", Detail: fmt.Sprintf(
			"unknown warehouse %q: warehouses are registered, so stock goes only to those (PUT /v1/warehouses/%s first)", req.Warehouse, req.Warehouse)})
	}
	st, err := s.grid.SetStock(ctx, req, principalName(ctx))
	if err != nil {
		return nil, s.grainProblem(err, "sku", req.Sku)
	}
	return st, nil
}

func (s *Service) getSku(ctx context.Context, sku string) (*pb.SkuStock, *Problem) {
	if p := allow(ctx, "reading stock", RoleOps, RoleIntake, RoleCompliance); p != nil {
		return nil, p
	}
	if !namePattern.MatchString(sku) {
		return nil, notFound("sku", sku)
	}
	st, err := s.grid.GetStock(ctx, sku)
	if err != nil {
		return nil, s.grainProblem(err, "sku", sku)
	}
	return st, nil
}

func (s *Service) listSkuEvents(ctx context.Context, sku string) (*pb.ListSkuEventsResponse, *Problem) {
	if _, p := s.getSku(ctx, sku); p != nil {
		return nil, p
	}
	evs, err := s.grid.SkuEvents(sku)
	if err != nil {
		return nil, s.grainProblem(err, "sku", sku)
	}
	return &pb.ListSkuEventsResponse{Sku: sku, Events: eventViews(evs)}, nil
}

func eventViews(evs []*gridpb.EventRecord) []*pb.OrderEvent {
	out := make([]*pb.OrderEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, &pb.OrderEvent{Seq: e.Seq, Type: e.Type, At: timeString(e.AtUnixNano),
			Principal: e.Principal, Status: e.Status, Details: e.Details})
	}
	return out
}

func timeString(unixNano int64) string {
	if unixNano == 0 {
		return ""
	}
	return time.Unix(0, unixNano).UTC().Format(time.RFC3339Nano)
}

func orderView(o *gridpb.OrderRecord) *pb.Order {
	if o == nil {
		return nil
	}
	customer := o.Customer
	if len(o.Personal) > 0 {
		customer = &pb.Customer{Id: o.Customer.GetId(), Withheld: true}
	}
	v := &pb.Order{Id: o.Id, Status: o.Status, Channel: o.Channel, ChannelOrderId: o.ChannelOrderId, Customer: customer,
		Currency: o.Currency, Total: o.Total, Version: o.Version, CreatedAt: timeString(o.CreatedUnixNano),
		UpdatedAt: timeString(o.UpdatedUnixNano), PayBy: timeString(o.PayByUnixNano), IdempotencyKey: o.IdempotencyKey,
		ShipmentCarrier: o.ShipmentCarrier, ShipmentTracking: o.ShipmentTracking,
		DeliveryRegion: o.Region, CustomerTier: o.Tier, PromisedBy: timeString(o.PromiseUnixNano),
		RequiredCapabilities: o.Capabilities, RoutingStrategy: o.RoutingStrategy, ChannelFields: o.ChannelFields,
		Adjustments: o.Adjustments, AmountDue: cmp.Or(o.AmountDue, o.Total)}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, &pb.OrderLine{Sku: l.Sku, Qty: l.Qty, UnitPrice: l.UnitPrice, Warehouse: l.Warehouse})
	}
	if h := o.Hold; h != nil {
		v.Hold = &pb.OrderHold{Reason: h.Reason, Findings: findingsView(h.Findings), HeldAt: timeString(h.HeldUnixNano),
			Until: timeString(h.UntilUnixNano), Decision: h.Decision, DecidedBy: h.DecidedBy, DecisionReason: h.DecisionReason,
			DecidedAt: timeString(h.DecidedUnixNano)}
	}
	if r := o.Risk; r != nil {
		v.RiskScore, v.RiskVerdict = r.Score, r.Verdict
	}
	return v
}

func findingsView(fs []*pb.HoldFinding) []*pb.HoldFinding {
	out := make([]*pb.HoldFinding, len(fs))
	for i, f := range fs {
		out[i] = &pb.HoldFinding{Code: f.Code, Detail: f.Detail}
	}
	return out
}

// eraseSubject erases a data subject: its data key goes on every replica,
// its orders stay with their personal fields shown as erased, and the
// erasure is recorded in the audit log.
func (s *Service) eraseSubject(ctx context.Context, id string) (*pb.SubjectErasure, *Problem) {
	if p := allow(ctx, "erasing subjects", RoleCompliance); p != nil {
		return nil, p
	}
	var v violations
	v.text("id", id, true, 128)
	if len(v) > 0 {
		return nil, invalid(v...)
	}
	ts, err := s.grid.EraseSubject(ctx, id, principalName(ctx))
	switch failure.OutcomeOf(err) {
	case gridpb.Outcome_OUTCOME_UNSPECIFIED:
	case gridpb.Outcome_OUTCOME_NOT_FOUND:
		return nil, notFound("subject", id)
	case gridpb.Outcome_OUTCOME_ERASED:
		return nil, &Problem{Status: http.StatusConflict, Name: "already-erased", Title: "Subject already erased",
			Detail: "subject " + strconv.Quote(id) + " is erased already: nothing of it is left to erase",
			Errors: []*pb.FieldViolation{{Field: "id", Detail: "already erased"}}}
	}
	if err != nil {
		return nil, s.grainProblem(err, "subject", id)
	}
	s.metrics.orders.WithLabelValues("subject_erased").Inc()
	return &pb.SubjectErasure{Subject: ts.Subject, ErasedAt: timeString(ts.ErasedUnixNano), Principal: ts.Principal, OrderIds: ts.OrderIds}, nil
}
