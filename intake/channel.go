package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"

	"github.com/ordergrid/ordergrid/channels"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// The channel-order workflow: an order a platform pushed, verified and
// mapped by the transport, is shaped into the order to create (receiver
// fields the platform masked are opened when a decrypter is configured,
// the channel's extra fields and discounts kept on the order) and checked
// before anything is written; then it is taken in six steps, each
// idempotent so a retry of the platform's push finishes what a crash
// interrupted: the buyer is resolved to one customer across channels, the
// order is created through the batched path, the purchase is noted against
// the customer's recent ones (a cross-channel duplicate is merged, held or
// accepted by policy, and both orders say so), and every line's price is
// noted against the other channels' recent prices (a conflict is an event
// on the order).

// ChannelGrid is what the channel workflow needs of the grid besides
// batches: its records (ChannelStore in a node, over the partitions).
type ChannelGrid interface {
	// ResolveCustomer names the customer behind fingerprints, strongest first.
	ResolveCustomer(ctx context.Context, keys []channels.IdentityKey) (string, error)
	// NotePurchase records a purchase and answers its duplicate verdict.
	NotePurchase(ctx context.Context, customer string, p *gridpb.PurchaseRecord, window time.Duration) (*gridpb.PurchaseRecord, error)
	// NotePrice records a channel's price and answers the conflict it makes.
	NotePrice(ctx context.Context, sku string, p *gridpb.ChannelPrice, window time.Duration, rule string) (*gridpb.PriceConflictRecord, error)
	// AnnotateOrder adds an event to an order, once per dedupe key.
	AnnotateOrder(ctx context.Context, id, typ string, details map[string]string, dedupe, principal string) error
	// ReadOrder reads an order as committed.
	ReadOrder(id string) (*gridpb.OrderRecord, bool, error)
}

// ChannelOptions configure a ChannelFlow.
type ChannelOptions struct {
	// Config holds the merge and price rules (channels.file). nil: the
	// defaults of an empty file.
	Config *channels.Config
	// IdentityKey keys the customer fingerprints (32 bytes).
	IdentityKey []byte
	// Decrypter opens encrypted receiver fields; nil: they stay masked.
	Decrypter channels.Decrypter
	// Logger hears of receiver fields that could not be opened (the order
	// keeps the masked ones). nil: slog's default.
	Logger *slog.Logger
}

// ChannelFlow runs the channel-order workflow over a pipeline and a grid.
type ChannelFlow struct {
	orders *Pipeline
	grid   ChannelGrid
	opts   ChannelOptions
}

