package gateway

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/channels"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// ChannelIntake configures POST /v1/channels/{channel}/orders.
type ChannelIntake struct {
	Config *channels.Config
	// IdentityKey keys the customer fingerprints (32 bytes).
	IdentityKey []byte
	// Decrypter opens encrypted receiver fields; nil: they stay masked.
	Decrypter channels.Decrypter
}

type channelMetrics struct {
	orders     *prometheus.CounterVec
	rejects    *prometheus.CounterVec
	signatures *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	conflicts  *prometheus.CounterVec
}

func newChannelMetrics(reg prometheus.Registerer) *channelMetrics {
	m := &channelMetrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_orders_total",
			Help: "Channel orders taken in, by channel and result (created, replayed)."}, []string{"channel", "result"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_rejects_total",
			Help: "Channel orders refused, by channel and reason (signature, invalid, insufficient-stock, …)."}, []string{"channel", "reason"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_signature_failures_total",
			Help: "Channel requests whose signature did not verify."}, []string{"channel"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_duplicates_total",
			Help: "Cross-channel duplicates found, by the later order's channel and the policy applied (merge, hold, accept)."}, []string{"channel", "policy"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_price_conflicts_total",
			Help: "Prices of one SKU differing across channels within the window, by the later order's channel."}, []string{"channel"}),
	}
	if reg != nil {
		reg.MustRegister(m.orders, m.rejects, m.signatures, m.duplicates, m.conflicts)
	}
	return m
}

func (g *Gateway) channelRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	// Authenticated by the channel's signature, not a bearer token: the
	// platforms push with their own schemes.
	g.mux.Handle("POST /v1/channels/{channel}/orders", g.admitWith("POST /v1/channels/{channel}/orders", g.postChannelOrder, g.opts.RequestTimeout, false))
	api("GET /v1/customers/{id}", g.getCustomer)
	api("GET /v1/channels/price-conflicts", g.getPriceConflicts)
}

// channelOrderJSON answers a channel order.
type channelOrderJSON struct {
	Order      orderV         `json:"order"`
	CustomerID string         `json:"customer_id"`
	Duplicate  *duplicateJSON `json:"duplicate,omitempty"`
	// PriceConflicts are the conflicts this order's prices made.
	PriceConflicts []string `json:"price_conflicts,omitempty"`
}

type duplicateJSON struct {
	Of      string `json:"of"`
	Channel string `json:"channel"`
	Policy  string `json:"policy"`
}

