package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/jsonshape"
	"github.com/ordergrid/ordergrid/ledger"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Options configure the gateway.
type Options struct {
	// Limits bound what one request may carry; a zero field: its default
	// (config.DefaultOrdersLinesMax, ...QtyMax, ...BatchMax).
	Limits Limits
	// BodyBytesMax is the largest request body read. 0: config.DefaultHTTPBodyBytesMax.
	BodyBytesMax int64
	// InFlightMax is the most requests served at once; beyond it requests get
	// 429 with Retry-After, never a silent drop. 0: config.DefaultHTTPInFlightMax.
	InFlightMax int
	// LatencyTarget, when set, makes the in-flight limit adaptive below
	// InFlightMax: it shrinks while requests take longer than this on
	// average and grows back while they do not. 0: a fixed limit.
	LatencyTarget time.Duration
	// RequestTimeout bounds one request's work. 0: config.DefaultActorRequestTimeout
	// and 2s.
	RequestTimeout time.Duration
	// Ready reports whether the node serves (cluster topology holds the kinds,
	// every partition has a leader).
	Ready func() bool
	// Cluster serves the admin API under /v1/cluster.
	Cluster ClusterAdmin
	// Ledger serves the audit log under /v1/ledger and order proofs. nil:
	// those routes answer 404.
	Ledger *ledger.Log
	// AnchorStatus describes Fabric anchoring for GET /v1/ledger/anchors.
	AnchorStatus func() any
	// Checks are the details of /readyz: each component's state, "ok" or
	// a reason. They never make the node unready (amber, not red).
	Checks func() map[string]string
	// Tokens authenticate every API call (HTTP Authorization and gRPC
	// "authorization" metadata: "Bearer <token>"). nil: every API call is
	// refused with 401.
	Tokens *Tokens
	// Channels configures the channels' connections (channels.file) for
	// POST /v1/channels/{channel}/orders; nil: every channel request is
	// refused (no connection).
	Channels *channels.Config
	// Events are the audit log's events, live, for GET /v1/stream and the
	// gRPC EventService. nil: those answer 503.
	Events EventStream
	// StreamReadersMax bounds the streams served at once (SSE and gRPC);
	// beyond it a stream is refused with 429. 0: DefaultStreamReadersMax.
	StreamReadersMax int
	// StreamWriteTimeout is how long a write to a stream may block before
	// its reader is cut. 0: DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration
	// TrackingKey signs and verifies tracking links (tracking.Sign; the
	// same on every node: privacy.Keyring.Derive(tracking.KeyLabel)). nil:
	// POST /v1/orders/{id}/tracking-link and the /track pages answer 503.
	TrackingKey []byte
	// TrackingStreamsMax bounds the tracking pages' streams served at once;
	// beyond it one is refused with 429. 0: DefaultTrackingStreamsMax.
	TrackingStreamsMax int
	// Profiling serves net/http/pprof under /debug/pprof/.
	Profiling bool
	Logger    *slog.Logger
	Gatherer  prometheus.Gatherer
	// Registerer receives the gateway's metrics.
	Registerer prometheus.Registerer
}

// authenticate returns the caller of an Authorization header value.
func (g *Gateway) authenticate(header string) (*Principal, error) {
	if g.tokens == nil {
		return nil, ErrUnknownToken
	}
	return g.tokens.Authenticate(header)
}

// Gateway is the HTTP handler and the gRPC service of a node.
type Gateway struct {
	*Service
	opts Options
	mux  *http.ServeMux
	// patterns are the routes registered on mux, in order (the catch-all
	// excepted): the role×route test hits every one of them.
	patterns []string
	// simulating holds a token while a routing simulation runs: one at a time.
	simulating chan struct{}
	chMetrics  *channelMetrics
	// priceConflicts and keyRotation serve their admin routes.
	priceConflicts PriceConflicts
	keyRotation    KeyRotation
	// fetches queues the orders pushes name (nil: none configured).
	fetches ChannelFetches
	// alerts are the open stuck-order alerts (nil: none).
	alerts Alerts
	// webhooks are the webhook subscriptions (nil: the routes answer 503).
	webhooks Webhooks
	// holds, limitRules and riskModels serve the review queue, the
	// purchase limits and the risk model (nil: their routes answer 503).
	holds      HoldQueue
	limitRules LimitRules
	riskModels RiskModels
	riskStore  RiskModelStore
	// ops is what the ops summary reads of the node (nil: only the
	// gateway's own observations).
	ops OpsSource
	// replay refuses a timestamped channel push sent again.
	replay *replayCache
	// trackSlots holds a token per tracking stream served.
	trackSlots chan struct{}
}