// NewChannelFlow returns the workflow creating orders through orders.
func NewChannelFlow(orders *Pipeline, grid ChannelGrid, opts ChannelOptions) *ChannelFlow {
	if opts.Config == nil {
		opts.Config = &channels.Config{}
		_ = opts.Config.Validate() // fills the defaults; an empty file is valid
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &ChannelFlow{orders: orders, grid: grid, opts: opts}
}

// ChannelOrder is one pushed order, verified and mapped by its channel's
// adapter.
type ChannelOrder struct {
	// Mapped is the push as the adapter mapped it; the workflow shapes
	// Mapped.Request into the order it creates.
	Mapped *channels.Mapped
	// Principal is the pushing connection, named in the audit log.
	Principal string
	// TakeStored goes on with the order stored under this channel order id
	// when it was created from another body (an IDEMPOTENCY_CONFLICT): a
	// fetch attempt reads the platform again, and the order may have moved
	// on there (paid, its receiver opened) since the attempt that created
	// it. The answer keeps the conflict outcome; the steps after creation
	// run with the stored order.
	TakeStored bool
	// DecryptRetry, when set, picks the decryption failures worth a retry
	// of the whole workflow (the platform throttled or failed for now): Take
	// then answers a *StepError (What "receiver") before anything is
	// written, rather than keeping the masked fields. Other failures (no
	// permission, a platform without the call) keep them.
	DecryptRetry func(error) bool
	// Connection is the connection the order came through: the decrypter
	// opens its receiver fields through it. nil: they stay as received.
	Connection *channels.Connection
	// Check validates the order to create (its customer id still a
	// placeholder, UnresolvedCustomer) before anything is written: an
	// error refuses the push and Take returns it as it is.
	Check func(*pb.CreateOrderRequest) error
}

// UnresolvedCustomer is the customer id of an order to create while it is
// checked, before its buyer is resolved.
const UnresolvedCustomer = "cu_unresolved"

// ChannelResult is what the workflow did.
type ChannelResult struct {
	// Request is the order created: the mapped request with the channel's
	// fields and the customer.
	Request    *pb.CreateOrderRequest
	CustomerID string
	// Created is the creation's answer. Unless it is OK or REPLAYED the
	// workflow stopped there and Order is nil.
	Created *gridpb.OrderGrainResponse
	// Order is the order as the workflow left it.
	Order *gridpb.OrderRecord
	// Duplicate is the order's cross-channel duplicate verdict, if any.
	Duplicate *Duplicate
	// PriceConflicts are the conflicts this order's prices made ("SKU: resolution").
	PriceConflicts []string
	// Skipped says why the order was not taken at all (cancelled at the
	// platform before the grid took it); then Created and Order are nil.
	Skipped string
}

// Duplicate is a cross-channel duplicate: the earlier order, its channel
// and the policy applied (merge, hold, accept).
type Duplicate struct {
	Of, Channel, Policy string
}

// StepError is a grid call of the workflow that failed (What names the
// kind of thing it was about: customer, order, sku; ID which one). A
// retry of the whole push finishes the workflow.
type StepError struct {
	What, ID string
	Err      error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("channel order: %s %s: %v", e.What, e.ID, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

// TransitionError is a duplicate's status change the order's state refused.
type TransitionError struct {
	OrderID, Status, Detail, CurrentStatus string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("order %s could not become %s: %s", e.OrderID, e.Status, e.Detail)
}

// Take runs the workflow for one pushed order. An error is Check's, a
// *StepError, a *TransitionError, ErrQueueFull, or ctx's.
func (f *ChannelFlow) Take(ctx context.Context, in *ChannelOrder) (*ChannelResult, error) {
	m := in.Mapped
	req, err := f.shape(ctx, in, m)
	if err != nil {
		return nil, err
	}
	if in.Check != nil {
		if err := in.Check(req); err != nil {
			return nil, err
		}
	}
	ch := req.Channel
	if m.Cancelled {
		// Cancelled at the platform: an order the grid has not taken is
		// not created (nothing to reserve, nothing to ship).
		_, found, err := f.grid.ReadOrder(OrderID(req))
		if err != nil {
			return nil, &StepError{What: "order", ID: OrderID(req), Err: err}
		}
		if !found {
			return &ChannelResult{Request: req, Skipped: "cancelled at the platform before the grid took it"}, nil
		}
	}
	keys := channels.IdentityKeys(m, f.opts.IdentityKey)
	if len(keys) == 0 {
		// Nothing identifies the buyer: a customer of this order alone.
		h := sha256.Sum256([]byte(ch + "\x00" + req.ChannelOrderId))
		keys = []channels.IdentityKey{{Kind: "order", Hash: hex.EncodeToString(h[:])}}
	}
	customer, err := f.grid.ResolveCustomer(ctx, keys)
	if err != nil {
		return nil, &StepError{What: "customer", Err: err}
	}
	if req.Customer == nil {
		req.Customer = &pb.Customer{}
	}
	req.Customer.Id = customer
	out := &ChannelResult{Request: req, CustomerID: customer}

	id := OrderID(req)
	created, err := f.orders.Create(ctx, &gridpb.CreateOrderGrainRequest{Request: req, Principal: in.Principal, OrderId: id})
	if errors.Is(err, ErrQueueFull) {
		return nil, err
	}
	if err != nil {
		return nil, &StepError{What: "order", ID: id, Err: err}
	}
	out.Created = created
	// A body that differs from the one the order was created from is that
	// order when the caller takes stored orders (a fetch), or when it sells
	// the same lines and the platform moved it on in a way the grid follows
	// (paid, cancelled) or the order is already there; otherwise it is the
	// conflict a retry with another body is.
	conflict := created.Outcome == gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT && created.Order != nil
	taken := created.Outcome == gridpb.Outcome_OUTCOME_OK || created.Outcome == gridpb.Outcome_OUTCOME_REPLAYED ||
		(conflict && (in.TakeStored ||
			(sameLines(req.Lines, created.Order.Lines) && (platformMove(m, created.Order.Status) != "" || platformAgrees(m, created.Order.Status)))))
	if !taken {
		return out, nil
	}
	o := created.Order

	placed := m.PlacedAt
	if placed.IsZero() {
		placed = time.Now()
	}
	skus := make([]string, 0, len(req.Lines))
	for _, l := range req.Lines {
		skus = append(skus, l.Sku)
	}
	noted, err := f.grid.NotePurchase(ctx, customer, &gridpb.PurchaseRecord{OrderId: o.Id, Channel: ch, Skus: skus, AtUnixNano: placed.UnixNano()},
		f.opts.Config.Merge.Window)
	if err != nil {
		return nil, &StepError{What: "order", ID: o.Id, Err: err}
	}
	if noted.DuplicateOf != "" {
		policy := f.opts.Config.Policy(noted.DuplicateChannel, ch)
		out.Duplicate = &Duplicate{Of: noted.DuplicateOf, Channel: noted.DuplicateChannel, Policy: policy}
		if err := f.applyDuplicate(ctx, in, o.Id, noted, policy); err != nil {
			return nil, err
		}
		rec, found, err := f.grid.ReadOrder(o.Id)
		if err == nil && !found {
			err = fmt.Errorf("order %s not found after its creation", o.Id)
		}
		if err != nil {
			return nil, &StepError{What: "order", ID: o.Id, Err: err}
		}
		o = rec
	}
	if move := platformMove(m, o.Status); move != "" {
		reason := "cancelled on " + ch // its stock released, not shipped
		if move == lifecycle.StatusPaid {
			reason = fmt.Sprintf("paid on %s at %s", ch, m.PaidAt.UTC().Format(time.RFC3339))
		}
		if err := f.moveTo(ctx, in.Principal, o.Id, move, reason); err != nil {
			return nil, err
		}
		rec, found, err := f.grid.ReadOrder(o.Id)
		if err == nil && !found {
			err = fmt.Errorf("order %s not found after its creation", o.Id)
		}
		if err != nil {
			return nil, &StepError{What: "order", ID: o.Id, Err: err}
		}
		o = rec
	}

	for _, l := range uniqueLines(req.Lines) {
		c, err := f.grid.NotePrice(ctx, l.Sku, &gridpb.ChannelPrice{Channel: ch, UnitPrice: l.UnitPrice, Currency: req.Currency, OrderId: o.Id,
			AtUnixNano: placed.UnixNano()}, f.opts.Config.Prices.Window, f.opts.Config.Prices.Rule)
		if err != nil {
			return nil, &StepError{What: "sku", ID: l.Sku, Err: err}
		}
		if c == nil {
			continue
		}
		out.PriceConflicts = append(out.PriceConflicts, c.Sku+": "+c.Resolution)
		details := map[string]string{"sku": c.Sku, "other_order": c.First.OrderId, "other_channel": c.First.Channel,
			"other_price": c.First.UnitPrice, "price": c.Second.UnitPrice, "rule": c.Rule, "resolution": c.Resolution}
		if err := f.grid.AnnotateOrder(ctx, o.Id, "price_conflict", details, "price/"+c.Sku, in.Principal); err != nil {
			return nil, &StepError{What: "order", ID: o.Id, Err: err}
		}
	}
	out.Order = o
	return out, nil
}

// platformMove is the status an order in status gets because the platform
// moved it on: cancelled (while its status allows), or paid (from
// pending payment: a merged or held duplicate is not); "" for none.
func platformMove(m *channels.Mapped, status string) string {
	switch {
	case m.Cancelled && lifecycle.CanTransition(status, lifecycle.StatusCancelled):
		return lifecycle.StatusCancelled
	case !m.Cancelled && !m.PaidAt.IsZero() && status == lifecycle.StatusPendingPayment:
		return lifecycle.StatusPaid
	default:
		return ""
	}
}

// sameLines reports whether an order's lines are the ones asked: what it
// sells did not change, whatever else the platform's answer did.
func sameLines(asked []*pb.OrderLineInput, stored []*gridpb.OrderLineRecord) bool {
	if len(asked) != len(stored) {
		return false
	}
	for i, l := range asked {
		s := stored[i]
		if l.Sku != s.Sku || l.Qty != s.Qty || l.UnitPrice != s.UnitPrice {
			return false
		}
	}
	return true
}

// platformAgrees reports whether an order in status already is what the
// platform says it became (cancelled, or paid): a push of that sent again.
func platformAgrees(m *channels.Mapped, status string) bool {
	if m.Cancelled {
		return status == lifecycle.StatusCancelled
	}
	return !m.PaidAt.IsZero() && status == lifecycle.StatusPaid
}

// shape is the order a push creates: the mapped request with the
// receiver fields opened (when a decrypter is configured and the platform
// masked them), the channel's fields, and the customer a placeholder until
// the buyer is resolved.
func (f *ChannelFlow) shape(ctx context.Context, in *ChannelOrder, m *channels.Mapped) (*pb.CreateOrderRequest, error) {
	req, conn := m.Request, in.Connection
	if f.opts.Decrypter != nil && conn != nil && m.Masked {
		if err := f.opts.Decrypter.Decrypt(ctx, conn, m); err != nil {
			if in.DecryptRetry != nil && in.DecryptRetry(err) {
				return nil, &StepError{What: "receiver", ID: req.ChannelOrderId, Err: err}
			}
			f.opts.Logger.Warn("decrypting receiver fields; the order keeps the masked ones", slog.String("channel", req.Channel),
				slog.String("connection", conn.Name), slog.Any("error", err))
		}
		req = m.Request
	}
	if req.Customer == nil {
		req.Customer = &pb.Customer{}
	}
	req.Customer.Id = UnresolvedCustomer
	req.ChannelFields = channelFields(m)
	req.Adjustments = adjustments(m)
	if req.DeviceId == "" {
		// Purchase limits per device and the risk score count it (by its keyed hash).
		req.DeviceId = m.DeviceID
	}
	return req, nil
}

// adjustments are the mapped discounts (by who funds them) and charges
// (tax, shipping) as the order's money: lines 1-based, 0 the whole order.
func adjustments(m *channels.Mapped) []*pb.Adjustment {
	if len(m.Discounts)+len(m.Charges) == 0 {
		return nil
	}
	out := make([]*pb.Adjustment, 0, len(m.Discounts)+len(m.Charges))
	for _, d := range m.Discounts {
		out = append(out, &pb.Adjustment{Kind: "discount", Amount: d.Amount, Line: int32(d.Line + 1), FundedBy: d.FundedBy, Detail: d.Kind})
	}
	for _, c := range m.Charges {
		out = append(out, &pb.Adjustment{Kind: c.Kind, Amount: c.Amount, Line: int32(c.Line + 1), Detail: c.Title})
	}
	return out
}

// channelFields keeps the channel's extra fields on the order (its
// discounts, tax and shipping are the order's adjustments).
func channelFields(m *channels.Mapped) map[string]string {
	out := make(map[string]string, len(m.Extra)+2)
	for k, v := range m.Extra {
		out[k] = v
	}
	if m.BuyerID != "" {
		h := sha256.Sum256([]byte(m.BuyerID))
		out["buyer_id_sha256"] = hex.EncodeToString(h[:8])
	}
	if !m.PlacedAt.IsZero() {
		out["placed_at"] = m.PlacedAt.UTC().Format(time.RFC3339)
	}
	return out
}

// applyDuplicate carries out a duplicate's policy: the later order is
// merged (released, one shipment, no second discount) or held, and both
// orders get an event saying so.
func (f *ChannelFlow) applyDuplicate(ctx context.Context, in *ChannelOrder, id string, noted *gridpb.PurchaseRecord, policy string) error {
	first, ch := noted.DuplicateOf, in.Mapped.Request.Channel
	reason := fmt.Sprintf("cross-channel duplicate of %s (%s): same customer, same SKUs within the merge window", first, noted.DuplicateChannel)
	note := map[string]string{"order": id, "channel": ch, "policy": policy}
	annotate := func(order, typ string, details map[string]string, dedupe string) error {
		if err := f.grid.AnnotateOrder(ctx, order, typ, details, dedupe, in.Principal); err != nil {
			return &StepError{What: "order", ID: order, Err: err}
		}
		return nil
	}
	switch policy {
	case channels.PolicyMerge:
		voided := ""
		for _, d := range in.Mapped.Discounts {
			voided += fmt.Sprintf("%s %s %s; ", d.Amount, d.FundedBy, d.Kind)
		}
		r := reason + "; merged: it ships with " + first
		if voided != "" {
			r += "; discounts not granted twice: " + voided
		}
		if err := f.moveTo(ctx, in.Principal, id, lifecycle.StatusMerged, r); err != nil {
			return err
		}
		note["discounts_voided"] = voided
		return annotate(first, "duplicate_merged", note, "dup/"+id)
	case channels.PolicyHold:
		if err := f.moveTo(ctx, in.Principal, id, lifecycle.StatusOnHold, reason+"; held for review"); err != nil {
			return err
		}
		return annotate(first, "duplicate_held", note, "dup/"+id)
	default:
		if err := annotate(id, "duplicate_accepted", map[string]string{"order": first, "channel": noted.DuplicateChannel, "policy": policy},
			"dup/"+first); err != nil {
			return err
		}
		return annotate(first, "duplicate_accepted", note, "dup/"+id)
	}
}

// moveTo adds a status event to an order through the batched events;
// already there is fine (a retry).
func (f *ChannelFlow) moveTo(ctx context.Context, principal, id, status, reason string) error {
	res, err := f.orders.Event(ctx, &gridpb.OrderEventGrainRequest{Principal: principal, Event: &pb.OrderEventRequest{Id: id, Type: status, Reason: reason}})
	if errors.Is(err, ErrQueueFull) {
		return err
	}
	if err != nil {
		return &StepError{What: "order", ID: id, Err: err}
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_OK && res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		return &TransitionError{OrderID: id, Status: status, Detail: res.Detail, CurrentStatus: res.Order.GetStatus()}
	}
	return nil
}

// uniqueLines is the first line of each SKU.
func uniqueLines(lines []*pb.OrderLineInput) []*pb.OrderLineInput {
	var out []*pb.OrderLineInput
	for _, l := range lines {
		if !slices.ContainsFunc(out, func(o *pb.OrderLineInput) bool { return o.Sku == l.Sku }) {
			out = append(out, l)
		}
	}
	return out
}
