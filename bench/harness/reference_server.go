package harness

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Limits of the reference server, the node's defaults.
const (
	// refBodyBytesMax is the largest request body (the node's
	// http.body_bytes_max default).
	refBodyBytesMax = 4 << 20
	// refBatchMax is the most orders in one batch (orders.batch_max).
	refBatchMax = 1000
	// refLinesMax is the most lines in one order (orders.lines_max).
	refLinesMax = 100
	// refQtyMax is the largest quantity of one line (orders.qty_max).
	refQtyMax = 1_000_000
	// refReadHeaderTimeout bounds reading a request's header.
	refReadHeaderTimeout = 10 * time.Second
	// refIdleTimeout closes a keep-alive connection left idle.
	refIdleTimeout = 2 * time.Minute
	// problemTypeBase prefixes a problem's type, as the node's do.
	problemTypeBase = "https://ordergrid.dev/problems/"
)

// refServer is the reference: a do-nothing order intake over HTTP/JSON. It
// takes the requests the harness sends the node (strict JSON into the same
// request types), keeps orders in a map by idempotency key and a stock
// counter per SKU, and answers as the node does closely enough for the
// harness's client. No validation beyond the shape, no persistence, no
// audit log, no cluster: what is left is the HTTP stack and JSON, the floor
// under any intake on this machine.
//
// One mutex guards the maps: a reservation of several lines and the
// idempotency check must be one step, and the critical section is a few
// map operations.
type refServer struct {
	token string
	mux   *http.ServeMux

	mu     sync.Mutex
	orders map[string]*refOrder // by idempotency key
	byID   map[string]*refOrder
	stock  map[string]*refStock // by SKU
}

// refStock is one SKU's stock: on hand per warehouse, and what accepted
// orders reserved. Available is total minus reserved and never below zero.
type refStock struct {
	onHand   map[string]int64 // by warehouse
	total    int64            // sum of onHand
	reserved int64
}

func (s *refStock) available() int64 { return s.total - s.reserved }

// refOrder is an accepted order: its view and the view encoded, which a
// retry gets back as it is.
type refOrder struct {
	key  string // the orders map's key: idempotency key, or channel order id
	view refOrderView
	need map[string]int64 // units reserved, by SKU
	body []byte
}

// refOrderView is the part of the node's order JSON the harness reads, and
// the fields that identify the order.
type refOrderView struct {
	ID             string        `json:"id"`
	Status         string        `json:"status"`
	Channel        string        `json:"channel"`
	ChannelOrderID string        `json:"channel_order_id"`
	Lines          []refLineView `json:"lines"`
	Currency       string        `json:"currency"`
	Version        uint64        `json:"version"`
	CreatedAt      string        `json:"created_at"`
	UpdatedAt      string        `json:"updated_at"`
	IdempotencyKey string        `json:"idempotency_key,omitempty"`
}

type refLineView struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice string `json:"unit_price"`
}

// refProblem is an RFC 9457 problem detail, shaped as the node's.
type refProblem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Errors []refViolation `json:"errors,omitempty"`
	SKU    string         `json:"sku,omitempty"`
}

type refViolation struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func newProblem(status int, name, title, field, detail string) *refProblem {
	p := &refProblem{Type: problemTypeBase + name, Title: title, Status: status, Detail: detail}
	if field != "" {
		p.Errors = []refViolation{{Field: field, Detail: detail}}
	}
	return p
}

// refBatchResult is one order's answer in a batch.
type refBatchResult struct {
	Status  int             `json:"status"`
	Order   json.RawMessage `json:"order,omitempty"`
	Problem *refProblem     `json:"problem,omitempty"`
}

