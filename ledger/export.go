package ledger

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// ExportFormat names the export encoding in its header. Version 2 ends
// with the log key's seal ({"seal": ...}); VerifyExport still reads
// version 1, which has none, when it is complete by its checkpoint alone
// (unfiltered).
const ExportFormat = "ordergrid-audit-export/2"

// exportFormatV1 is the export encoding before seals.
const exportFormatV1 = "ordergrid-audit-export/1"

// Limits of exports.
const (
	// exportOrdersMax bounds the orders an order or subject filter names.
	exportOrdersMax = 100_000
	// exportProgressEvery is how many scanned leaves pass between progress
	// records of a JSON Lines export.
	exportProgressEvery = 65_536
	// exportLineBytesMax bounds one line a verifier reads.
	exportLineBytesMax = LeafBytesMax*2 + 64<<10
)

// ExportFilter selects the events of an export. Every set field must match.
type ExportFilter struct {
	// From and To bound the events' commit time, From inclusive, To
	// exclusive; zero: unbounded.
	From, To time.Time
	// Orders, when not nil, keeps only these orders' events (an order or a
	// subject filter); empty and not nil: nothing matches.
	Orders []string
	// Channel keeps only events of orders of this channel; ChannelOf says
	// an order's channel.
	Channel   string
	ChannelOf func(order string) (string, error)
	// Describe is written in the header and sealed, the filters as asked.
	// It must name at least one filter when a filter is set: a verifier
	// holds an export whose seal names no filter to every leaf.
	Describe map[string]string
}

// filtered says whether f selects less than every leaf.
func (f ExportFilter) filtered() bool {
	return f.Orders != nil || !f.From.IsZero() || !f.To.IsZero() || f.Channel != ""
}

// ExportHeader is the first record of an export: the one checkpoint every
// entry's inclusion proof is against.
type ExportHeader struct {
	Format     string            `json:"format"`
	Checkpoint string            `json:"checkpoint"`
	TreeSize   uint64            `json:"tree_size"`
	Filters    map[string]string `json:"filters,omitempty"`
}

// ExportSeal is the last record of a JSON Lines export: the log key's seal
// (see Seal) of the exported leaves.
type ExportSeal struct {
	Seal string `json:"seal"`
}

// ExportProgress is a JSON Lines record between entries: how far the scan
// of the log is. Not an event; verifiers skip it.
type ExportProgress struct {
	Scanned  uint64 `json:"scanned"`
	TreeSize uint64 `json:"tree_size"`
	Exported uint64 `json:"exported"`
}

// ExportWriter writes an export's records.
type ExportWriter interface {
	Header(ExportHeader) error
	Entry(BundleEntry, *Event) error
	Progress(ExportProgress) error
	// Seal writes the seal, after the last entry.
	Seal(signed string) error
	Close() error
}

