package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/catalog"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/routing"
)

func (g *Gateway) routingRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	api("GET /v1/warehouses", g.getWarehouses)
	api("GET /v1/warehouses/{id}", g.getWarehouse)
	api("PUT /v1/warehouses/{id}", g.putWarehouse)
	api("PUT /v1/warehouses/{id}/state", g.putWarehouseState)
	api("GET /v1/routing/strategies", g.getStrategies)
	api("GET /v1/routing/strategies/{name}", g.getStrategy)
	api("PUT /v1/routing/strategies/{name}", g.putStrategy)
	api("GET /v1/routing/selection", g.getSelection)
	api("PUT /v1/routing/selection", g.putSelection)
	api("GET /v1/orders/{id}/routing", g.getOrderRouting)
	// A simulation of a million orders takes a while: bounded by the client
	// and by one simulation at a time, not by the request timeout.
	g.handle("POST /v1/routing/simulations", g.admit("POST /v1/routing/simulations", g.postSimulation, 0))
}

// routingProblem maps a routing error to a problem naming the field.
func routingProblem(err error) *Problem {
	var es routing.Errors
	if errors.As(err, &es) {
		v := make([]*pb.FieldViolation, len(es))
		for i, e := range es {
			if e.Malformed { // not JSON of the document's shape: 400, as every other body
				return malformed(e.Field, e.Field+": "+e.Detail)
			}
			v[i] = &pb.FieldViolation{Field: e.Field, Detail: e.Detail}
		}
		return invalid(v...)
	}
	var fe *routing.FieldError
	if errors.As(err, &fe) {
		if fe.Malformed {
			return malformed(fe.Field, fe.Field+": "+fe.Detail)
		}
		return invalid(&pb.FieldViolation{Field: fe.Field, Detail: fe.Detail})
	}
	var le *routing.LineError
	if errors.As(err, &le) {
		field := fmt.Sprintf("line %d", le.Line)
		if le.Field != "" {
			field += ": " + le.Field
		}
		if le.Malformed {
			return malformed(field, field+": "+le.Detail)
		}
		return invalid(&pb.FieldViolation{Field: field, Detail: le.Detail})
	}
	return nil
}

// changeProblem maps a failed catalog change.
func (g *Gateway) changeProblem(err error, what, id string) *Problem {
	if p := routingProblem(err); p != nil {
		return p
	}
	if errors.Is(err, catalog.ErrRoutingInput) {
		return invalid(detailViolation(strings.TrimPrefix(err.Error(), catalog.ErrRoutingInput.Error()+": "), "body"))
	}
	switch failure.OutcomeOf(err) {
	case gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION:
		return &Problem{Status: http.StatusPreconditionFailed, Name: "version-mismatch", Title: "Changed meanwhile",
			Detail: failure.Detail(err), Errors: []*pb.FieldViolation{{Field: "If-Match", Detail: "not the current version"}}}
	case gridpb.Outcome_OUTCOME_NOT_FOUND:
		return invalid(detailViolation(failure.Detail(err), "strategy"))
	}
	return g.grainProblem(err, what, id)
}

// detailViolation names the field a state machine's detail starts with
// ("candidate.strategy: no strategy \"green\""), else fallback.
func detailViolation(detail, fallback string) *pb.FieldViolation {
	if field, rest, ok := strings.Cut(detail, ": "); ok && field != "" && !strings.ContainsAny(field, " \"") {
		return &pb.FieldViolation{Field: field, Detail: rest}
	}
	return &pb.FieldViolation{Field: fallback, Detail: detail}
}

// rawBody reads a routing document: JSON, bounded, not empty, and strict
// as every body is (no key twice, valid UTF-8, nothing after the value).
func (g *Gateway) rawBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	raw, p := g.jsonBody(w, r, min(g.opts.BodyBytesMax, routing.DocumentBytesMax))
	if p != nil {
		return nil, p
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, emptyBody()
	}
	if p := strictJSON(raw); p != nil {
		return nil, p
	}
	return raw, nil
}

