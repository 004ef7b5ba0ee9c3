package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// getAuditExport streams the audit trail: every event that matches the
// filters, with its leaf and inclusion proof against one signed checkpoint
// given first. JSON Lines (default) or CSV; see ledger.Export.
func (g *Gateway) getAuditExport(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "the audit export", RoleCompliance); p != nil {
		return p
	}
	l, p := g.log()
	if p != nil {
		return p
	}
	q := r.URL.Query()
	var v violations
	for k := range q {
		switch k {
		case "from", "to", "order", "subject", "channel", "format":
		default:
			v.add(k, "unknown filter; use from, to, order, subject, channel, format")
		}
	}
	f := ledger.ExportFilter{Describe: map[string]string{}}
	for _, k := range []string{"from", "to"} {
		s := q.Get(k)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			v.add(k, "must be an RFC 3339 time such as 2026-11-22T08:00:00Z")
			continue
		}
		f.Describe[k] = t.UTC().Format(time.RFC3339Nano)
		if k == "from" {
			f.From = t
		} else {
			f.To = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		v.add("to", "must be after from")
	}
	format := q.Get("format")
	switch format {
	case "", "jsonl", "csv":
	default:
		v.add("format", "must be jsonl or csv")
	}
	order, subject, channel := q.Get("order"), q.Get("subject"), q.Get("channel")
	if order != "" && subject != "" {
		v.add("subject", "give order or subject, not both")
	}
	if order != "" && !validOrderID(order) {
		v.add("order", "is not an order id")
	}
	if subject != "" {
		v.text("subject", subject, true, 128)
	}
	if channel != "" {
		v.name("channel", channel)
	}
	if len(v) > 0 {
		return invalid(v...)
	}
	switch {
	case order != "":
		f.Orders, f.Describe["order"] = []string{order}, order
	case subject != "":
		orders, found, err := g.grid.SubjectOrderIDs(subject)
		if err != nil {
			return g.grainProblem(err, "subject", subject)
		}
		if !found {
			return notFound("subject", subject)
		}
		f.Orders, f.Describe["subject"] = orders, subject
	}
	if channel != "" {
		f.Channel, f.Describe["channel"] = channel, channel
		f.ChannelOf = func(id string) (string, error) {
			o, found, err := g.grid.ReadOrder(id)
			if err != nil || !found {
				return "", err
			}
			return o.Channel, nil
		}
	}
	var out ledger.ExportWriter
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		out = ledger.NewCSVExport(w)
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
		out = ledger.NewJSONLinesExport(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	n, err := l.Export(r.Context(), f, out)
	if errors.Is(err, ledger.ErrNotFound) && n == 0 {
		return unavailable("the log has no signed checkpoint yet; retry in a second")
	}
	if errors.Is(err, ledger.ErrCannotSeal) && n == 0 {
		return unavailable("this node cannot seal exports (it has no copy of the log's signer key); ask another node")
	}
	if err != nil {
		// The status is sent: say so in the body, where a verifier refuses it.
		g.logger.Error("audit export failed", slog.Any("error", err), slog.Uint64("exported", n))
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		if format == "csv" {
			_, _ = w.Write([]byte("error," + csvQuote(msg) + strings.Repeat(",", len(ledger.CSVHeader)-2) + "\n"))
		} else {
			b, _ := json.Marshal(map[string]string{"error": msg})
			_, _ = w.Write(append(b, '\n'))
		}
		return nil
	}
	g.metrics.orders.WithLabelValues("audit_exported").Add(float64(n))
	return nil
}

func csvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// archiveUploadBytesMax bounds an archive file sent for restore.
const archiveUploadBytesMax = 256 << 20

// postRestoreArchive takes an archive file (the body, gzip), verifies every
// order in it against this log's key, and puts the orders back into hot
// state. Role admin.
func (g *Gateway) postRestoreArchive(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "restoring archives"); p != nil {
		return p
	}
	l, p := g.log()
	if p != nil {
		return p
	}
	v, err := l.Verifier()
	if err != nil {
		return ledgerProblem("", err)
	}
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "/\\\x00") {
		return invalid(&pb.FieldViolation{Field: "name", Detail: "the archive's file name, without a directory"})
	}
	body := &watchedReader{r: http.MaxBytesReader(w, r.Body, archiveUploadBytesMax)}
	a, err := g.archives.VerifyArchive(body, v)
	switch {
	case err == nil:
	case body.err != nil: // the body, not the archive, is at fault: too large or cut short
		return bodyReadProblem(body.err, r.ContentLength)
	case body.n == 0:
		return malformed(bodyField, "the body is empty; send the archive file (gzip'd JSON Lines)")
	default:
		return &Problem{Status: http.StatusUnprocessableEntity, Name: "archive-invalid", Title: "Archive does not verify",
			Detail: err.Error(), Errors: []*pb.FieldViolation{{Field: "body", Detail: err.Error()}}}
	}
	n, err := a.Restore(r.Context(), name, principalName(r.Context()))
	if err != nil {
		g.logger.Error("restore archive", slog.Any("error", err), slog.Int("restored", n))
		return unavailable(fmt.Sprintf("restored %d orders, then: %v; send it again (restoring is idempotent)", n, err))
	}
	writeJSON(w, http.StatusOK, map[string]any{"archive": name, "orders": a.Orders, "restored": n, "statuses": a.Statuses})
	return nil
}

// watchedReader remembers how much it read and the first error other than
// io.EOF, so a reader's failure is told apart from bad content.
type watchedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && w.err == nil {
		w.err = err
	}
	return n, err
}