// Export writes the events that match f, each with its leaf and inclusion
// proof against the newest checkpoint, in log order, to w, then the log
// key's seal of them. It streams: the leaves are read one by one and
// nothing but the filter's orders is held. It returns how many events it
// wrote.
func (l *Log) Export(ctx context.Context, f ExportFilter, w ExportWriter) (uint64, error) {
	if f.filtered() && len(f.Describe) == 0 {
		return 0, errors.New("export: a filter is set and Describe names none")
	}
	size, signed, err := l.LatestCheckpoint()
	if err != nil {
		return 0, err
	}
	c, err := l.openCheckpoint(signed)
	if err != nil {
		return 0, err
	}
	if _, err := l.signer(); err != nil {
		return 0, fmt.Errorf("export: %w", err) // before the first byte, not after the last
	}
	if err := w.Header(ExportHeader{Format: ExportFormat, Checkpoint: string(signed), TreeSize: size, Filters: f.Describe}); err != nil {
		return 0, err
	}
	next, err := l.exportIndexes(f, size)
	if err != nil {
		return 0, err
	}
	proofs := newProofCache(l.hashes(), size)
	d := newSealDigest()
	channels := map[string]bool{} // order -> of the channel, for the orders seen
	var exported, scanned uint64
	for {
		i, ok := next()
		if !ok {
			break
		}
		if scanned++; scanned%exportProgressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return exported, err
			}
			if err := w.Progress(ExportProgress{Scanned: i, TreeSize: size, Exported: exported}); err != nil {
				return exported, err
			}
		}
		leaf, err := l.Leaf(i)
		if err != nil {
			return exported, err
		}
		ev, err := DecodeLeaf(leaf)
		if err != nil {
			return exported, fmt.Errorf("leaf %d: %w", i, err)
		}
		if !f.From.IsZero() || !f.To.IsZero() {
			at := ev.Time()
			if (!f.From.IsZero() && at.Before(f.From)) || (!f.To.IsZero() && !at.Before(f.To)) {
				continue
			}
		}
		if f.Channel != "" {
			if ev.Order == "" {
				continue
			}
			match, seen := channels[ev.Order]
			if !seen {
				c, err := f.ChannelOf(ev.Order)
				if err != nil {
					return exported, fmt.Errorf("channel of order %s: %w", ev.Order, err)
				}
				match = c == f.Channel
				if len(channels) >= exportOrdersMax {
					clear(channels) // bounded: ask again rather than grow
				}
				channels[ev.Order] = match
			}
			if !match {
				continue
			}
		}
		proof, err := proofs.inclusion(i)
		if err != nil {
			return exported, fmt.Errorf("proof of leaf %d: %w", i, err)
		}
		if err := w.Entry(BundleEntry{Index: i, Leaf: base64.StdEncoding.EncodeToString(leaf), Proof: merkle.EncodeProof(proof),
			Event: json.RawMessage(leaf)}, ev); err != nil {
			return exported, err
		}
		d.add(i, merkle.LeafHash(leaf))
		exported++
	}
	seal, err := l.sign(d.seal(c, ExportScope(f.Describe)))
	if err != nil {
		return exported, fmt.Errorf("export: %w", err)
	}
	if err := w.Seal(seal); err != nil {
		return exported, err
	}
	return exported, w.Close()
}

