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

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// ExportFormat names the export encoding in its header.
const ExportFormat = "ordergrid-audit-export/1"

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
	// Describe is written in the header, the filters as asked.
	Describe map[string]string
}

// ExportHeader is the first record of an export: the one checkpoint every
// entry's inclusion proof is against.
type ExportHeader struct {
	Format     string            `json:"format"`
	Checkpoint string            `json:"checkpoint"`
	TreeSize   uint64            `json:"tree_size"`
	Filters    map[string]string `json:"filters,omitempty"`
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
	Close() error
}

// Export writes the events that match f, each with its leaf and inclusion
// proof against the newest checkpoint, in log order, to w. It streams: the
// leaves are read one by one and nothing but the filter's orders is held.
// It returns how many events it wrote.
func (l *Log) Export(ctx context.Context, f ExportFilter, w ExportWriter) (uint64, error) {
	size, signed, err := l.LatestCheckpoint()
	if err != nil {
		return 0, err
	}
	if err := w.Header(ExportHeader{Format: ExportFormat, Checkpoint: string(signed), TreeSize: size, Filters: f.Describe}); err != nil {
		return 0, err
	}
	next, err := l.exportIndexes(f, size)
	if err != nil {
		return 0, err
	}
	proofs := newProofCache(l.hashes(), size)
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
		exported++
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
		ls, err := l.OrderLeaves(o, BundleEntriesMax)
		if err != nil {
			return nil, err
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

// Close implements ExportWriter.
func (j *JSONLinesExport) Close() error { return j.w.Flush() }

// CSVHeader is the column row of a CSV export.
var CSVHeader = []string{"index", "at", "kind", "type", "order", "seq", "status", "sku", "warehouse", "qty", "principal", "partition", "raft_index", "n", "leaf", "proof"}

// CSVExport writes an export as CSV: a first record "checkpoint", the
// signed checkpoint in base64, "tree_size", the size; then the column row
// (CSVHeader); then one row per event (proof: base64 hashes separated by
// spaces).
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
	rec := []string{"checkpoint", base64.StdEncoding.EncodeToString([]byte(h.Checkpoint)), "tree_size", strconv.FormatUint(h.TreeSize, 10)}
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

// Close implements ExportWriter.
func (c *CSVExport) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// ErrExport is returned for an export that does not verify.
var ErrExport = errors.New("export does not verify")

// VerifiedExport is what an export proves.
type VerifiedExport struct {
	Checkpoint checkpoint.Checkpoint
	Filters    map[string]string
	Events     []*Event
	Indexes    []uint64
}

// VerifyExport checks an export (JSON Lines or CSV, told apart by its first
// byte) against the log's verifier: the checkpoint's signature, and every
// entry's inclusion proof and leaf (in CSV, that the columns say what the
// leaf says). keep bounds how many verified events are returned (the count
// is always complete in n).
func VerifyExport(r io.Reader, v *checkpoint.Verifier, keep int) (out *VerifiedExport, n uint64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := br.Peek(1)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: empty", ErrExport)
	}
	out = &VerifiedExport{}
	add := func(i uint64, ev *Event) {
		n++
		if len(out.Events) < keep {
			out.Events = append(out.Events, ev)
			out.Indexes = append(out.Indexes, i)
		}
	}
	if first[0] == '{' {
		err = verifyJSONLines(br, v, out, add)
	} else {
		err = verifyCSV(br, v, out, add)
	}
	return out, n, err
}

func verifyJSONLines(br *bufio.Reader, v *checkpoint.Verifier, out *VerifiedExport, add func(uint64, *Event)) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), exportLineBytesMax)
	line := 0
	var last uint64
	for sc.Scan() {
		line++
		if line == 1 {
			var h ExportHeader
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h); err != nil || h.Format != ExportFormat {
				return fmt.Errorf("%w: line 1 is not an %s header", ErrExport, ExportFormat)
			}
			c, err := v.Open([]byte(h.Checkpoint))
			if err != nil {
				return fmt.Errorf("%w: checkpoint: %w", ErrExport, err)
			}
			if c.Size != h.TreeSize {
				return fmt.Errorf("%w: header says %d leaves, the checkpoint %d", ErrExport, h.TreeSize, c.Size)
			}
			out.Checkpoint, out.Filters = c, h.Filters
			continue
		}
		raw := sc.Bytes()
		if strings.HasPrefix(sc.Text(), `{"progress":`) {
			var p map[string]ExportProgress
			if err := json.Unmarshal(raw, &p); err != nil || len(p) != 1 {
				return fmt.Errorf("%w: line %d: bad progress record", ErrExport, line)
			}
			continue
		}
		var e BundleEntry
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return fmt.Errorf("%w: line %d: %v", ErrExport, line, err)
		}
		if line > 2 && e.Index <= last {
			return fmt.Errorf("%w: line %d: indexes must increase", ErrExport, line)
		}
		last = e.Index
		ev, err := verifyEntry(e, out.Checkpoint)
		if err != nil {
			return fmt.Errorf("%w: line %d (leaf %d): %w", ErrExport, line, e.Index, err)
		}
		add(e.Index, ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrExport, err)
	}
	if line == 0 {
		return fmt.Errorf("%w: empty", ErrExport)
	}
	return nil
}

func verifyCSV(br *bufio.Reader, v *checkpoint.Verifier, out *VerifiedExport, add func(uint64, *Event)) error {
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = len(CSVHeader)
	cr.ReuseRecord = true
	rec, err := cr.Read()
	if err != nil || rec[0] != "checkpoint" || rec[2] != "tree_size" {
		return fmt.Errorf("%w: the first record is not the checkpoint", ErrExport)
	}
	signed, err := base64.StdEncoding.Strict().DecodeString(rec[1])
	if err != nil {
		return fmt.Errorf("%w: checkpoint is not base64", ErrExport)
	}
	c, err := v.Open(signed)
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %w", ErrExport, err)
	}
	if strconv.FormatUint(c.Size, 10) != rec[3] {
		return fmt.Errorf("%w: tree_size %s, the checkpoint %d", ErrExport, rec[3], c.Size)
	}
	out.Checkpoint = c
	if rec, err = cr.Read(); err != nil || strings.Join(rec, ",") != strings.Join(CSVHeader, ",") {
		return fmt.Errorf("%w: the second record is not the column row", ErrExport)
	}
	row := 2
	var last uint64
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		row++
		if err != nil {
			return fmt.Errorf("%w: row %d: %v", ErrExport, row, err)
		}
		idx, err := strconv.ParseUint(rec[0], 10, 64)
		if err != nil || (row > 3 && idx <= last) {
			return fmt.Errorf("%w: row %d: bad or decreasing index", ErrExport, row)
		}
		last = idx
		var proof []string
		if rec[15] != "" {
			proof = strings.Split(rec[15], " ")
		}
		leaf, err := base64.StdEncoding.Strict().DecodeString(rec[14])
		if err != nil {
			return fmt.Errorf("%w: row %d: leaf is not base64", ErrExport, row)
		}
		ev, err := verifyEntry(BundleEntry{Index: idx, Leaf: rec[14], Proof: proof, Event: json.RawMessage(leaf)}, c)
		if err != nil {
			return fmt.Errorf("%w: row %d (leaf %d): %w", ErrExport, row, idx, err)
		}
		for i, w := range csvEventColumns(idx, ev) {
			if rec[i] != w {
				return fmt.Errorf("%w: row %d: column %s says %q, the leaf %q", ErrExport, row, CSVHeader[i], rec[i], w)
			}
		}
		add(idx, ev)
	}
}
