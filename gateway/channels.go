package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

type channelMetrics struct {
	orders     *prometheus.CounterVec
	rejects    *prometheus.CounterVec
	signatures *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	conflicts  *prometheus.CounterVec
	notices    *prometheus.CounterVec
}

func newChannelMetrics(reg prometheus.Registerer) *channelMetrics {
	m := &channelMetrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_orders_total",
			Help: "Channel orders taken in, by channel and result (created, replayed, skipped: cancelled at the platform before taken)."}, []string{"channel", "result"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_rejects_total",
			Help: "Channel orders refused, by channel and reason (signature, invalid, insufficient-stock, …)."}, []string{"channel", "reason"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_signature_failures_total",
			Help: "Channel requests whose signature did not verify."}, []string{"channel"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_duplicates_total",
			Help: "Cross-channel duplicates found, by the later order's channel and the policy applied (merge, hold, accept)."}, []string{"channel", "policy"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_price_conflicts_total",
			Help: "Prices of one SKU differing across channels within the window, by the later order's channel."}, []string{"channel"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_notices_total",
			Help: "Orders pushes named by id, by channel and result (queued for fetching, repeated: queued or taken before)."}, []string{"channel", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.orders, m.rejects, m.signatures, m.duplicates, m.conflicts, m.notices)
	}
	return m
}

func (g *Gateway) channelRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	// Authenticated by the channel's signature, not a bearer token: the
	// platforms push with their own schemes.
	g.handle("POST /v1/channels/{channel}/orders", g.admitWith("POST /v1/channels/{channel}/orders", g.postChannelOrder, g.opts.RequestTimeout, false))
	api("GET /v1/customers/{id}", g.getCustomer)
	api("GET /v1/channels/price-conflicts", g.getPriceConflicts)
	api("GET /v1/channels/fetches", g.getFetches)
	api("GET /v1/channels/connectors", g.getConnectors)
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

func (g *Gateway) postChannelOrder(w http.ResponseWriter, r *http.Request) (p *Problem) {
	ch := r.PathValue("channel")
	a, ok := channels.Adapters[ch]
	if !ok {
		return notFound("channel", ch)
	}
	cc := g.opts.Channels
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.BodyBytesMax))
	if err != nil {
		p := bodyReadProblem(err, r.ContentLength)
		reason := "malformed"
		if p.Status == http.StatusRequestEntityTooLarge {
			reason = "body-too-large"
		}
		g.chMetrics.rejects.WithLabelValues(ch, reason).Inc()
		return p
	}
	var conn *channels.Connection
	if cc != nil {
		conn, ok = cc.Connection(ch, r.URL.Query().Get("connection"))
	}
	if cc == nil || !ok {
		g.chMetrics.signatures.WithLabelValues(ch).Inc()
		g.chMetrics.rejects.WithLabelValues(ch, "signature").Inc()
		return signatureProblem(fmt.Sprintf("no connection %q of channel %s is configured (channels.file)", r.URL.Query().Get("connection"), ch))
	}
	opened, p := g.openChannelPush(a, conn, &channels.Request{Header: r.Header, Query: r.URL.Query(), Body: raw, Now: g.replay.now()})
	if p != nil {
		reason := p.Name
		if reason == "bad-signature" {
			reason = "signature" // the label it always had
		}
		g.chMetrics.rejects.WithLabelValues(ch, reason).Inc()
		return p
	}
	if rp := opened.Replay; rp != nil {
		connKey := ch + "/" + conn.Name
		claim, wait, err := g.replay.claim(connKey, rp.Key, rp.Expires)
		if p := replayProblem(err, rp.Field, wait); p != nil {
			g.chMetrics.rejects.WithLabelValues(ch, p.Name).Inc()
			return p
		}
		// A push not taken (refused, or failed on the way) is forgotten, so
		// the platform's retry of it is not mistaken for a replay.
		defer func() {
			if p != nil {
				g.replay.release(connKey, claim)
			}
		}()
	}
	raw = opened.Body
	if n, ok := a.(channels.Notifier); ok {
		notices, isNotice, err := n.Notices(raw)
		if isNotice {
			return g.takeNotices(w, r, n, conn, notices, err)
		}
	}
	// One JSON value, no key twice, valid UTF-8, nothing after it: what
	// the adapters' decoder would let through silently.
	if p := strictJSON(raw); p != nil {
		g.chMetrics.rejects.WithLabelValues(ch, "malformed").Inc()
		return p
	}
	m, err := a.Map(raw)
	if err != nil {
		var pe *channels.PlatformError
		if errors.As(err, &pe) {
			g.chMetrics.rejects.WithLabelValues(ch, "platform-error").Inc()
			return platformProblem(pe)
		}
		g.chMetrics.rejects.WithLabelValues(ch, "invalid").Inc()
		var fe *channels.FieldError
		if errors.As(err, &fe) {
			return invalid(&pb.FieldViolation{Field: fe.Field, Detail: fe.Detail})
		}
		return invalid(&pb.FieldViolation{Field: "body", Detail: err.Error()})
	}
	ctx := WithPrincipal(r.Context(), &Principal{Name: "channel:" + ch + "/" + cmp.Or(conn.Name, "default"), Role: RoleIntake, Channels: []string{ch}})
	res, err := g.channelFlow.Take(ctx, &intake.ChannelOrder{Mapped: m, Principal: principalName(ctx), Check: g.checkChannelOrder, Connection: conn})
	var refused *refusedOrder
	if errors.As(err, &refused) {
		g.chMetrics.rejects.WithLabelValues(ch, "invalid").Inc()
		return invalid(refused.violations...)
	}
	if p := g.channelProblem(err); p != nil {
		g.chMetrics.rejects.WithLabelValues(ch, p.Name).Inc()
		return p
	}
	if res.Skipped != "" {
		// Cancelled at the platform before the grid took it: nothing to
		// take, and nothing for the platform to push again.
		g.chMetrics.orders.WithLabelValues(ch, "skipped").Inc()
		writeJSON(w, http.StatusOK, map[string]any{"taken": false, "reason": res.Skipped})
		return nil
	}
	req := res.Request
	if res.Created.Outcome == gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT && res.Order != nil {
		// A cancellation of an order taken before (its body differs: the
		// status): the order as the workflow left it, cancelled.
		g.chMetrics.orders.WithLabelValues(ch, "replayed").Inc()
		writeJSON(w, http.StatusOK, &channelOrderJSON{CustomerID: res.CustomerID, Order: orderJSON(orderView(res.Order))})
		return nil
	}
	created, code, p := g.created(req, intake.OrderID(req), res.Created)
	if p != nil {
		g.chMetrics.rejects.WithLabelValues(ch, p.Name).Inc()
		return p
	}
	out := &channelOrderJSON{CustomerID: res.CustomerID, PriceConflicts: res.PriceConflicts, Order: orderJSON(created.Order)}
	if d := res.Duplicate; d != nil {
		out.Duplicate = &duplicateJSON{Of: d.Of, Channel: d.Channel, Policy: d.Policy}
		if code == http.StatusCreated {
			g.chMetrics.duplicates.WithLabelValues(ch, d.Policy).Inc()
		}
	}
	if res.Order != nil {
		out.Order = orderJSON(orderView(res.Order))
	}
	if n := len(res.PriceConflicts); n > 0 {
		g.chMetrics.conflicts.WithLabelValues(ch).Add(float64(n))
	}
	result := "created"
	if code != http.StatusCreated {
		result = "replayed"
	}
	g.chMetrics.orders.WithLabelValues(ch, result).Inc()
	writeJSON(w, code, out)
	return nil
}