// exportIndexes returns an iterator over the leaves to look at: every leaf
// below size, or the filter's orders' leaves in log order.
func (l *Log) exportIndexes(f ExportFilter, size uint64) (func() (uint64, bool), error) {
	if f.Orders == nil {
		var i uint64
		return func() (uint64, bool) {
			if i >= size {
				return 0, false
			}
			i++
			return i - 1, true
		}, nil
	}
	if len(f.Orders) > exportOrdersMax {
		return nil, fmt.Errorf("export: %d orders, at most %d", len(f.Orders), exportOrdersMax)
	}
	var idx []uint64
	for _, o := range f.Orders {
		ls, err := l.OrderLeaves(o, BundleEntriesMax+1)
		if err != nil {
			return nil, err
		}
		if len(ls) > BundleEntriesMax {
			// The seal must state every one: refuse rather than cut.
			return nil, fmt.Errorf("export: order %q has more than %d events", o, BundleEntriesMax)
		}
		for _, i := range ls {
			if i < size {
				idx = append(idx, i)
			}
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	return func() (uint64, bool) {
		if len(idx) == 0 {
			return 0, false
		}
		i := idx[0]
		idx = idx[1:]
		return i, true
	}, nil
}

// proofCache makes inclusion proofs against one tree size, remembering the
// hashes of the ragged ranges on the tree's right edge (the same for every
// proof) and reading perfect subtrees through the log's tile cache.
type proofCache struct {
	r    merkle.HashReader
	size uint64
	memo map[[2]uint64]merkle.Hash
}

func newProofCache(r merkle.HashReader, size uint64) *proofCache {
	return &proofCache{r: r, size: size, memo: map[[2]uint64]merkle.Hash{}}
}

func (p *proofCache) inclusion(index uint64) ([]merkle.Hash, error) {
	return merkle.InclusionProof(memoReader{p}, index, p.size)
}

// memoReader answers perfect subtrees from the log; the proof code asks it
// for ranges through RangeHash, which it memoizes when ragged.
type memoReader struct{ p *proofCache }

func (m memoReader) SubtreeHash(level uint8, index uint64) (merkle.Hash, error) {
	return m.p.r.SubtreeHash(level, index)
}

// RangeHash implements merkle.RangeHasher.
func (m memoReader) RangeHash(lo, hi uint64) (merkle.Hash, error) {
	n := hi - lo
	if n&(n-1) == 0 && lo%n == 0 {
		return merkle.RangeHash(m.p.r, lo, hi) // a perfect subtree: one read
	}
	k := [2]uint64{lo, hi}
	if h, ok := m.p.memo[k]; ok {
		return h, nil
	}
	h, err := merkle.RangeHash(m.p.r, lo, hi)
	if err == nil && len(m.p.memo) < 4096 {
		m.p.memo[k] = h
	}
	return h, err
}

// JSONLinesExport writes an export as JSON Lines: the header, then one
// BundleEntry per line (with "event" decoded), with progress records
// ({"progress": {...}}) between them.
type JSONLinesExport struct {
	w *bufio.Writer
}

// NewJSONLinesExport returns a JSON Lines writer on w.
func NewJSONLinesExport(w io.Writer) *JSONLinesExport {
	return &JSONLinesExport{w: bufio.NewWriterSize(w, 64<<10)}
}

func (j *JSONLinesExport) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = j.w.Write(b)
	return err
}

// Header implements ExportWriter.
func (j *JSONLinesExport) Header(h ExportHeader) error { return j.line(h) }

// Entry implements ExportWriter.
func (j *JSONLinesExport) Entry(e BundleEntry, _ *Event) error { return j.line(e) }

// Progress implements ExportWriter; it also flushes, so a slow scan shows.
func (j *JSONLinesExport) Progress(p ExportProgress) error {
	if err := j.line(map[string]ExportProgress{"progress": p}); err != nil {
		return err
	}
	return j.w.Flush()
}

// Seal implements ExportWriter.
func (j *JSONLinesExport) Seal(signed string) error { return j.line(ExportSeal{Seal: signed}) }

// Close implements ExportWriter.
func (j *JSONLinesExport) Close() error { return j.w.Flush() }

// CSVHeader is the column row of a CSV export.
var CSVHeader = []string{"index", "at", "kind", "type", "order", "seq", "status", "sku", "warehouse", "qty", "principal", "partition", "raft_index", "n", "leaf", "proof"}

// CSVExport writes an export as CSV: a first record "checkpoint", the
// signed checkpoint in base64, "tree_size", the size, "scope", the seal's
// scope (the filters); then the column row (CSVHeader); then one row per
// event (proof: base64 hashes separated by spaces); then a last record
// "seal", the log key's seal in base64.
type CSVExport struct {
	w  *csv.Writer
	bw *bufio.Writer
}

// NewCSVExport returns a CSV writer on w.
func NewCSVExport(w io.Writer) *CSVExport {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &CSVExport{w: csv.NewWriter(bw), bw: bw}
}

// Header implements ExportWriter.
func (c *CSVExport) Header(h ExportHeader) error {
	rec := []string{"checkpoint", base64.StdEncoding.EncodeToString([]byte(h.Checkpoint)), "tree_size", strconv.FormatUint(h.TreeSize, 10),
		"scope", ExportScope(h.Filters)}
	rec = append(rec, make([]string, len(CSVHeader)-len(rec))...)
	if err := c.w.Write(rec); err != nil {
		return err
	}
	return c.w.Write(CSVHeader)
}

// Entry implements ExportWriter.
func (c *CSVExport) Entry(e BundleEntry, ev *Event) error {
	return c.w.Write(append(csvEventColumns(e.Index, ev), e.Leaf, strings.Join(e.Proof, " ")))
}

// csvEventColumns are a row's columns that the leaf determines: the
// writer's and what the verifier checks a row against.
func csvEventColumns(index uint64, ev *Event) []string {
	return []string{strconv.FormatUint(index, 10), ev.At, ev.Kind, ev.Type, ev.Order, u64(ev.Seq), ev.Status, ev.SKU,
		ev.Warehouse, i64(ev.Qty), ev.Principal, strconv.FormatUint(uint64(ev.Partition), 10), strconv.FormatUint(ev.RaftIndex, 10),
		strconv.FormatUint(uint64(ev.N), 10)}
}

func u64(v uint64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

func i64(v int64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

// Progress implements ExportWriter: CSV has no progress records; it flushes.
func (c *CSVExport) Progress(ExportProgress) error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// Seal implements ExportWriter.
func (c *CSVExport) Seal(signed string) error {
	rec := []string{"seal", base64.StdEncoding.EncodeToString([]byte(signed))}
	return c.w.Write(append(rec, make([]string, len(CSVHeader)-len(rec))...))
}

// Close implements ExportWriter.
func (c *CSVExport) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}