// newRefServer returns a reference server; a non-empty token must come as
// "Authorization: Bearer <token>" on every API route (not on /readyz and
// /healthz, as on the node).
func newRefServer(token string) *refServer {
	s := &refServer{token: token, mux: http.NewServeMux(),
		orders: map[string]*refOrder{}, byID: map[string]*refOrder{}, stock: map[string]*refStock{}}
	s.mux.HandleFunc("POST /v1/orders", s.authed(s.postOrder))
	s.mux.HandleFunc("POST /v1/orders:batch", s.authed(s.postBatch))
	s.mux.HandleFunc("GET /v1/orders/{id}", s.authed(s.getOrder))
	s.mux.HandleFunc("POST /v1/orders/{id}/events", s.authed(s.postEvent))
	s.mux.HandleFunc("PUT /v1/skus/{sku}/stock/{warehouse}", s.authed(s.putStock))
	s.mux.HandleFunc("GET /v1/skus/{sku}", s.authed(s.getSKU))
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"status":"ready"}`+"\n"))
	}
	s.mux.HandleFunc("GET /readyz", ok)
	s.mux.HandleFunc("GET /healthz", ok)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblemJSON(w, newProblem(http.StatusNotFound, "no-route", "No such route", "",
			r.Method+" "+r.URL.Path+" is not a route of the reference server"))
	})
	return s
}

// newRefHTTPServer is the http.Server of a reference server.
func newRefHTTPServer(token string, logger *slog.Logger) *http.Server {
	return &http.Server{Handler: newRefServer(token), ReadHeaderTimeout: refReadHeaderTimeout, IdleTimeout: refIdleTimeout,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}

// ServeHTTP implements http.Handler.
func (s *refServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *refServer) authed(h http.HandlerFunc) http.HandlerFunc {
	if s.token == "" {
		return h
	}
	want := []byte("Bearer " + s.token)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeProblemJSON(w, newProblem(http.StatusUnauthorized, "unauthenticated", "Unauthenticated", "",
				"send Authorization: Bearer <token>"))
			return
		}
		h(w, r)
	}
}

func writeRaw(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeJSONBody(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblemJSON(w, newProblem(http.StatusInternalServerError, "internal", "Internal error", "", err.Error()))
		return
	}
	writeRaw(w, code, append(b, '\n'))
}

func writeProblemJSON(w http.ResponseWriter, p *refProblem) {
	b, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeStrict reads one JSON value into dst as the node does: no unknown
// fields, nothing after the value, at most refBodyBytesMax bytes.
func decodeStrict(w http.ResponseWriter, r *http.Request, dst any) *refProblem {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "", "send application/json, not "+ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, refBodyBytesMax))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Body too large", "",
				fmt.Sprintf("the body exceeds %d bytes", tooBig.Limit))
		}
		field := ""
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(name, `"`)
		}
		return newProblem(http.StatusBadRequest, "malformed-request", "Malformed request", field, "malformed JSON: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newProblem(http.StatusBadRequest, "malformed-request", "Malformed request", "", "unexpected data after the JSON value")
	}
	return nil
}

// refOrderID is the order id of a request, derived from its idempotency
// key (or channel order id) as the node derives it, so a retry names the
// same order.
func refOrderID(key string) string {
	h := sha256.Sum256([]byte(key))
	return "o_" + hex.EncodeToString(h[:16])
}

// validateRef checks the shape the reservation relies on and returns the
// units wanted per SKU.
func validateRef(req *pb.CreateOrderRequest, prefix string) (map[string]int64, *refProblem) {
	invalid := func(field, detail string) *refProblem {
		return newProblem(http.StatusUnprocessableEntity, "validation-failed", "Invalid request", prefix+field, prefix+field+": "+detail)
	}
	if req == nil {
		return nil, invalid("", "is missing")
	}
	if req.IdempotencyKey == "" && (req.Channel == "" || req.ChannelOrderId == "") {
		return nil, invalid("idempotency_key", "is required (or channel and channel_order_id)")
	}
	if len(req.Lines) == 0 || len(req.Lines) > refLinesMax {
		return nil, invalid("lines", fmt.Sprintf("must have 1..%d lines", refLinesMax))
	}
	need := make(map[string]int64, len(req.Lines))
	for i, l := range req.Lines {
		switch {
		case l == nil || l.Sku == "":
			return nil, invalid(fmt.Sprintf("lines[%d].sku", i), "is required")
		case l.Qty < 1 || l.Qty > refQtyMax:
			return nil, invalid(fmt.Sprintf("lines[%d].qty", i), fmt.Sprintf("must be 1..%d", refQtyMax))
		}
		need[l.Sku] += l.Qty
	}
	return need, nil
}

