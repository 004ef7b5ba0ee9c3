package gateway

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/merkle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// anchorsListMax bounds GET /v1/ledger/anchors.
const anchorsListMax = 1000

func (g *Gateway) ledgerRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	api("GET /v1/ledger", g.getLedger)
	api("GET /v1/ledger/checkpoint", g.getCheckpoint)
	api("GET /v1/ledger/checkpoints/{size}", g.getCheckpointAt)
	api("GET /v1/ledger/key", g.getLedgerKey)
	api("GET /v1/ledger/consistency", g.getConsistency)
	api("GET /v1/ledger/inclusion", g.getInclusion)
	api("GET /v1/ledger/anchors", g.getAnchors)
	api("GET /v1/orders/{id}/proof", g.getOrderProof)
}

func (g *Gateway) log() (*ledger.Log, *Problem) {
	if g.opts.Ledger == nil {
		return nil, &Problem{Status: http.StatusNotFound, Name: "no-ledger", Title: "No ledger", Detail: "this node runs without the ledger"}
	}
	return g.opts.Ledger, nil
}

// ledgerProblem maps the ledger's errors.
func ledgerProblem(param string, err error) *Problem {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return &Problem{Status: http.StatusNotFound, Name: "not-found", Title: "Not found", Detail: err.Error(),
			Errors: []*pb.FieldViolation{{Field: param, Detail: err.Error()}}}
	case errors.Is(err, merkle.ErrOutOfRange):
		return &Problem{Status: http.StatusBadRequest, Name: "out-of-range", Title: "Out of range", Detail: err.Error(),
			Errors: []*pb.FieldViolation{{Field: param, Detail: err.Error()}}}
	case errors.Is(err, ledger.ErrNoKey):
		return unavailable("the ledger is starting: its key is not made yet")
	case errors.Is(err, ledger.ErrCannotSeal):
		return unavailable("this node cannot seal proofs (it has no copy of the log's signer key); ask another node")
	default:
		return &Problem{Status: http.StatusInternalServerError, Name: "internal", Title: "Internal error", Detail: err.Error()}
	}
}

// uintParam reads a required unsigned decimal query or path parameter.
func uintParam(name, raw string) (uint64, *Problem) {
	if raw == "" {
		return 0, malformed(name, name+" is required")
	}
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return 0, malformed(name, fmt.Sprintf("%s=%q is not an unsigned decimal integer", name, raw))
	}
	return v, nil
}

func writeText(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (g *Gateway) getLedger(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	size, err := l.Size()
	if err != nil {
		return ledgerProblem("", err)
	}
	out := map[string]any{"size": size}
	if cs, _, err := l.LatestCheckpoint(); err == nil {
		out["checkpoint_size"] = cs
	}
	if k, err := l.Key(); err == nil {
		out["verifier_key"] = k.VerifierKey
	}
	if a, err := l.LatestAnchor(); err == nil {
		out["anchor"] = ledger.AnchorView(a)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) getCheckpoint(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	_, signed, err := l.LatestCheckpoint()
	if err != nil {
		return ledgerProblem("checkpoint", err)
	}
	writeText(w, signed)
	return nil
}

func (g *Gateway) getCheckpointAt(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	size, p := uintParam("size", r.PathValue("size"))
	if p != nil {
		return p
	}
	signed, err := l.Checkpoint(size)
	if err != nil {
		return ledgerProblem("size", err)
	}
	writeText(w, signed)
	return nil
}

func (g *Gateway) getLedgerKey(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	k, err := l.Key()
	if err != nil {
		return ledgerProblem("key", err)
	}
	writeText(w, []byte(k.VerifierKey+"\n"))
	return nil
}

func (g *Gateway) getConsistency(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	q := r.URL.Query()
	from, p := uintParam("from", q.Get("from"))
	if p != nil {
		return p
	}
	to, p := uintParam("to", q.Get("to"))
	if p != nil {
		return p
	}
	switch {
	case from == 0:
		return malformed("from", "from must be at least 1: every tree extends the empty one")
	case from > to:
		return malformed("from", fmt.Sprintf("from=%d is larger than to=%d", from, to))
	}
	proof, err := l.ConsistencyProof(from, to)
	if err != nil {
		return ledgerProblem("to", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "proof": merkle.EncodeProof(proof)})
	return nil
}

func (g *Gateway) getInclusion(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	q := r.URL.Query()
	index, p := uintParam("index", q.Get("index"))
	if p != nil {
		return p
	}
	size, p := uintParam("size", q.Get("size"))
	if p != nil {
		return p
	}
	if index >= size {
		return malformed("index", fmt.Sprintf("index=%d is beyond a tree of size=%d", index, size))
	}
	if _, err := l.Checkpoint(size); err != nil {
		return ledgerProblem("size", err)
	}
	leaf, err := l.Leaf(index)
	if err != nil {
		return ledgerProblem("index", err)
	}
	proof, err := l.InclusionProof(index, size)
	if err != nil {
		return ledgerProblem("index", err)
	}
	writeJSON(w, http.StatusOK, ledger.BundleEntry{Index: index, Leaf: encodeB64(leaf), Proof: merkle.EncodeProof(proof), Event: leaf})
	return nil
}

func (g *Gateway) getAnchors(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	limit := 100
	if raw := r.URL.Query().Get("limit"); raw != "" {
		v, p := uintParam("limit", raw)
		if p != nil {
			return p
		}
		if v < 1 || v > anchorsListMax {
			return malformed("limit", fmt.Sprintf("limit must be 1..%d", anchorsListMax))
		}
		limit = int(v)
	}
	recs, err := l.Anchors(limit)
	if err != nil {
		return ledgerProblem("", err)
	}
	out := make([]*ledger.Anchor, 0, len(recs))
	for _, a := range recs {
		out = append(out, ledger.AnchorView(a))
	}
	body := map[string]any{"anchors": out}
	if g.opts.AnchorStatus != nil {
		body["status"] = g.opts.AnchorStatus()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (g *Gateway) getOrderProof(w http.ResponseWriter, r *http.Request) *Problem {
	l, p := g.log()
	if p != nil {
		return p
	}
	id := r.PathValue("id")
	// Who may read the order may have its proof: a partner only its channels'.
	if _, p := g.readOrder(r.Context(), id); p != nil && p.Name != "archived" {
		return p // not allowed (403), unknown order (404), or the node cannot tell (503)
	}
	b, err := l.Bundle(id)
	if errors.Is(err, ledger.ErrNotFound) {
		// The order exists; the ledger has not caught up with it yet.
		return unavailable(fmt.Sprintf("order %q is not in a signed checkpoint yet: %v", id, err))
	}
	if err != nil {
		return ledgerProblem("id", err)
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