// RequestTimeoutSlack is what a request may take beyond its grain calls'
// timeout (decoding, admission, answering).
const RequestTimeoutSlack = 2 * time.Second

// withDefaults fills every zero (or negative) setting with its default
// from package config: a zero limit means the default, never "refuse
// every request".
func (o *Options) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Limits.LinesMax <= 0 {
		o.Limits.LinesMax = config.DefaultOrdersLinesMax
	}
	if o.Limits.QtyMax <= 0 {
		o.Limits.QtyMax = config.DefaultOrdersQtyMax
	}
	if o.Limits.BatchMax <= 0 {
		o.Limits.BatchMax = config.DefaultOrdersBatchMax
	}
	if o.BodyBytesMax <= 0 {
		o.BodyBytesMax = config.DefaultHTTPBodyBytesMax
	}
	if o.InFlightMax <= 0 {
		o.InFlightMax = config.DefaultHTTPInFlightMax
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = config.DefaultActorRequestTimeout + RequestTimeoutSlack
	}
	if o.StreamReadersMax <= 0 {
		o.StreamReadersMax = DefaultStreamReadersMax
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if o.TrackingStreamsMax <= 0 {
		o.TrackingStreamsMax = DefaultTrackingStreamsMax
	}
}

// New returns the gateway over b. Zero settings of opts take their
// defaults (package config).
func New(b Backend, opts Options) *Gateway {
	opts.withDefaults()
	g := &Gateway{
		Service: &Service{grid: b.Grid, routing: b.Routing, intake: b.Intake, channelFlow: b.ChannelFlow, archives: b.Archives,
			tokens: opts.Tokens, limits: opts.Limits, logger: opts.Logger, metrics: newMetrics(opts.Registerer),
			admission: newAdmission(opts.InFlightMax, opts.LatencyTarget),
			events:    opts.Events, streamSlots: make(chan struct{}, opts.StreamReadersMax),
			streamWriteTimeout: opts.StreamWriteTimeout, streamMetrics: newStreamMetrics(opts.Registerer)},
		priceConflicts: b.PriceConflicts,
		keyRotation:    b.KeyRotation,
		fetches:        b.Fetches,
		alerts:         b.Alerts,
		webhooks:       b.Webhooks,
		holds:          b.Holds,
		limitRules:     b.Limits,
		riskModels:     b.Risk,
		riskStore:      b.RiskStore,
		ops:            b.Ops,
		opts:           opts,
		mux:            http.NewServeMux(),
		simulating:     make(chan struct{}, 1),
		chMetrics:      newChannelMetrics(opts.Registerer),
		replay:         newReplayCache(replayEntriesMax(opts.Channels), time.Now),
		trackSlots:     make(chan struct{}, opts.TrackingStreamsMax),
	}
	g.streamsStopped, g.stopStreams = context.WithCancel(context.Background())
	g.routes()
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ordergrid_http_in_flight_limit",
			Help: "Requests admitted at once now (adaptive below http.in_flight_max with http.latency_target)."},
			func() float64 { return float64(g.admission.current()) }))
	}
	return g
}

// handle registers a route and records its pattern.
func (g *Gateway) handle(pattern string, h http.Handler) {
	g.patterns = append(g.patterns, pattern)
	g.mux.Handle(pattern, h)
}