// create takes one order: a new key reserves its units and answers 201, a
// known key answers 200 with the order it made, a short SKU 409.
func (s *refServer) create(req *pb.CreateOrderRequest, prefix string) (int, *refOrder, *refProblem) {
	need, p := validateRef(req, prefix)
	if p != nil {
		return 0, nil, p
	}
	key := "key\x00" + req.IdempotencyKey
	if req.IdempotencyKey == "" {
		key = "channel\x00" + req.Channel + "\x00" + req.ChannelOrderId
	}
	// The view is made and encoded before taking the lock; a retry throws
	// it away.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	o := &refOrder{key: key, need: need, view: refOrderView{ID: refOrderID(key), Status: "pending_payment", Channel: req.Channel,
		ChannelOrderID: req.ChannelOrderId, Currency: req.Currency, Version: 1, CreatedAt: now, UpdatedAt: now,
		IdempotencyKey: req.IdempotencyKey, Lines: make([]refLineView, len(req.Lines))}}
	for i, l := range req.Lines {
		o.view.Lines[i] = refLineView{SKU: l.Sku, Qty: l.Qty, UnitPrice: l.UnitPrice}
	}
	body, err := json.Marshal(&o.view)
	if err != nil {
		return 0, nil, newProblem(http.StatusInternalServerError, "internal", "Internal error", "", err.Error())
	}
	o.body = append(body, '\n')

	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.orders[key]; ok {
		return http.StatusOK, prev, nil
	}
	for sku, q := range need {
		if st := s.stock[sku]; st == nil || st.available() < q {
			p := newProblem(http.StatusConflict, "insufficient-stock", "Insufficient stock", "", "not enough stock of "+sku)
			p.SKU = sku
			for i, l := range req.Lines {
				if l.Sku == sku {
					p.Errors = []refViolation{{Field: fmt.Sprintf("%slines[%d].sku", prefix, i), Detail: "not enough stock of " + sku}}
					break
				}
			}
			return 0, nil, p
		}
	}
	for sku, q := range need {
		s.stock[sku].reserved += q
	}
	s.orders[key] = o
	s.byID[o.view.ID] = o
	return http.StatusCreated, o, nil
}