func (g *Gateway) postChannelOrder(w http.ResponseWriter, r *http.Request) *Problem {
	ch := r.PathValue("channel")
	a, ok := channels.Adapters[ch]
	if !ok {
		return notFound("channel", ch)
	}
	ci := g.opts.Channels
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.BodyBytesMax))
	if err != nil {
		g.chMetrics.rejects.WithLabelValues(ch, "body-too-large").Inc()
		return &Problem{Status: http.StatusRequestEntityTooLarge, Name: "body-too-large", Title: "Body too large", Detail: err.Error()}
	}
	var conn *channels.Connection
	if ci != nil {
		conn, ok = ci.Config.Connection(ch, r.URL.Query().Get("connection"))
	}
	if ci == nil || !ok {
		g.chMetrics.signatures.WithLabelValues(ch).Inc()
		g.chMetrics.rejects.WithLabelValues(ch, "signature").Inc()
		return signatureProblem(fmt.Sprintf("no connection %q of channel %s is configured (channels.file)", r.URL.Query().Get("connection"), ch))
	}
	if err := a.Verify(&channels.Request{Header: r.Header, Query: r.URL.Query(), Body: raw, Now: time.Now()}, conn); err != nil {
		g.chMetrics.signatures.WithLabelValues(ch).Inc()
		g.chMetrics.rejects.WithLabelValues(ch, "signature").Inc()
		return signatureProblem(err.Error())
	}
	m, err := a.Map(raw)
	if err != nil {
		g.chMetrics.rejects.WithLabelValues(ch, "invalid").Inc()
		var fe *channels.FieldError
		if errors.As(err, &fe) {
			return invalid(&pb.FieldViolation{Field: fe.Field, Detail: fe.Detail})
		}
		return invalid(&pb.FieldViolation{Field: "body", Detail: err.Error()})
	}
	ctx := WithPrincipal(r.Context(), &Principal{Name: "channel:" + ch + "/" + cmp.Or(conn.Name, "default"), Role: RoleIntake, Channels: []string{ch}})
	if ci.Decrypter != nil && m.Masked {
		if err := ci.Decrypter.Decrypt(ctx, ch, m); err != nil {
			g.logger.Warn("decrypting receiver fields; the order keeps the masked ones", slog.String("channel", ch), slog.Any("error", err))
		}
	}
	req := m.Request
	if req.Customer == nil {
		req.Customer = &pb.Customer{}
	}
	// Checked before anything is written: a refused order leaves no trace.
	req.Customer.Id = "cu_unresolved"
	req.ChannelFields = channelFields(m)
	if v := validateCreateOrder(req, g.limits, ""); len(v) > 0 {
		g.chMetrics.rejects.WithLabelValues(ch, "invalid").Inc()
		for _, f := range v {
			f.Field = "mapped " + f.Field
		}
		return invalid(v...)
	}
	keys := channels.IdentityKeys(m, ci.IdentityKey)
	if len(keys) == 0 {
		// Nothing identifies the buyer: a customer of this order alone.
		h := sha256.Sum256([]byte(ch + "\x00" + req.ChannelOrderId))
		keys = []channels.IdentityKey{{Kind: "order", Hash: hex.EncodeToString(h[:])}}
	}
	customer, err := g.node.ResolveCustomer(ctx, keys)
	if err != nil {
		return g.grainProblem(err, "customer", "")
	}
	req.Customer.Id = customer
	res, code, p := g.createValid(ctx, req)
	if p != nil {
		g.chMetrics.rejects.WithLabelValues(ch, p.Name).Inc()
		return p
	}
	out := &channelOrderJSON{CustomerID: customer}
	o := res.Order
	placed := m.PlacedAt
	if placed.IsZero() {
		placed = time.Now()
	}
	var skus []string
	for _, l := range req.Lines {
		skus = append(skus, l.Sku)
	}
	noted, err := g.node.NotePurchase(ctx, customer, &pb.PurchaseRecord{OrderId: o.Id, Channel: ch, Skus: skus, AtUnixNano: placed.UnixNano()}, ci.Config.Merge.Window)
	if err != nil {
		return g.grainProblem(err, "order", o.Id)
	}
	if noted.DuplicateOf != "" {
		policy := ci.Config.Policy(noted.DuplicateChannel, ch)
		out.Duplicate = &duplicateJSON{Of: noted.DuplicateOf, Channel: noted.DuplicateChannel, Policy: policy}
		if o, p = g.applyDuplicate(ctx, o, m, noted, policy); p != nil {
			return p
		}
		if code == http.StatusCreated {
			g.chMetrics.duplicates.WithLabelValues(ch, policy).Inc()
		}
	}
	for _, l := range uniqueLines(req.Lines) {
		c, err := g.node.NotePrice(ctx, l.Sku, &pb.ChannelPrice{Channel: ch, UnitPrice: l.UnitPrice, Currency: req.Currency, OrderId: o.Id,
			AtUnixNano: placed.UnixNano()}, ci.Config.Prices.Window, ci.Config.Prices.Rule)
		if err != nil {
			return g.grainProblem(err, "sku", l.Sku)
		}
		if c != nil {
			g.chMetrics.conflicts.WithLabelValues(ch).Inc()
			out.PriceConflicts = append(out.PriceConflicts, c.Sku+": "+c.Resolution)
			details := map[string]string{"sku": c.Sku, "other_order": c.First.OrderId, "other_channel": c.First.Channel,
				"other_price": c.First.UnitPrice, "price": c.Second.UnitPrice, "rule": c.Rule, "resolution": c.Resolution}
			if err := g.node.AnnotateOrder(ctx, o.Id, "price_conflict", details, "price/"+c.Sku, principalName(ctx)); err != nil {
				return g.grainProblem(err, "order", o.Id)
			}
		}
	}
	result := "created"
	if code != http.StatusCreated {
		result = "replayed"
	}
	g.chMetrics.orders.WithLabelValues(ch, result).Inc()
	out.Order = orderJSON(o)
	writeJSON(w, code, out)
	return nil
}