func (g *Gateway) routes() {
	api := func(pattern string, h func(w http.ResponseWriter, r *http.Request) *Problem) {
		g.handle(pattern, g.admit(pattern, h, g.opts.RequestTimeout))
	}
	api("POST /v1/orders", g.postOrder)
	api("POST /v1/orders:batch", g.postBatch)
	api("GET /v1/orders/{id}", g.getOrderHTTP)
	api("GET /v1/orders/{id}/events", g.getEvents)
	api("POST /v1/orders/{id}/events", g.postEvent)
	api("POST /v1/orders/{id}/pay", g.postFixedEvent("paid"))
	api("POST /v1/orders/{id}/cancel", g.postFixedEvent("cancelled"))
	api("PUT /v1/skus/{sku}/stock/{warehouse}", g.putStock)
	api("GET /v1/skus/{sku}", g.getSkuHTTP)
	api("GET /v1/skus/{sku}/events", g.getSkuEvents)
	api("POST /v1/subjects/{id}/erase", g.postErase)
	// Streams for as long as the log takes: bounded by the client, not the request timeout.
	g.handle("GET /v1/audit/export", g.admit("GET /v1/audit/export", g.getAuditExport, 0))
	api("POST /v1/admin/rewrap-subject-keys", g.postRewrap)
	api("POST /v1/admin/archives/restore", g.postRestoreArchive)
	api("GET /v1/alerts", g.getAlerts)
	api("GET /v1/cluster", g.getCluster)
	api("POST /v1/cluster/nodes", g.postClusterNode)
	api("DELETE /v1/cluster/nodes/{id}", g.deleteClusterNode)
	// Streams live as long as the reader: outside admission, bounded by StreamReadersMax.
	g.handle("GET /v1/stream", g.streaming("GET /v1/stream", g.getStream))
	g.ledgerRoutes(api)
	g.routingRoutes(api)
	g.channelRoutes(api)
	g.trackingRoutes(api)
	g.webhookRoutes(api)
	g.holdRoutes(api)
	g.opsRoutes(api)
	g.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	}))
	g.handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body := map[string]any{"status": "ready"}
		code := http.StatusOK
		if g.opts.Ready != nil && !g.opts.Ready() {
			body["status"], code = "starting", http.StatusServiceUnavailable
		}
		if g.opts.Checks != nil {
			checks := g.opts.Checks()
			body["checks"] = checks
			for _, v := range checks {
				if v != "ok" && body["status"] == "ready" {
					body["status"] = "degraded" // amber: serving, something needs a look
				}
			}
		}
		writeJSON(w, code, body)
	}))
	if g.opts.Profiling {
		g.handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
		g.handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		g.handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
		g.handle("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	}
	if g.opts.Gatherer != nil {
		g.handle("GET /metrics", promhttp.HandlerFor(g.opts.Gatherer, promhttp.HandlerOpts{}))
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := g.allowedMethods(r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeProblem(w, &Problem{Status: http.StatusMethodNotAllowed, Name: "method-not-allowed", Title: "Method not allowed",
				Detail: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))})
			return
		}
		writeProblem(w, &Problem{Status: http.StatusNotFound, Name: "no-route", Title: "No such route",
			Detail: fmt.Sprintf("%s %s is not an ordergrid API route", r.Method, r.URL.Path)})
	})
}

// allowedMethods lists the methods that have a route for r's path (the
// catch-all route hides ServeMux's own 405).
func (g *Gateway) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := g.mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// admit applies admission control, the request deadline, the principal and metrics.
// A timeout of 0 leaves the request unbounded (a streaming export).
func (g *Gateway) admit(route string, h func(w http.ResponseWriter, r *http.Request) *Problem, timeout time.Duration) http.Handler {
	return g.admitWith(route, h, timeout, true)
}

// admitWith is admit; without bearer, the handler authenticates the caller
// itself (a channel's request signature) and the context has no principal.
func (g *Gateway) admitWith(route string, h func(w http.ResponseWriter, r *http.Request) *Problem, timeout time.Duration, bearer bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var principal *Principal
		if bearer {
			var err error
			if principal, err = g.authenticate(r.Header.Get("Authorization")); err != nil {
				g.metrics.rejects.WithLabelValues("unauthenticated").Inc()
				w.Header().Set("WWW-Authenticate", `Bearer realm="ordergrid"`)
				writeProblem(w, unauthenticated(err))
				g.metrics.requests.WithLabelValues(route, "401").Inc()
				return
			}
		}
		if !g.admission.acquire() {
			g.metrics.rejects.WithLabelValues("overloaded").Inc()
			writeProblem(w, overloaded())
			g.metrics.requests.WithLabelValues(route, "429").Inc()
			g.metrics.observed.answered(http.StatusTooManyRequests, 0, false)
			return
		}
		g.metrics.inFlight.Inc()
		defer func() {
			g.admission.release(time.Since(start))
			g.metrics.inFlight.Dec()
		}()
		ctx, cancel := r.Context(), context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		defer cancel()
		ctx = WithPrincipal(ctx, principal)
		sw := &statusWriter{ResponseWriter: w}
		if p := h(sw, r.WithContext(ctx)); p != nil {
			writeProblem(sw, p)
		}
		g.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		g.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		g.metrics.observed.answered(sw.code, time.Since(start), true)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Flush, write deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	if p.RetryAfterSec > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfterSec))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(problemJSON(p))
}

// decode reads a JSON body into dst strictly: one JSON value, no unknown
// fields, no trailing data, at most BodyBytesMax bytes. An empty body is
// allowed only when emptyOK.
func (g *Gateway) decode(w http.ResponseWriter, r *http.Request, dst any, emptyOK bool) *Problem {
	raw, p := g.jsonBody(w, r, g.opts.BodyBytesMax)
	if p != nil {
		return p
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if emptyOK {
			return nil
		}
		return emptyBody()
	}
	return DecodeJSON(raw, dst)
}