func (s *refServer) postOrder(w http.ResponseWriter, r *http.Request) {
	var req pb.CreateOrderRequest
	if p := decodeStrict(w, r, &req); p != nil {
		writeProblemJSON(w, p)
		return
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		req.IdempotencyKey = k
	}
	code, o, p := s.create(&req, "")
	if p != nil {
		writeProblemJSON(w, p)
		return
	}
	if code == http.StatusOK {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/orders/"+o.view.ID)
	writeRaw(w, code, o.body)
}

func (s *refServer) postBatch(w http.ResponseWriter, r *http.Request) {
	var req pb.BatchCreateOrdersRequest
	if p := decodeStrict(w, r, &req); p != nil {
		writeProblemJSON(w, p)
		return
	}
	if len(req.Orders) == 0 || len(req.Orders) > refBatchMax {
		writeProblemJSON(w, newProblem(http.StatusUnprocessableEntity, "validation-failed", "Invalid request", "orders",
			fmt.Sprintf("orders: must have 1..%d orders, has %d", refBatchMax, len(req.Orders))))
		return
	}
	out := struct {
		Results []refBatchResult `json:"results"`
	}{Results: make([]refBatchResult, len(req.Orders))}
	for i, o := range req.Orders {
		code, order, p := s.create(o, fmt.Sprintf("orders[%d].", i))
		if p != nil {
			out.Results[i] = refBatchResult{Status: p.Status, Problem: p}
			continue
		}
		out.Results[i] = refBatchResult{Status: code, Order: order.body}
	}
	writeJSONBody(w, http.StatusOK, out)
}

func (s *refServer) getOrder(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	o := s.byID[r.PathValue("id")]
	var body []byte
	if o != nil {
		body = o.body
	}
	s.mu.Unlock()
	if o == nil {
		writeProblemJSON(w, newProblem(http.StatusNotFound, "not-found", "Not found", "order", fmt.Sprintf("no order %q", r.PathValue("id"))))
		return
	}
	writeRaw(w, http.StatusOK, body)
}

// postEvent moves an order to the event's type, whatever it is (the
// reference keeps no state machine); a cancel gives its units back.
func (s *refServer) postEvent(w http.ResponseWriter, r *http.Request) {
	var req pb.OrderEventRequest
	if p := decodeStrict(w, r, &req); p != nil {
		writeProblemJSON(w, p)
		return
	}
	id := r.PathValue("id")
	if req.Type == "" {
		writeProblemJSON(w, newProblem(http.StatusUnprocessableEntity, "validation-failed", "Invalid request", "type", "type: is required"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.byID[id]
	if o == nil {
		writeProblemJSON(w, newProblem(http.StatusNotFound, "not-found", "Not found", "order", fmt.Sprintf("no order %q", id)))
		return
	}
	if req.Type == "cancelled" && o.view.Status != "cancelled" {
		for sku, q := range o.need {
			s.stock[sku].reserved -= q
		}
	}
	v := o.view
	v.Status, v.Version, v.UpdatedAt = req.Type, v.Version+1, time.Now().UTC().Format(time.RFC3339Nano)
	body, err := json.Marshal(&v)
	if err != nil {
		writeProblemJSON(w, newProblem(http.StatusInternalServerError, "internal", "Internal error", "", err.Error()))
		return
	}
	// A new order value: a retry in flight still holds the old one whole.
	next := &refOrder{key: o.key, view: v, need: o.need, body: append(body, '\n')}
	s.orders[o.key] = next
	s.byID[id] = next
	writeRaw(w, http.StatusOK, next.body)
}

// refStockView is a SKU's stock in the reference.
type refStockView struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
}

func (s *refServer) putStock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OnHand *int64 `json:"on_hand"`
	}
	if p := decodeStrict(w, r, &body); p != nil {
		writeProblemJSON(w, p)
		return
	}
	if body.OnHand == nil || *body.OnHand < 0 {
		writeProblemJSON(w, newProblem(http.StatusUnprocessableEntity, "validation-failed", "Invalid request", "on_hand", "on_hand: is required, at least 0"))
		return
	}
	sku, wh := r.PathValue("sku"), r.PathValue("warehouse")
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stock[sku]
	if st == nil {
		st = &refStock{onHand: map[string]int64{}}
		s.stock[sku] = st
	}
	total := st.total - st.onHand[wh] + *body.OnHand
	if total < st.reserved {
		writeProblemJSON(w, newProblem(http.StatusConflict, "below-reserved", "Stock below reservations", "on_hand", "on_hand: below what is reserved"))
		return
	}
	st.onHand[wh], st.total = *body.OnHand, total
	writeJSONBody(w, http.StatusOK, refStockView{SKU: sku, OnHand: st.total, Reserved: st.reserved, Available: st.available()})
}

func (s *refServer) getSKU(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	s.mu.Lock()
	st := s.stock[sku]
	var v refStockView
	if st != nil {
		v = refStockView{SKU: sku, OnHand: st.total, Reserved: st.reserved, Available: st.available()}
	}
	s.mu.Unlock()
	if st == nil {
		writeProblemJSON(w, newProblem(http.StatusNotFound, "not-found", "Not found", "sku", fmt.Sprintf("no SKU %q", sku)))
		return
	}
	writeJSONBody(w, http.StatusOK, v)
}