// takeNotices answers a push that names orders rather than carrying them:
// the orders are queued as fetches in the grid, then the push is
// acknowledged as the platform asks. A push naming no order (a test
// message, another event) is acknowledged; one that names orders on a
// connection without api settings is refused (422), so the platform keeps
// it and pushes again once the connection is fixed.
func (g *Gateway) takeNotices(w http.ResponseWriter, r *http.Request, n channels.Notifier, conn *channels.Connection, notices []channels.Notice, err error) *Problem {
	ch := n.Channel()
	if err != nil {
		g.chMetrics.rejects.WithLabelValues(ch, "invalid").Inc()
		var fe *channels.FieldError
		if errors.As(err, &fe) {
			return invalid(&pb.FieldViolation{Field: fe.Field, Detail: fe.Detail})
		}
		return invalid(&pb.FieldViolation{Field: "body", Detail: err.Error()})
	}
	if len(notices) > 0 {
		if g.fetches == nil || !g.fetches.Serves(ch, conn.Name) {
			g.chMetrics.rejects.WithLabelValues(ch, "no-api").Inc()
			return &Problem{Status: http.StatusUnprocessableEntity, Name: "no-api", Title: "Push names orders the node cannot fetch",
				Detail: fmt.Sprintf("the push names %d orders by id; set api (base_url and credentials) on connection %q of %s in channels.file "+
					"so the node fetches them from the platform's order-detail API", len(notices), conn.Name, ch),
				Errors: []*pb.FieldViolation{{Field: "connections.api", Detail: "required to fetch the orders a push names"}}}
		}
		q, err := g.fetches.Queue(r.Context(), ch, conn.Name, notices)
		if err != nil {
			g.chMetrics.rejects.WithLabelValues(ch, "unavailable").Inc()
			return g.grainProblem(err, "fetch", "")
		}
		g.chMetrics.notices.WithLabelValues(ch, "queued").Add(float64(q.Queued))
		g.chMetrics.notices.WithLabelValues(ch, "repeated").Add(float64(q.Repeated))
	}
	contentType, body := n.Ack()
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// getFetches lists the platform orders queued for fetching.
func (g *Gateway) getFetches(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading channel fetches", RoleOps, RoleCompliance); p != nil {
		return p
	}
	state := intake.FetchState(r.URL.Query().Get("state"))
	if !slices.Contains([]intake.FetchState{"", intake.FetchPending, intake.FetchDone, intake.FetchFailed}, state) {
		return malformed("state", "state must be pending, done or failed")
	}
	limit, p := limitParam(r, 100, intake.FetchesListedMax)
	if p != nil {
		return p
	}
	type fetchJSON struct {
		Channel     string `json:"channel"`
		Connection  string `json:"connection"`
		OrderID     string `json:"order_id"`
		State       string `json:"state"`
		Tag         string `json:"tag"`
		Notices     uint32 `json:"notices"`
		Attempts    uint32 `json:"attempts"`
		QueuedAt    string `json:"queued_at"`
		NextAt      string `json:"next_attempt_at,omitempty"`
		DoneAt      string `json:"done_at,omitempty"`
		LastError   string `json:"last_error,omitempty"`
		GridOrderID string `json:"grid_order_id,omitempty"`
	}
	out := []fetchJSON{}
	if g.fetches != nil {
		fs, err := g.fetches.Fetches(state, limit)
		if err != nil {
			return g.grainProblem(err, "fetches", "")
		}
		for _, f := range fs {
			j := fetchJSON{Channel: f.Channel, Connection: f.Connection, OrderID: f.OrderId, State: string(intake.StateOf(f)), Tag: f.Tag,
				Notices: f.Notices, Attempts: f.Attempts, QueuedAt: timeString(f.QueuedUnixNano), LastError: f.LastError, GridOrderID: f.GridOrderId}
			switch intake.StateOf(f) {
			case intake.FetchPending:
				j.NextAt = timeString(f.NextUnixNano)
			case intake.FetchDone:
				j.DoneAt = timeString(f.DoneUnixNano)
			}
			out = append(out, j)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"fetches": out})
	return nil
}

