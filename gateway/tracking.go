package gateway

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/stream"
	"github.com/ordergrid/ordergrid/tracking"
)

// DefaultTrackingStreamsMax is the most tracking-page streams a node serves
// at once when Options.TrackingStreamsMax is 0 (the pages are public: they
// have their own bound, apart from the API's streams).
const DefaultTrackingStreamsMax = 1024

// trackEventsMax bounds the events one timeline answers (an order has a
// handful; a bound all the same).
const trackEventsMax = 200

// trackAssets are the tracking page's files, served by the node itself (no
// CDN, no external fonts): page.html (an html/template), track.css and
// track.js.
//
//go:embed track
var trackAssets embed.FS

// trackPage is the page, and the error page a refused link gets.
var trackPage = template.Must(template.ParseFS(trackAssets, "track/page.html"))

// trackTypes are the order events a tracking page shows: the lifecycle's
// (created, then each status's event), not the notes the log also keeps
// about an order (alerts, duplicates, price conflicts).
var trackTypes = append([]string{"created"}, lifecycle.Statuses()...)

// trackEvent is one event as the page shows it: never a principal, a
// customer field, a price or a free-text reason.
type trackEvent struct {
	Seq            uint64 `json:"seq"`
	Type           string `json:"type"`
	Status         string `json:"status"`
	At             string `json:"at"`
	Carrier        string `json:"carrier,omitempty"`
	TrackingNumber string `json:"tracking_number,omitempty"`
	// PromisedBy is the order's promised delivery time (stream events).
	PromisedBy string `json:"promised_by,omitempty"`
}