// warehouseView is a warehouse with its load today.
type warehouseView struct {
	*routing.Warehouse
	Today *dayLoad `json:"today"`
}

type dayLoad struct {
	Day      int32  `json:"day"`
	Parcels  int64  `json:"parcels"`
	Capacity *int64 `json:"capacity_left,omitempty"`
}

func (g *Gateway) viewOf(c *routing.Catalog, w *routing.Warehouse) warehouseView {
	day := c.DayOf(w.ID, time.Now())
	d := &dayLoad{Day: day, Parcels: g.routing.Loads(w.ID, day)}
	if w.CapacityPerDay > 0 {
		left := max(0, w.CapacityPerDay-d.Parcels)
		d.Capacity = &left
	}
	return warehouseView{Warehouse: w, Today: d}
}

func (g *Gateway) getWarehouses(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading warehouses", RoleOps, RoleCompliance); p != nil {
		return p
	}
	c := g.routing.Catalog()
	out := []warehouseView{}
	for _, wh := range c.Warehouses() {
		out = append(out, g.viewOf(c, wh))
	}
	writeJSON(w, http.StatusOK, map[string]any{"warehouses": out, "generation": c.Generation})
	return nil
}

func (g *Gateway) getWarehouse(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading warehouses", RoleOps, RoleCompliance); p != nil {
		return p
	}
	c := g.routing.Catalog()
	wh, ok := c.Warehouse(r.PathValue("id"))
	if !ok {
		return notFound("warehouse", r.PathValue("id"))
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(wh.Version, 10)))
	writeJSON(w, http.StatusOK, g.viewOf(c, wh))
	return nil
}

// expectedVersion reads If-Match: "3" (the ETag of a GET).
func expectedVersion(r *http.Request) (uint64, *Problem) {
	m := r.Header.Get("If-Match")
	if m == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.Trim(m, `"`), 10, 64)
	if err != nil || v == 0 {
		return 0, malformed("If-Match", fmt.Sprintf("If-Match %q: want the quoted version from the ETag, e.g. \"3\"", m))
	}
	return v, nil
}

func (g *Gateway) putWarehouse(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing warehouses", RoleOps); p != nil {
		return p
	}
	raw, p := g.rawBody(w, r)
	if p != nil {
		return p
	}
	expected, p := expectedVersion(r)
	if p != nil {
		return p
	}
	wh, err := routing.ParseWarehouse(raw, r.PathValue("id"))
	if err != nil {
		return routingProblem(err)
	}
	return g.storeWarehouse(w, r, wh, expected)
}

func (g *Gateway) storeWarehouse(w http.ResponseWriter, r *http.Request, wh *routing.Warehouse, expected uint64) *Problem {
	_, existed := g.routing.Catalog().Warehouse(wh.ID)
	stored, err := g.routing.PutWarehouse(r.Context(), principalName(r.Context()), wh, expected)
	if err != nil {
		return g.changeProblem(err, "warehouse", wh.ID)
	}
	code := http.StatusOK
	if !existed && stored.Version == 1 {
		code = http.StatusCreated
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(stored.Version, 10)))
	writeJSON(w, code, g.viewOf(g.routing.Catalog(), stored))
	return nil
}

// warehouseState is the body of PUT /v1/warehouses/{id}/state.
type warehouseState struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

func (g *Gateway) putWarehouseState(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing warehouses", RoleOps); p != nil {
		return p
	}
	var st warehouseState
	if p := g.decode(w, r, &st, false); p != nil {
		return p
	}
	cat, err := g.routing.Fresh() // this node's replica may not have the warehouse yet
	if err != nil {
		return g.grainProblem(err, "warehouse", r.PathValue("id"))
	}
	cur, ok := cat.Warehouse(r.PathValue("id"))
	if !ok {
		return notFound("warehouse", r.PathValue("id"))
	}
	next := *cur
	next.State, next.StateReason, next.Version = st.State, st.Reason, 0
	if err := next.Validate(); err != nil {
		return routingProblem(err)
	}
	expected, p := expectedVersion(r)
	if p != nil {
		return p
	}
	if expected == 0 {
		expected = cur.Version // the state changes, nothing else this read did not see
	}
	return g.storeWarehouse(w, r, &next, expected)
}