// getConnectors shows each connector's cursor.
func (g *Gateway) getConnectors(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading connectors", RoleOps, RoleCompliance); p != nil {
		return p
	}
	type cursorJSON struct {
		Channel    string  `json:"channel"`
		Connection string  `json:"connection"`
		Cursor     string  `json:"cursor"`
		LagSeconds float64 `json:"lag_seconds"`
		UpdatedAt  string  `json:"updated_at"`
		Pulls      uint64  `json:"pulls"`
		OrdersSeen uint64  `json:"orders_seen"`
		LastError  string  `json:"last_error,omitempty"`
	}
	out := []cursorJSON{}
	if g.fetches != nil {
		cs, err := g.fetches.Cursors()
		if err != nil {
			return g.grainProblem(err, "connectors", "")
		}
		for _, c := range cs {
			out = append(out, cursorJSON{Channel: c.Channel, Connection: c.Connection, Cursor: timeString(c.CursorUnixNano),
				LagSeconds: time.Since(time.Unix(0, c.CursorUnixNano)).Seconds(), UpdatedAt: timeString(c.UpdatedUnixNano),
				Pulls: c.Pulls, OrdersSeen: c.OrdersSeen, LastError: c.LastError})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"connectors": out})
	return nil
}

// limitParam reads ?limit= (default def, 1..most).
func limitParam(r *http.Request, def, most int) (int, *Problem) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, malformed("limit", fmt.Sprintf("limit must be 1..%d", most))
	}
	return n, nil
}

// ChannelOrderCheck is the validation of an order a channel's push or a
// fetch creates, with the gateway's limits (the fetch workflow's check).
func ChannelOrderCheck(lim Limits) func(*pb.CreateOrderRequest) error {
	g := &Gateway{Service: &Service{limits: lim}}
	return g.checkChannelOrder
}

// platformProblem answers a platform's error answer posted as an order:
// 422 platform-error naming the envelope's code field, the platform's
// message in the detail. Nothing was taken; the connector should not post
// the same answer again.
func platformProblem(pe *channels.PlatformError) *Problem {
	return &Problem{Status: http.StatusUnprocessableEntity, Name: "platform-error", Title: "The platform answered with an error",
		Detail: pe.Error(), Errors: []*pb.FieldViolation{{Field: pe.Field, Detail: fmt.Sprintf("%s %s: %s", pe.Channel, pe.Code, pe.Message)}}}
}