// applyDuplicate carries out a duplicate's policy: the later order is
// merged (released, one shipment, no second discount) or held, and both
// orders get an event saying so. Every step is idempotent, so a retry of
// the channel's request finishes what a crash interrupted.
func (g *Gateway) applyDuplicate(ctx context.Context, o *pb.Order, m *channels.Mapped, noted *pb.PurchaseRecord, policy string) (*pb.Order, *Problem) {
	first, ch := noted.DuplicateOf, m.Request.Channel
	reason := fmt.Sprintf("cross-channel duplicate of %s (%s): same customer, same SKUs within the merge window", first, noted.DuplicateChannel)
	note := map[string]string{"order": o.Id, "channel": ch, "policy": policy}
	switch policy {
	case channels.PolicyMerge:
		voided := ""
		for _, d := range m.Discounts {
			voided += fmt.Sprintf("%s %s %s; ", d.Amount, d.FundedBy, d.Kind)
		}
		r := reason + "; merged: it ships with " + first
		if voided != "" {
			r += "; discounts not granted twice: " + voided
		}
		if err := g.moveTo(ctx, o.Id, statemachine.StatusMerged, r); err != nil {
			return nil, err
		}
		note["discounts_voided"] = voided
		if err := g.node.AnnotateOrder(ctx, first, "duplicate_merged", note, "dup/"+o.Id, principalName(ctx)); err != nil {
			return nil, g.grainProblem(err, "order", first)
		}
	case channels.PolicyHold:
		if err := g.moveTo(ctx, o.Id, statemachine.StatusOnHold, reason+"; held for review"); err != nil {
			return nil, err
		}
		if err := g.node.AnnotateOrder(ctx, first, "duplicate_held", note, "dup/"+o.Id, principalName(ctx)); err != nil {
			return nil, g.grainProblem(err, "order", first)
		}
	default:
		if err := g.node.AnnotateOrder(ctx, o.Id, "duplicate_accepted", map[string]string{"order": first, "channel": noted.DuplicateChannel, "policy": policy},
			"dup/"+first, principalName(ctx)); err != nil {
			return nil, g.grainProblem(err, "order", o.Id)
		}
		if err := g.node.AnnotateOrder(ctx, first, "duplicate_accepted", note, "dup/"+o.Id, principalName(ctx)); err != nil {
			return nil, g.grainProblem(err, "order", first)
		}
	}
	res, err := g.node.OrderClient(o.Id).Get(&pb.OrderQuery{OrderId: o.Id}, g.callOptions(ctx)...)
	if err != nil {
		return nil, g.grainProblem(err, "order", o.Id)
	}
	return orderView(res.Order), nil
}

// moveTo adds a status event to an order; already there is fine (a retry).
func (g *Gateway) moveTo(ctx context.Context, id, status, reason string) *Problem {
	res, err := g.node.OrderClient(id).AddEvent(&pb.OrderEventGrainRequest{Principal: principalName(ctx),
		Event: &pb.OrderEventRequest{Id: id, Type: status, Reason: reason}}, g.callOptions(ctx)...)
	if err != nil {
		return g.grainProblem(err, "order", id)
	}
	if res.Outcome != pb.Outcome_OUTCOME_OK && res.Outcome != pb.Outcome_OUTCOME_REPLAYED {
		return &Problem{Status: http.StatusConflict, Name: "illegal-transition", Title: "Illegal transition",
			Detail: fmt.Sprintf("order %s could not become %s: %s", id, status, res.Detail), CurrentStatus: res.Order.GetStatus()}
	}
	return nil
}