// trackView is GET /track/{order}/timeline.
type trackView struct {
	Order          string       `json:"order"`
	Status         string       `json:"status"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
	PromisedBy     string       `json:"promised_by,omitempty"`
	Carrier        string       `json:"carrier,omitempty"`
	TrackingNumber string       `json:"tracking_number,omitempty"`
	Events         []trackEvent `json:"events"`
	// StreamFrom is where the page's stream starts so that it misses no
	// event after this timeline (one it already has may come again: the
	// page keeps events by seq). 0 with Live false: no live updates.
	StreamFrom uint64 `json:"stream_from"`
	Live       bool   `json:"live"`
	ExpiresAt  string `json:"expires_at"`
}

// trackingRoutes registers the tracking link route (bearer) and the
// tracking page's routes, which the link itself authorizes.
func (g *Gateway) trackingRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	api("POST /v1/orders/{id}/tracking-link", g.postTrackingLink)
	link := func(pattern string, h func(w http.ResponseWriter, r *http.Request) *Problem) {
		g.handle(pattern, g.admitWith(pattern, h, g.opts.RequestTimeout, false))
	}
	link("GET /track/{order}", g.getTrackPage)
	link("GET /track/{order}/timeline", g.getTrackTimeline)
	// Outside admission like /v1/stream, bounded by TrackingStreamsMax.
	g.handle("GET /track/{order}/stream", g.trackStreaming("GET /track/{order}/stream", g.getTrackStream))
	link("GET /assets/track/{file}", g.getTrackAsset)
}

// postTrackingLink serves POST /v1/orders/{id}/tracking-link: a signed link
// to the order's tracking page, for a channel to send its buyer.
func (g *Gateway) postTrackingLink(w http.ResponseWriter, r *http.Request) *Problem {
	ctx := r.Context()
	if p := allow(ctx, "making tracking links", RoleIntake, RoleOps); p != nil {
		return p
	}
	var body struct {
		TTLSeconds *int64 `json:"ttl_seconds"`
	}
	if p := g.decode(w, r, &body, true); p != nil {
		return p
	}
	ttl := tracking.TTLDefault
	if body.TTLSeconds != nil {
		minS, maxS := int64(tracking.TTLMin/time.Second), int64(tracking.TTLMax/time.Second)
		if *body.TTLSeconds < minS || *body.TTLSeconds > maxS {
			return invalid(&pb.FieldViolation{Field: "ttl_seconds", Detail: fmt.Sprintf("must be from %d (a minute) to %d (90 days)", minS, maxS)})
		}
		ttl = time.Duration(*body.TTLSeconds) * time.Second
	}
	if len(g.opts.TrackingKey) == 0 {
		return unavailable("this node has no tracking key: tracking links are off")
	}
	id := r.PathValue("id")
	o, p := g.trackedOrder(ctx, id)
	if p != nil {
		return p
	}
	if p := allowChannel(ctx, o.Channel, ""); p != nil {
		return forbidden(PrincipalOf(ctx), "order "+id+" is another channel's")
	}
	expires := time.Now().Add(ttl).Truncate(time.Second)
	tok, err := tracking.Sign(g.opts.TrackingKey, id, expires)
	if err != nil {
		return malformed("id", err.Error())
	}
	writeJSON(w, http.StatusCreated, map[string]string{"url": "/track/" + id + "?t=" + tok,
		"expires_at": expires.UTC().Format(time.RFC3339)})
	return nil
}

// trackedOrder reads an order for its tracking page or link: 404 for an
// order never seen, 410 for one retention archived.
func (g *Gateway) trackedOrder(ctx context.Context, id string) (*gridpb.OrderRecord, *Problem) {
	if !validOrderID(id) {
		return nil, notFound("order", id)
	}
	res, err := g.grid.GetOrder(ctx, id)
	if err != nil {
		return nil, g.grainProblem(err, "order", id)
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND {
		return res.Order, nil
	}
	if _, archived, err := g.archives.ReadArchived(id); err == nil && archived {
		return nil, &Problem{Status: http.StatusGone, Name: "archived", Title: "Order archived",
			Detail: fmt.Sprintf("order %s was archived: it is no longer tracked", id)}
	}
	return nil, notFound("order", id)
}

// checkLink verifies the request's tracking link (the t parameter) for the
// order in its path: 404 for an id that is no order id, 403 naming what is
// wrong (no token, expired at ..., invalid signature) for a bad link. It
// returns the link's expiry.
func (g *Gateway) checkLink(r *http.Request) (order string, expires time.Time, p *Problem) {
	order = r.PathValue("order")
	if !validOrderID(order) {
		return "", time.Time{}, notFound("order", order)
	}
	if len(g.opts.TrackingKey) == 0 {
		return "", time.Time{}, unavailable("this node has no tracking key: tracking links are off")
	}
	tok := r.URL.Query().Get("t")
	if tok == "" {
		return "", time.Time{}, linkProblem("link-missing", "Link incomplete",
			"this tracking link has no token (t); open the whole link the shop sent", "missing")
	}
	expires, err := tracking.Verify(g.opts.TrackingKey, order, tok, time.Now())
	var ee *tracking.ExpiredError
	switch {
	case err == nil:
		return order, expires, nil
	case errors.As(err, &ee):
		at := ee.At.UTC().Format(time.RFC3339)
		return "", time.Time{}, linkProblem("link-expired", "Link expired",
			"this tracking link expired at "+at+"; ask the shop for a new one", "expired at "+at)
	default:
		return "", time.Time{}, linkProblem("link-invalid", "Invalid link",
			"this tracking link has an invalid signature: it was changed, or it is not for this order", "invalid signature")
	}
}

func linkProblem(name, title, detail, field string) *Problem {
	return &Problem{Status: http.StatusForbidden, Name: name, Title: title, Detail: detail,
		Errors: []*pb.FieldViolation{{Field: "t", Detail: field}}}
}

// wantsJSON reports whether a client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return !strings.Contains(accept, "text/html") && strings.Contains(accept, "json")
}

// trackHeaders are every tracking response's: nothing cached or sent on
// (the URL holds the link's token), nothing loaded from elsewhere.
func trackHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
}

// pageData fills page.html.
type pageData struct {
	Order   string
	Problem *Problem
}

// getTrackPage serves GET /track/{order}: the page (its script loads the
// timeline and follows the stream), or a page saying why the link is
// refused (problem+json to a client that accepts JSON and not HTML).
func (g *Gateway) getTrackPage(w http.ResponseWriter, r *http.Request) *Problem {
	trackHeaders(w)
	order, _, p := g.checkLink(r)
	if p == nil {
		_, p = g.trackedOrder(r.Context(), order)
	}
	if p != nil {
		if wantsJSON(r) {
			return p
		}
		return g.renderPage(w, p.Status, pageData{Order: r.PathValue("order"), Problem: p})
	}
	return g.renderPage(w, http.StatusOK, pageData{Order: order})
}

func (g *Gateway) renderPage(w http.ResponseWriter, code int, d pageData) *Problem {
	var b strings.Builder
	if err := trackPage.Execute(&b, d); err != nil {
		g.logger.Error("tracking page", "error", err)
		return &Problem{Status: http.StatusInternalServerError, Name: "internal", Title: "Internal error", Detail: "the page could not be made"}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
	return nil
}

// getTrackTimeline serves GET /track/{order}/timeline: what the page shows.
func (g *Gateway) getTrackTimeline(w http.ResponseWriter, r *http.Request) *Problem {
	trackHeaders(w)
	order, expires, p := g.checkLink(r)
	if p != nil {
		return p
	}
	v := trackView{Order: order, ExpiresAt: expires.UTC().Format(time.RFC3339), Events: []trackEvent{}}
	if g.events != nil {
		// The head before the reads: an event committed between the two
		// comes by the stream (perhaps twice, never not at all).
		head, err := g.events.Head()
		if err == nil {
			v.StreamFrom, v.Live = head, true
		}
	}
	o, p := g.trackedOrder(r.Context(), order)
	if p != nil {
		return p
	}
	evs, err := g.grid.OrderEvents(order)
	if err != nil {
		return g.grainProblem(err, "order", order)
	}
	v.Status, v.CreatedAt, v.UpdatedAt = o.Status, timeString(o.CreatedUnixNano), timeString(o.UpdatedUnixNano)
	v.PromisedBy, v.Carrier, v.TrackingNumber = timeString(o.PromiseUnixNano), o.ShipmentCarrier, o.ShipmentTracking
	for _, e := range evs {
		if !isTrackType(e.Type) {
			continue
		}
		if len(v.Events) == trackEventsMax {
			v.Events = v.Events[1:] // the newest are what a buyer follows
		}
		v.Events = append(v.Events, trackEvent{Seq: e.Seq, Type: e.Type, Status: e.Status, At: timeString(e.AtUnixNano),
			Carrier: e.Details["carrier"], TrackingNumber: e.Details["tracking_number"]})
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func isTrackType(t string) bool {
	for _, x := range trackTypes {
		if x == t {
			return true
		}
	}
	return false
}

// trackStreaming serves a tracking stream: authorized by its link (no
// bearer token), outside admission control, bounded by TrackingStreamsMax.
func (g *Gateway) trackStreaming(route string, h func(w http.ResponseWriter, r *http.Request) *Problem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		if p := h(sw, r); p != nil {
			writeProblem(sw, p)
		}
		g.metrics.requests.WithLabelValues(route, fmt.Sprint(sw.code)).Inc()
	})
}

// getTrackStream serves GET /track/{order}/stream: the order's page events
// as Server-Sent Events (id = log index; Last-Event-ID and from resume like
// /v1/stream). It ends when the link expires: the page's reconnect is then
// refused (403) and it says so.
func (g *Gateway) getTrackStream(w http.ResponseWriter, r *http.Request) *Problem {
	trackHeaders(w)
	order, expires, p := g.checkLink(r)
	if p != nil {
		return p
	}
	if g.events == nil {
		return unavailable("this node serves no event stream (no audit log)")
	}
	from, field, p := resumePoint(r)
	if p != nil {
		return p
	}
	select {
	case g.trackSlots <- struct{}{}:
	default:
		g.metrics.rejects.WithLabelValues("overloaded").Inc()
		return &Problem{Status: http.StatusTooManyRequests, Name: "overloaded", Title: "Too many tracking pages",
			Detail: fmt.Sprintf("the node serves %d tracking streams, its limit; retry after the given seconds", cap(g.trackSlots)), RetryAfterSec: 5}
	}
	defer func() { <-g.trackSlots }()
	o, p := g.trackedOrder(r.Context(), order)
	if p != nil {
		return p
	}
	promised := timeString(o.PromiseUnixNano)
	// The link reads one order: a start before the order's first leaf is
	// moved up to it, so a public link cannot make the node scan the log.
	if floor, ok := g.orderFloor(order); ok && (from == nil || *from < floor) {
		from = &floor
	}
	reader, p := g.newReader(r.Context(), from, field, stream.Filter{Orders: []string{order}, Kinds: []string{ledger.KindOrder}, Types: trackTypes})
	if p != nil {
		return p
	}
	defer reader.Close()
	ctx, cancel := context.WithDeadline(r.Context(), expires)
	defer cancel()
	defer context.AfterFunc(g.streamsStopped, cancel)()
	g.serveSSE(ctx, w, reader, "track", func(it *stream.Item) []byte {
		e := &it.Event
		b, _ := json.Marshal(trackEvent{Seq: e.Seq, Type: e.Type, Status: e.Status, At: e.At,
			Carrier: e.Details["carrier"], TrackingNumber: e.Details["tracking_number"], PromisedBy: promised})
		return b
	})
	return nil
}

// getTrackAsset serves the page's stylesheet and script.
func (g *Gateway) getTrackAsset(w http.ResponseWriter, r *http.Request) *Problem {
	name := r.PathValue("file")
	if name != "track.css" && name != "track.js" {
		return notFound("file", name)
	}
	b, err := fs.ReadFile(trackAssets, "track/"+name)
	if err != nil {
		return notFound("file", name)
	}
	h := w.Header()
	h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// orderFloor is the lowest log index an event of order can have: its first
// leaf, or (none logged yet) the head before looking, since every leaf
// appended later is at or past it.
func (g *Gateway) orderFloor(order string) (uint64, bool) {
	if g.opts.Ledger == nil || g.events == nil {
		return 0, false
	}
	head, err := g.events.Head()
	if err != nil {
		return 0, false
	}
	leaves, err := g.opts.Ledger.OrderLeaves(order, 1)
	if err != nil {
		return 0, false
	}
	if len(leaves) == 1 {
		return leaves[0], true
	}
	return head, true
}