// bodyField names the request body itself in a problem's errors, when the
// fault is the whole body (empty, cut short, too large, not an object).
const bodyField = "body"

// emptyBody is the problem of a body that is missing or only whitespace.
func emptyBody() *Problem {
	return malformed(bodyField, "the body is empty; send a JSON object")
}

// jsonBody reads a JSON body of at most limit bytes.
func (g *Gateway) jsonBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	return g.jsonBodyInto(w, r, limit, nil)
}

// jsonBodyInto reads a JSON body of at most limit bytes, appending to buf.
func (g *Gateway) jsonBodyInto(w http.ResponseWriter, r *http.Request, limit int64, buf []byte) ([]byte, *Problem) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, &Problem{Status: http.StatusUnsupportedMediaType, Name: "unsupported-media-type", Title: "Unsupported media type",
			Detail: "send application/json, not " + ct, Errors: []*pb.FieldViolation{{Field: "Content-Type", Detail: "send application/json"}}}
	}
	raw, err := readAllInto(http.MaxBytesReader(w, r.Body, limit), buf)
	if err != nil {
		return nil, bodyReadProblem(err, r.ContentLength)
	}
	return raw, nil
}

// bodyReadProblem is the answer to a body that could not be read: 413 when
// it is over the limit, else 400; both name the body, neither quotes the
// reader's error.
func bodyReadProblem(err error, contentLength int64) *Problem {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		d := fmt.Sprintf("the body exceeds the %d bytes this route takes", tooBig.Limit)
		return &Problem{Status: http.StatusRequestEntityTooLarge, Name: "body-too-large", Title: "Body too large",
			Detail: d, Errors: []*pb.FieldViolation{{Field: bodyField, Detail: d}}}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && contentLength > 0 {
		return malformed(bodyField, fmt.Sprintf("the body ends before the %d bytes its Content-Length announced", contentLength))
	}
	return malformed(bodyField, "the body could not be read to its end (the connection failed or the body was cut short)")
}

// DecodeJSON decodes one strict JSON value into dst and names the field at
// fault on failure by its full path with indexes ("rates[1].cost"), in
// JSON's terms (never Go type names or encoding/json's text).
func DecodeJSON(raw []byte, dst any) *Problem {
	if p := strictJSON(raw); p != nil {
		return p
	}
	if err := jsonshape.Check(raw, dst); err != nil {
		return shapeProblem(err)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		// The shape fits, so only a value's content can fail here (a
		// malformed base64 or time string): name the body, not Go's text.
		return malformed(bodyField, "a value of the body cannot be read as its field's type")
	}
	return nil
}

// shapeProblem is the 400 of a body whose shape does not fit (a wrong JSON
// kind, an unknown field, an integer out of range), naming the field.
func shapeProblem(err error) *Problem {
	var e *jsonshape.Error
	if !errors.As(err, &e) {
		return malformed(bodyField, "the body is not JSON of the request's shape")
	}
	switch {
	case e.Unknown:
		return malformed(e.Path, "unknown field "+strconv.Quote(e.Path))
	case e.Path == "":
		return malformed(bodyField, "the body "+e.Detail)
	case e.Syntax:
		return malformed(bodyField, e.Path+": "+e.Detail)
	}
	return malformed(e.Path, e.Path+" "+e.Detail)
}

// decodeHot reads a hot-path body (an order, a batch, an event) with its
// hand-written decoder from a pooled buffer.
func (g *Gateway) decodeHot(w http.ResponseWriter, r *http.Request, decode func([]byte) *Problem) *Problem {
	raw, done, p := g.readPooledBody(w, r, g.opts.BodyBytesMax)
	defer done()
	if p != nil {
		return p
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return emptyBody()
	}
	return decode(raw)
}

func (g *Gateway) postOrder(w http.ResponseWriter, r *http.Request) *Problem {
	var req pb.CreateOrderRequest
	if p := g.decodeHot(w, r, func(raw []byte) *Problem { return decodeOrder(raw, &req) }); p != nil {
		g.metrics.rejects.WithLabelValues("malformed").Inc()
		return p
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		req.IdempotencyKey = k
	}
	resp, code, p := g.createOrder(r.Context(), &req)
	if p != nil {
		return p
	}
	if resp.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/orders/"+resp.Order.Id)
	writeOrder(w, code, resp.Order)
	return nil
}