func (g *Gateway) getStrategies(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading routing strategies", RoleOps, RoleCompliance); p != nil {
		return p
	}
	c := g.routing.Catalog()
	type summary struct {
		Name     string            `json:"name"`
		Newest   *routing.Strategy `json:"newest"`
		Versions int               `json:"versions"`
	}
	out := []summary{}
	for _, n := range c.StrategyNames() {
		vs := c.StrategyVersions(n)
		out = append(out, summary{Name: n, Newest: vs[len(vs)-1], Versions: len(vs)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"strategies": out, "selection": c.Selection()})
	return nil
}

func (g *Gateway) getStrategy(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading routing strategies", RoleOps, RoleCompliance); p != nil {
		return p
	}
	name := r.PathValue("name")
	c := g.routing.Catalog()
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return malformed("version", "version must be a positive integer")
		}
		s, ok := c.Strategy(name, n)
		if !ok {
			return notFound("strategy version", fmt.Sprintf("%s@%d", name, n))
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	}
	vs := c.StrategyVersions(name)
	if len(vs) == 0 {
		return notFound("strategy", name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "versions": vs})
	return nil
}

func (g *Gateway) putStrategy(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "changing routing strategies"); p != nil {
		return p
	}
	raw, p := g.rawBody(w, r)
	if p != nil {
		return p
	}
	s, err := routing.ParseStrategy(raw, r.PathValue("name"))
	if err != nil {
		return routingProblem(err)
	}
	stored, err := g.routing.PutStrategy(r.Context(), principalName(r.Context()), s)
	if err != nil {
		return g.changeProblem(err, "strategy", s.Name)
	}
	w.Header().Set("Location", fmt.Sprintf("/v1/routing/strategies/%s?version=%d", stored.Name, stored.Version))
	writeJSON(w, http.StatusCreated, stored)
	return nil
}

func (g *Gateway) getSelection(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading routing strategies", RoleOps, RoleCompliance); p != nil {
		return p
	}
	sel := g.routing.Catalog().Selection()
	if sel == nil {
		d, _ := g.routing.Catalog().Strategy(routing.StrategyNameDefault, 1)
		writeJSON(w, http.StatusOK, map[string]any{"strategy": d.Name, "version": d.Version, "built_in": true, "document": d})
		return nil
	}
	writeJSON(w, http.StatusOK, sel)
	return nil
}

func (g *Gateway) putSelection(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "activating routing strategies"); p != nil {
		return p
	}
	raw, p := g.rawBody(w, r)
	if p != nil {
		return p
	}
	sel, err := routing.ParseSelection(raw)
	if err != nil {
		return routingProblem(err)
	}
	stored, err := g.routing.ActivateStrategy(r.Context(), principalName(r.Context()), sel)
	if err != nil {
		return g.changeProblem(err, "strategy", sel.Strategy)
	}
	writeJSON(w, http.StatusOK, stored)
	return nil
}