// channelFields keeps the channel's extra fields and its discounts on the order.
func channelFields(m *channels.Mapped) map[string]string {
	out := make(map[string]string, len(m.Extra)+len(m.Discounts)+2)
	for k, v := range m.Extra {
		out[k] = v
	}
	for i, d := range m.Discounts {
		line := "order"
		if d.Line >= 0 {
			line = "line " + strconv.Itoa(d.Line)
		}
		out[fmt.Sprintf("discount[%d]", i)] = fmt.Sprintf("%s %s-funded %s (%s)", d.Amount, d.FundedBy, d.Kind, line)
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

func signatureProblem(detail string) *Problem {
	return &Problem{Status: http.StatusUnauthorized, Name: "bad-signature", Title: "Signature does not verify", Detail: detail,
		Errors: []*pb.FieldViolation{{Field: "signature", Detail: detail}}}
}

func (g *Gateway) getCustomer(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading customers", RoleOps, RoleCompliance); p != nil {
		return p
	}
	id := r.PathValue("id")
	ids, found, err := g.node.SubjectOrderIDs(id)
	if err != nil {
		return g.grainProblem(err, "customer", id)
	}
	if !found {
		return notFound("customer", id)
	}
	type orderRef struct {
		ID             string `json:"id"`
		Channel        string `json:"channel"`
		ChannelOrderID string `json:"channel_order_id"`
		Status         string `json:"status"`
		Total          string `json:"total"`
		CreatedAt      string `json:"created_at"`
	}
	orders := []orderRef{}
	var chans []string
	for _, oid := range ids[:min(len(ids), customerOrdersShown)] {
		o, ok, err := g.node.ReadOrder(oid)
		if err != nil {
			return g.grainProblem(err, "order", oid)
		}
		if !ok {
			continue // archived
		}
		orders = append(orders, orderRef{ID: o.Id, Channel: o.Channel, ChannelOrderID: o.ChannelOrderId, Status: o.Status, Total: o.Total,
			CreatedAt: timeString(o.CreatedUnixNano)})
		if !slices.Contains(chans, o.Channel) {
			chans = append(chans, o.Channel)
		}
	}
	slices.Sort(chans)
	slices.SortFunc(orders, func(a, b orderRef) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	writeJSON(w, http.StatusOK, map[string]any{"customer_id": id, "channels": chans, "orders": orders, "order_count": len(ids)})
	return nil
}

// customerOrdersShown bounds the orders GET /v1/customers/{id} lists.
const customerOrdersShown = 1000

func (g *Gateway) getPriceConflicts(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading price conflicts", RoleOps, RoleCompliance); p != nil {
		return p
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return malformed("limit", "limit must be 1..1000")
		}
		limit = n
	}
	cs, err := g.node.PriceConflicts(limit)
	if err != nil {
		return g.grainProblem(err, "price conflicts", "")
	}
	type side struct {
		Channel   string `json:"channel"`
		UnitPrice string `json:"unit_price"`
		Currency  string `json:"currency"`
		Order     string `json:"order"`
		At        string `json:"at"`
	}
	type conflict struct {
		SKU        string `json:"sku"`
		First      side   `json:"first"`
		Second     side   `json:"second"`
		Rule       string `json:"rule"`
		Resolution string `json:"resolution"`
		At         string `json:"at"`
	}
	sideOf := func(p *pb.ChannelPrice) side {
		return side{Channel: p.Channel, UnitPrice: p.UnitPrice, Currency: p.Currency, Order: p.OrderId, At: timeString(p.AtUnixNano)}
	}
	out := []conflict{}
	for _, c := range cs {
		out = append(out, conflict{SKU: c.Sku, First: sideOf(c.First), Second: sideOf(c.Second), Rule: c.Rule, Resolution: c.Resolution, At: timeString(c.AtUnixNano)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"conflicts": out})
	return nil
}