func (g *Gateway) postBatch(w http.ResponseWriter, r *http.Request) *Problem {
	var req pb.BatchCreateOrdersRequest
	var bad map[int]*Problem
	if p := g.decodeHot(w, r, func(raw []byte) (p *Problem) { bad, p = decodeBatch(raw, &req); return p }); p != nil {
		g.metrics.rejects.WithLabelValues("malformed").Inc()
		return p
	}
	resp, p := g.batchCreate(r.Context(), &req, bad)
	if p != nil {
		return p
	}
	writeBatch(w, resp)
	return nil
}

// postRewrap wraps every subject key by the active master key (rotation).
func (g *Gateway) postRewrap(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "rewrapping subject keys"); p != nil {
		return p
	}
	rep, err := g.keyRotation.Rewrap(r.Context(), nil)
	if f, _ := failure.Of(err); err != nil && f == failure.Internal {
		g.logger.Error("rewrap subject keys", slog.Any("error", err))
		return internalProblem(err.Error()) // no master keys: no retry helps
	}
	if err != nil {
		g.logger.Error("rewrap subject keys", slog.Any("error", err))
		return unavailable(fmt.Sprintf("rewrap stopped after %d of the keys (%d rewrapped): %v; run it again", rep.Examined, rep.Rewrapped, err))
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (g *Gateway) postErase(w http.ResponseWriter, r *http.Request) *Problem {
	e, p := g.eraseSubject(r.Context(), r.PathValue("id"))
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (g *Gateway) getOrderHTTP(w http.ResponseWriter, r *http.Request) *Problem {
	q := r.URL.Query()
	include := false
	switch q.Get("include_personal") {
	case "", "false":
	case "true":
		include = true
	default:
		return malformed("include_personal", "include_personal must be true or false")
	}
	purpose := q.Get("purpose")
	if len(purpose) > 200 {
		return malformed("purpose", "purpose is at most 200 bytes")
	}
	o, p := g.getOrder(r.Context(), r.PathValue("id"), include, purpose)
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, orderJSON(o))
	return nil
}

func (g *Gateway) getEvents(w http.ResponseWriter, r *http.Request) *Problem {
	evs, p := g.listEvents(r.Context(), r.PathValue("id"))
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, eventsJSON(evs))
	return nil
}

func (g *Gateway) postEvent(w http.ResponseWriter, r *http.Request) *Problem {
	var req pb.OrderEventRequest
	if p := g.decodeHot(w, r, func(raw []byte) *Problem { return decodeEvent(raw, &req) }); p != nil {
		return p
	}
	if req.Id != "" && req.Id != r.PathValue("id") {
		return invalid(&pb.FieldViolation{Field: "id", Detail: "differs from the order id in the path"})
	}
	req.Id = r.PathValue("id")
	return g.event(w, r, &req)
}

func (g *Gateway) postFixedEvent(typ string) func(w http.ResponseWriter, r *http.Request) *Problem {
	return func(w http.ResponseWriter, r *http.Request) *Problem {
		var body struct {
			Reason string `json:"reason"`
		}
		if p := g.decode(w, r, &body, true); p != nil {
			return p
		}
		return g.event(w, r, &pb.OrderEventRequest{Id: r.PathValue("id"), Type: typ, Reason: body.Reason})
	}
}

func (g *Gateway) event(w http.ResponseWriter, r *http.Request, req *pb.OrderEventRequest) *Problem {
	o, p := g.addEvent(r.Context(), req)
	if p != nil {
		return p
	}
	writeOrder(w, http.StatusOK, o)
	return nil
}

func (g *Gateway) putStock(w http.ResponseWriter, r *http.Request) *Problem {
	var body struct {
		OnHand *int64 `json:"on_hand"`
	}
	if p := g.decode(w, r, &body, false); p != nil {
		return p
	}
	if body.OnHand == nil {
		return invalid(&pb.FieldViolation{Field: "on_hand", Detail: "is required"})
	}
	st, p := g.setStock(r.Context(), &pb.SetStockRequest{Sku: r.PathValue("sku"), Warehouse: r.PathValue("warehouse"), OnHand: *body.OnHand})
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, stockJSON(st))
	return nil
}

func (g *Gateway) getSkuEvents(w http.ResponseWriter, r *http.Request) *Problem {
	evs, p := g.listSkuEvents(r.Context(), r.PathValue("sku"))
	if p != nil {
		return p
	}
	v := eventsJSON(&pb.ListOrderEventsResponse{Events: evs.Events})
	writeJSON(w, http.StatusOK, struct {
		SKU    string      `json:"sku"`
		Events []eventView `json:"events"`
	}{evs.Sku, v.Events})
	return nil
}

func (g *Gateway) getSkuHTTP(w http.ResponseWriter, r *http.Request) *Problem {
	st, p := g.getSku(r.Context(), r.PathValue("sku"))
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, stockJSON(st))
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