// channelProblem maps a failed channel workflow to a problem.
func (g *Gateway) channelProblem(err error) *Problem {
	var step *intake.StepError
	var tr *intake.TransitionError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, intake.ErrQueueFull):
		g.metrics.rejects.WithLabelValues("overloaded").Inc()
		return overloaded()
	case errors.As(err, &tr):
		return &Problem{Status: http.StatusConflict, Name: "illegal-transition", Title: "Illegal transition", Detail: tr.Error(),
			CurrentStatus: tr.CurrentStatus}
	case errors.As(err, &step):
		return g.grainProblem(step.Err, step.What, step.ID)
	default:
		return g.grainProblem(err, "order", "")
	}
}

// checkChannelOrder validates a pushed order as the channel workflow will
// create it, before anything is written: a refused order leaves no trace.
func (g *Gateway) checkChannelOrder(req *pb.CreateOrderRequest) error {
	v := validateCreateOrder(req, g.limits, "")
	if len(v) == 0 {
		return nil
	}
	for _, f := range v {
		f.Field = "mapped " + f.Field
	}
	return &refusedOrder{violations: v}
}

// refusedOrder is a pushed order that fails validation as mapped.
type refusedOrder struct {
	violations []*pb.FieldViolation
}

func (e *refusedOrder) Error() string {
	return fmt.Sprintf("channel order refused: %d fields invalid", len(e.violations))
}

// openChannelPush verifies a push with its connection and returns what it
// carries, or the problem that refuses it: 401 bad-signature, 403
// plain-push-refused, 400 for an envelope that is not one.
func (g *Gateway) openChannelPush(a channels.Adapter, conn *channels.Connection, req *channels.Request) (*channels.Opened, *Problem) {
	opened, err := channels.Open(a, req, conn)
	var fe *channels.FieldError
	switch {
	case err == nil:
		return opened, nil
	case errors.Is(err, channels.ErrPlainPush):
		return nil, &Problem{Status: http.StatusForbidden, Name: "plain-push-refused", Title: "Plain-mode push refused", Detail: err.Error(),
			Errors: []*pb.FieldViolation{{Field: "encrypt_type", Detail: "a plain-mode push (no encrypt_type=aes, no msg_signature) needs allow_plain_push on the connection"}}}
	case errors.As(err, &fe):
		return nil, malformed(fe.Field, err.Error())
	default:
		g.chMetrics.signatures.WithLabelValues(a.Channel()).Inc()
		return nil, signatureProblem(err.Error())
	}
}

// replayProblem answers a push its connection's replay cache refused: 409
// replayed-push naming the field the key comes from (nonce), or 503 with
// Retry-After when the cache is full of keys within their window.
func replayProblem(err error, field string, wait time.Duration) *Problem {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errReplayed):
		d := "this signed push was already taken within its timestamp window; a platform sends each message with a fresh " + field
		return &Problem{Status: http.StatusConflict, Name: "replayed-push", Title: "Push replayed", Detail: d,
			Errors: []*pb.FieldViolation{{Field: field, Detail: "already seen within the timestamp window"}}}
	default:
		p := unavailable("the connection's replay cache is full of pushes within their window (channels.file replay_entries_max); retry")
		p.Name = "replay-cache-full"
		p.RetryAfterSec = max(1, int(wait.Seconds()+0.999))
		return p
	}
}

// replayEntriesMax is the per-connection replay cache bound of the
// channels file, or its default without one.
func replayEntriesMax(cc *channels.Config) int {
	if cc == nil || cc.ReplayEntriesMax <= 0 {
		return defaultReplayEntriesMax
	}
	return cc.ReplayEntriesMax
}

// defaultReplayEntriesMax matches channels.Config's default: 100,000 pushes
// within a 10-minute span (a 5-minute window either side) is ~170 pushes/s
// per connection, a few MB at most.
const defaultReplayEntriesMax = 100_000

func signatureProblem(detail string) *Problem {
	return &Problem{Status: http.StatusUnauthorized, Name: "bad-signature", Title: "Signature does not verify", Detail: detail,
		Errors: []*pb.FieldViolation{{Field: "signature", Detail: detail}}}
}

func (g *Gateway) getCustomer(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading customers", RoleOps, RoleCompliance); p != nil {
		return p
	}
	id := r.PathValue("id")
	ids, found, err := g.grid.SubjectOrderIDs(id)
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
		o, ok, err := g.grid.ReadOrder(oid)
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
	cs, err := g.priceConflicts.PriceConflicts(limit)
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
	sideOf := func(p *gridpb.ChannelPrice) side {
		return side{Channel: p.Channel, UnitPrice: p.UnitPrice, Currency: p.Currency, Order: p.OrderId, At: timeString(p.AtUnixNano)}
	}
	out := []conflict{}
	for _, c := range cs {
		out = append(out, conflict{SKU: c.Sku, First: sideOf(c.First), Second: sideOf(c.Second), Rule: c.Rule, Resolution: c.Resolution, At: timeString(c.AtUnixNano)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"conflicts": out})
	return nil
}
