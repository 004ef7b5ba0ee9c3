package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

// looksLikeExport tells an export file (JSON Lines with an export header,
// or CSV starting with its checkpoint record) from a bundle.
func looksLikeExport(name string) (bool, error) {
	if name == "-" {
		return false, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	// Any version of the format: the verifier says which it reads.
	version, _, _ := strings.Cut(ledger.ExportFormat, "/")
	return bytes.HasPrefix(head, []byte(`{"format":"`+version+"/")) || bytes.HasPrefix(head, []byte("checkpoint,")), nil
}

// exportShownMax is how many events verify prints of an export.
const exportShownMax = 20

// verifyExport verifies the export file name against the log's verifier,
// as ordergrid verify does, handing each entry to each as it goes (see
// ledger.VerifyExportEach: nothing each was given is to be trusted unless
// this returns nil). An error wraps ledger.ErrExport when the export does
// not verify; any other error is the file's.
func verifyExport(name string, v *checkpoint.Verifier, each func(where string, index uint64, ev *ledger.Event)) (*ledger.VerifiedExport, uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return ledger.VerifyExportEach(f, v, each)
}

func verifyExportFile(name string, v *checkpoint.Verifier, fabricEnv, node, token string, timeout time.Duration, stdout, stderr io.Writer) int {
	var shown []*ledger.Event
	var indexes []uint64
	got, n, err := verifyExport(name, v, func(_ string, i uint64, ev *ledger.Event) {
		if len(shown) < exportShownMax {
			shown, indexes = append(shown, ev), append(indexes, i)
		}
	})
	if err != nil {
		if !errors.Is(err, ledger.ErrExport) {
			fmt.Fprintf(stderr, "ordergrid verify: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "NOT VERIFIED: %v\n", err)
		return 1
	}
	c := got.Checkpoint
	fmt.Fprintf(stdout, "VERIFIED: audit export: %d events in the log %s, checkpoint of %d leaves, root %s\n", n, c.Origin, c.Size, c.Root)
	if len(got.Filters) > 0 {
		fmt.Fprintf(stdout, "filters: %v\n", got.Filters)
	}
	switch got.Complete {
	case "checkpoint":
		fmt.Fprintf(stdout, "complete: every leaf 0..%d of the checkpoint, once, in order\n", c.Size-1)
	case "seal":
		fmt.Fprintf(stdout, "complete: exactly the %d leaves the log's key sealed for these filters (that the filters were applied honestly is the operator's word)\n", n)
	}
	for i, e := range shown {
		who := e.Principal
		if who == "" {
			who = "-"
		}
		fmt.Fprintf(stdout, "  leaf %-8d %s  %-7s %-14s order %s  by %s\n", indexes[i], e.At, e.Kind, e.Type, e.Order, who)
	}
	if n > uint64(len(shown)) {
		fmt.Fprintf(stdout, "  … and %d more\n", n-uint64(len(shown)))
	}
	if fabricEnv == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msg, err := checkAnchored(ctx, fabricEnv, node, token, v, c)
	if err != nil {
		fmt.Fprintf(stderr, "NOT ANCHORED: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

const auditUsage = `usage: ordergrid audit export --node URL --out FILE [--token T] [--format jsonl|csv]
                              [--from RFC3339] [--to RFC3339] [--order ID] [--subject ID] [--channel C]

Streams GET /v1/audit/export into FILE (a compliance or admin token), with a
progress line on standard error. Check the file with ordergrid verify FILE --key KEY.`

// runAudit is `ordergrid audit export`.
func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	node := fs.String("node", "", "")
	out := fs.String("out", "", "")
	token := fs.String("token", os.Getenv("ORDERGRID_TOKEN"), "")
	format := fs.String("format", "jsonl", "")
	q := url.Values{}
	for _, name := range []string{"from", "to", "order", "subject", "channel"} {
		fs.Func(name, "", func(v string) error { q.Set(name, v); return nil })
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *node == "" || *out == "" {
		fmt.Fprintf(stderr, "ordergrid audit export: need --node and --out (%v)\n\n%s\n", err, auditUsage)
		return 2
	}
	if *token == "" {
		*token = os.Getenv(bootstrapTokenEnv)
	}
	q.Set("format", *format)
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(*node, "/")+"/v1/audit/export?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid audit export: %v\n", err)
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid audit export: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "ordergrid audit export: %s: %s\n", resp.Status, b)
		return 1
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid audit export: %v\n", err)
		return 2
	}
	n, err := copyExport(f, resp.Body, stderr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "\nordergrid audit export: %v (the file is incomplete)\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "\rexported %d events to %s%s\n", n, *out, strings.Repeat(" ", 30))
	return 0
}

// copyExport copies an export line by line, showing progress from its
// progress records (JSON Lines) or its line count (CSV); a failure record
// the node wrote mid-stream is an error.
func copyExport(w io.Writer, r io.Reader, progress io.Writer) (uint64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	var events uint64
	var treeSize uint64
	last := time.Now()
	for line := 0; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			switch {
			case line == 0 && bytes.HasPrefix(b, []byte(`{"format":`)):
				var h ledger.ExportHeader
				_ = json.Unmarshal(b, &h)
				treeSize = h.TreeSize
			case bytes.HasPrefix(b, []byte(`{"progress":`)):
				var p map[string]ledger.ExportProgress
				_ = json.Unmarshal(b, &p)
				if pr, ok := p["progress"]; ok && treeSize > 0 {
					fmt.Fprintf(progress, "\rscanned %d of %d leaves (%.0f%%), %d events exported   ", pr.Scanned, treeSize, 100*float64(pr.Scanned)/float64(treeSize), events)
				}
			case bytes.HasPrefix(b, []byte(`{"error":`)), bytes.HasPrefix(b, []byte("error,")):
				return events, fmt.Errorf("the node failed mid-export: %s", bytes.TrimSpace(b))
			case bytes.HasPrefix(b, []byte(`{"seal":`)), bytes.HasPrefix(b, []byte("seal,")):
				// The last record, not an event.
			case line > 0 && !(line == 1 && bytes.HasPrefix(b, []byte("index,"))):
				events++
			}
			if _, werr := bw.Write(b); werr != nil {
				return events, werr
			}
			if time.Since(last) > 500*time.Millisecond {
				last = time.Now()
				fmt.Fprintf(progress, "\r%d events exported   ", events)
			}
		}
		if errors.Is(err, io.EOF) {
			return events, bw.Flush()
		}
		if err != nil {
			return events, err
		}
	}
}