func (g *Gateway) getOrderRouting(w http.ResponseWriter, r *http.Request) *Problem {
	id := r.PathValue("id")
	if _, p := g.readOrder(r.Context(), id); p != nil {
		return p
	}
	rec, ok, err := g.routing.OrderRouting(id)
	if err != nil {
		return g.grainProblem(err, "order", id)
	}
	if !ok {
		return &Problem{Status: http.StatusNotFound, Name: "not-found", Title: "Not found",
			Detail: "order " + id + " has no routing record (it was created before routing was recorded)"}
	}
	s, found := g.routing.Catalog().Strategy(rec.Strategy, rec.Version)
	if !found {
		return g.grainProblem(fmt.Errorf("strategy %s@%d not in the catalog", rec.Strategy, rec.Version), "order", id)
	}
	e, err := routing.Explain(id, rec, s)
	if err != nil {
		return g.grainProblem(err, "order", id)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// simulationRequest is the body of POST /v1/routing/simulations (with
// Content-Type application/json), or its first line (application/x-ndjson,
// the orders on the lines after it).
type simulationRequest struct {
	// Strategies are stored versions: "name" (the newest) or "name@3".
	Strategies []string `json:"strategies"`
	// Drafts are strategy documents tried without storing them.
	Drafts []json.RawMessage `json:"drafts"`
	Source struct {
		Log *struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"log"`
		Synthetic *routing.SyntheticSpec `json:"synthetic"`
	} `json:"source"`
	// Warehouses: "catalog" (default) or "synthetic" (the synthetic world's).
	Warehouses string `json:"warehouses"`
	// Snapshot is the stock and load to start from; null: the grid's
	// current free stock and loads (the synthetic stock with synthetic
	// warehouses).
	Snapshot *routing.Snapshot `json:"snapshot"`
}

func (g *Gateway) postSimulation(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "running routing simulations", RoleOps); p != nil {
		return p
	}
	select {
	case g.simulating <- struct{}{}:
		defer func() { <-g.simulating }()
	default:
		return &Problem{Status: http.StatusTooManyRequests, Name: "simulation-running", Title: "A simulation is running",
			Detail: "this node runs one simulation at a time; retry when it ends", RetryAfterSec: 5}
	}
	ndjson := strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson")
	var req simulationRequest
	var lines *bufio.Reader
	if ndjson {
		lines = bufio.NewReaderSize(r.Body, 64<<10)
		first, err := readLine(lines)
		if err != nil && !errors.Is(err, io.EOF) {
			return malformed("line 1", "line 1: "+lineReadDetail(err))
		}
		if len(bytes.TrimSpace(first)) == 0 {
			return malformed("line 1", "line 1: empty; the first line is the simulation request, a JSON object")
		}
		if p := DecodeJSON(first, &req); p != nil {
			p.Detail = "line 1 (the simulation): " + p.Detail
			return p
		}
	} else if p := g.decode(w, r, &req, false); p != nil {
		return p
	}
	strategies, p := g.simStrategies(&req)
	if p != nil {
		return p
	}
	src := req.Source
	sources := 0
	for _, set := range []bool{src.Log != nil, src.Synthetic != nil, ndjson} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return invalid(&pb.FieldViolation{Field: "source", Detail: "exactly one of source.log, source.synthetic, or orders on the lines after the first (application/x-ndjson)"})
	}
	cat := g.routing.Catalog()
	var next routing.OrderSource
	switch {
	case src.Synthetic != nil:
		if err := src.Synthetic.Validate(); err != nil {
			return prefixed(routingProblem(err), "source.synthetic.")
		}
		next = routing.SyntheticOrders(*src.Synthetic)
	case src.Log != nil:
		from, err1 := time.Parse(time.RFC3339, src.Log.From)
		to, err2 := time.Parse(time.RFC3339, src.Log.To)
		switch {
		case err1 != nil:
			return invalid(&pb.FieldViolation{Field: "source.log.from", Detail: "want an RFC 3339 time"})
		case err2 != nil || !to.After(from):
			return invalid(&pb.FieldViolation{Field: "source.log.to", Detail: "want an RFC 3339 time after from"})
		}
		orders, err := g.routing.LoggedOrders(r.Context(), from, to)
		if err != nil {
			return g.grainProblem(err, "log", src.Log.From)
		}
		next = sliceSource(orders)
	default:
		next = lineSource(lines)
	}
	snap := req.Snapshot
	switch req.Warehouses {
	case "", "catalog":
		if snap == nil {
			snap = &routing.Snapshot{FetchStock: g.routing.CurrentFree, FetchLoad: g.routing.Loads}
		}
	case "synthetic":
		if src.Synthetic == nil {
			return invalid(&pb.FieldViolation{Field: "warehouses", Detail: "synthetic warehouses come with source.synthetic"})
		}
		ws := routing.SyntheticWarehouses(*src.Synthetic)
		var err error
		if cat, err = routing.NewCatalog(0, ws, nil, nil); err != nil {
			return g.grainProblem(err, "simulation", "")
		}
		if snap == nil {
			snap = routing.SyntheticStock(*src.Synthetic, ws)
		}
	default:
		return invalid(&pb.FieldViolation{Field: "warehouses", Detail: fmt.Sprintf("%q: want catalog or synthetic", req.Warehouses)})
	}
	rep, err := routing.Simulate(r.Context(), cat, strategies, next, snap, nil)
	if err != nil {
		if p := routingProblem(err); p != nil {
			return p
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return unavailable("the simulation was cancelled")
		}
		return g.grainProblem(err, "simulation", "")
	}
	if r.URL.Query().Get("format") == "table" || strings.HasPrefix(r.Header.Get("Accept"), "text/plain") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = rep.WriteTable(w) // the status is out: a broken write is the client's
		return nil
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// prefixed renames a problem's fields under a prefix.
func prefixed(p *Problem, prefix string) *Problem {
	for _, e := range p.Errors {
		if strings.HasPrefix(p.Detail, e.Field) {
			p.Detail = prefix + p.Detail
		}
		e.Field = prefix + e.Field
	}
	return p
}

func (g *Gateway) simStrategies(req *simulationRequest) ([]*routing.Strategy, *Problem) {
	if n := len(req.Strategies) + len(req.Drafts); n == 0 || n > routing.SimulationStrategiesMax {
		return nil, invalid(&pb.FieldViolation{Field: "strategies", Detail: fmt.Sprintf("%d strategies and drafts, want 1..%d", n, routing.SimulationStrategiesMax)})
	}
	c := g.routing.Catalog()
	var out []*routing.Strategy
	for i, ref := range req.Strategies {
		name, v, hasV := strings.Cut(ref, "@")
		version := uint64(0)
		if hasV {
			var err error
			if version, err = strconv.ParseUint(v, 10, 64); err != nil || version == 0 {
				return nil, invalid(&pb.FieldViolation{Field: fmt.Sprintf("strategies[%d]", i), Detail: fmt.Sprintf("%q: want name or name@version", ref)})
			}
		}
		s, ok := c.Strategy(name, version)
		if !ok {
			return nil, invalid(&pb.FieldViolation{Field: fmt.Sprintf("strategies[%d]", i), Detail: fmt.Sprintf("no strategy %q", ref)})
		}
		out = append(out, s)
	}
	for i, raw := range req.Drafts {
		s, err := routing.ParseStrategy(raw, "")
		if err != nil {
			return nil, prefixed(routingProblem(err), fmt.Sprintf("drafts[%d].", i))
		}
		out = append(out, s) // version 0: a draft
	}
	return out, nil
}

func sliceSource(orders []*routing.Order) routing.OrderSource {
	i := 0
	return func() (*routing.Order, error) {
		if i >= len(orders) {
			return nil, io.EOF
		}
		i++
		return orders[i-1], nil
	}
}

// lineSource reads one order per line after the first; blank lines are skipped.
func lineSource(r *bufio.Reader) routing.OrderSource {
	n := 1
	return func() (*routing.Order, error) {
		for {
			line, err := readLine(r)
			if len(line) == 0 && err != nil {
				if errors.Is(err, io.EOF) {
					return nil, io.EOF
				}
				return nil, &routing.LineError{Line: n + 1, Detail: lineReadDetail(err), Malformed: true}
			}
			n++
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			return routing.ParseOrderDoc(line, n)
		}
	}
}

// simLineBytesMax bounds one line of a simulation body.
const simLineBytesMax = 64 << 10

// errLineTooLong is a line of a simulation body over simLineBytesMax.
var errLineTooLong = fmt.Errorf("a line longer than %d bytes", simLineBytesMax)

// lineReadDetail says why a line could not be read, without the reader's
// own error text.
func lineReadDetail(err error) string {
	if errors.Is(err, errLineTooLong) {
		return err.Error()
	}
	return "the body could not be read to its end (the connection failed or the body was cut short)"
}

// readLine reads one line without its newline, refusing lines over simLineBytesMax.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		line = append(line, chunk...)
		if len(line) > simLineBytesMax {
			return nil, errLineTooLong
		}
		if err != nil || !isPrefix {
			return line, err
		}
	}
}
