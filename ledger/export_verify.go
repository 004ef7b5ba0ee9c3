package ledger

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// ErrExport is returned for an export that does not verify.
var ErrExport = errors.New("export does not verify")

// VerifiedExport is what an export proves.
type VerifiedExport struct {
	Checkpoint checkpoint.Checkpoint
	Filters    map[string]string
	Events     []*Event
	Indexes    []uint64
	// Complete says how the export is known to be complete: "checkpoint"
	// (unfiltered: it holds every leaf of the checkpoint's tree, once, in
	// order) or "seal" (filtered: it holds exactly the leaves the log key's
	// seal states).
	Complete string
}

// VerifyExport checks an export (JSON Lines or CSV, told apart by its first
// byte) against the log's verifier: the checkpoint's signature, every
// entry's inclusion proof and leaf (in CSV, that the columns say what the
// leaf says), and that nothing is missing. An unfiltered export must hold
// every leaf index from 0 to the checkpoint's size, once and in order: the
// first index missing is named. A filtered export must end with the log
// key's seal of its filters, and hold exactly the leaves it states; its
// entries must match its time and order filters. keep bounds how many
// verified events are returned (the count is always complete in n).
func VerifyExport(r io.Reader, v *checkpoint.Verifier, keep int) (out *VerifiedExport, n uint64, err error) {
	out = &VerifiedExport{}
	got, n, err := VerifyExportEach(r, v, func(_ string, i uint64, ev *Event) {
		if len(out.Events) < keep {
			out.Events = append(out.Events, ev)
			out.Indexes = append(out.Indexes, i)
		}
	})
	if got == nil {
		return nil, n, err
	}
	out.Checkpoint, out.Filters, out.Complete = got.Checkpoint, got.Filters, got.Complete
	return out, n, err
}

// VerifyExportEach verifies an export as VerifyExport does, and hands each
// entry to each as it is read: where is its line ("line 7") or row ("row
// 9"), index its leaf. An entry reaches each once its leaf and inclusion
// proof check against the export's signed checkpoint, but before the
// export is known complete: trust nothing each was given until
// VerifyExportEach returns nil. The VerifiedExport it returns holds no
// events.
func VerifyExportEach(r io.Reader, v *checkpoint.Verifier, each func(where string, index uint64, ev *Event)) (out *VerifiedExport, n uint64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := br.Peek(1)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: empty", ErrExport)
	}
	out = &VerifiedExport{}
	x := &exportCheck{v: v, d: newSealDigest()}
	x.add = func(where string, i uint64, ev *Event) {
		n++
		each(where, i, ev)
	}
	if first[0] == '{' {
		err = verifyJSONLines(br, x)
	} else {
		err = verifyCSV(br, x)
	}
	if err == nil {
		out.Complete, err = x.finish()
	}
	out.Checkpoint, out.Filters = x.c, x.filters
	return out, n, err
}

// exportCheck is what a verifier keeps across an export's records: the
// checkpoint and filters of its header, the run of indexes, the digest the
// seal must match. Constant memory, whatever the export's size.
type exportCheck struct {
	v       *checkpoint.Verifier
	c       checkpoint.Checkpoint
	filters map[string]string
	from    time.Time
	to      time.Time
	add     func(string, uint64, *Event)
	started bool
	last    uint64
	next    uint64 // the index an unfiltered export holds next
	gap     error  // the first index skipped, for an unfiltered export
	d       *sealDigest
	seal    *Seal
}

// header takes the header's checkpoint and filters.
func (x *exportCheck) header(signed []byte, treeSize uint64, filters map[string]string) error {
	c, err := x.v.Open(signed)
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %w", ErrExport, err)
	}
	if c.Size != treeSize {
		return fmt.Errorf("%w: header says %d leaves, the checkpoint %d", ErrExport, treeSize, c.Size)
	}
	x.c, x.filters = c, filters
	for k, t := range map[string]*time.Time{"from": &x.from, "to": &x.to} {
		if s, ok := filters[k]; ok {
			if *t, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return fmt.Errorf("%w: filter %s=%q is not a time", ErrExport, k, s)
			}
		}
	}
	return nil
}

// entry takes the next entry, verified against the checkpoint; where names
// its line or row.
func (x *exportCheck) entry(where string, i uint64, lh merkle.Hash, ev *Event) error {
	if x.seal != nil {
		return fmt.Errorf("%w: %s: an entry after the seal", ErrExport, where)
	}
	if x.started && i <= x.last {
		return fmt.Errorf("%w: %s: leaf %d after leaf %d: a line repeated or out of order", ErrExport, where, i, x.last)
	}
	if x.gap == nil && i != x.next {
		x.gap = fmt.Errorf("%w: leaf %d is missing (%s holds leaf %d)", ErrExport, x.next, where, i)
	}
	if (!x.from.IsZero() && ev.Time().Before(x.from)) || (!x.to.IsZero() && !ev.Time().Before(x.to)) {
		return fmt.Errorf("%w: %s: leaf %d at %s is outside the export's time filter", ErrExport, where, i, ev.At)
	}
	if o, ok := x.filters["order"]; ok && ev.Order != o {
		return fmt.Errorf("%w: %s: leaf %d is of order %q, the export of %q", ErrExport, where, i, ev.Order, o)
	}
	x.started, x.last, x.next = true, i, i+1
	x.d.add(i, lh)
	x.add(where, i, ev)
	return nil
}

// sealed takes the seal record.
func (x *exportCheck) sealed(where, signed string) error {
	if x.seal != nil {
		return fmt.Errorf("%w: %s: a second seal", ErrExport, where)
	}
	s, err := openSeal(signed, x.v, x.c)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrExport, where, err)
	}
	f, err := exportFilters(s.Scope)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrExport, where, err)
	}
	if !maps.Equal(f, x.filters) {
		return fmt.Errorf("%w: %s: the seal is of the filters %v, the header states %v", ErrExport, where, f, x.filters)
	}
	x.seal = &s
	return nil
}

// finish checks completeness once every record is read, and says how the
// export is known to be complete.
func (x *exportCheck) finish() (string, error) {
	if len(x.filters) > 0 {
		if x.seal == nil {
			return "", fmt.Errorf("%w: a filtered export without its seal (its last line): cut, or not sealed, so nothing shows what is missing", ErrExport)
		}
		if err := x.seal.check(x.d, "export"); err != nil {
			return "", fmt.Errorf("%w: %w", ErrExport, err)
		}
		return "seal", nil
	}
	// Unfiltered: the checkpoint alone proves completeness, sealed or not.
	if x.gap != nil {
		return "", x.gap
	}
	if x.next != x.c.Size {
		if !x.started {
			return "", fmt.Errorf("%w: leaf 0 is missing: the export holds no entries, the checkpoint %d leaves", ErrExport, x.c.Size)
		}
		return "", fmt.Errorf("%w: leaf %d is missing: the export ends at leaf %d, the checkpoint holds %d leaves (cut)", ErrExport, x.next, x.last, x.c.Size)
	}
	if x.seal != nil {
		if err := x.seal.check(x.d, "export"); err != nil {
			return "", fmt.Errorf("%w: %w", ErrExport, err)
		}
	}
	return "checkpoint", nil
}

func verifyJSONLines(br *bufio.Reader, x *exportCheck) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), exportLineBytesMax)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			var h ExportHeader
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h); err != nil || (h.Format != ExportFormat && h.Format != exportFormatV1) {
				return fmt.Errorf("%w: line 1 is not an %s header", ErrExport, ExportFormat)
			}
			if err := x.header([]byte(h.Checkpoint), h.TreeSize, h.Filters); err != nil {
				return err
			}
			continue
		}
		raw := sc.Bytes()
		where := fmt.Sprintf("line %d", line)
		switch {
		case strings.HasPrefix(sc.Text(), `{"progress":`):
			var p map[string]ExportProgress
			if err := json.Unmarshal(raw, &p); err != nil || len(p) != 1 || x.seal != nil {
				return fmt.Errorf("%w: %s: bad progress record", ErrExport, where)
			}
			continue
		case strings.HasPrefix(sc.Text(), `{"seal":`):
			var s ExportSeal
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&s); err != nil {
				return fmt.Errorf("%w: %s: bad seal record: %v", ErrExport, where, err)
			}
			if err := x.sealed(where, s.Seal); err != nil {
				return err
			}
			continue
		}
		var e BundleEntry
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrExport, where, err)
		}
		ev, lh, err := verifyEntry(e, x.c)
		if err != nil {
			return fmt.Errorf("%w: %s (leaf %d): %w", ErrExport, where, e.Index, err)
		}
		if err := x.entry(where, e.Index, lh, ev); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrExport, err)
	}
	if line == 0 {
		return fmt.Errorf("%w: empty", ErrExport)
	}
	return nil
}

func verifyCSV(br *bufio.Reader, x *exportCheck) error {
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
	size, err := strconv.ParseUint(rec[3], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != rec[3] {
		return fmt.Errorf("%w: tree_size %q", ErrExport, rec[3])
	}
	var filters map[string]string // none stated (a CSV from before seals): unfiltered
	if rec[4] == "scope" {
		if filters, err = exportFilters(rec[5]); err != nil {
			return fmt.Errorf("%w: record 1: %w", ErrExport, err)
		}
	} else if rec[4] != "" {
		return fmt.Errorf("%w: record 1: column 5 is %q, not scope", ErrExport, rec[4])
	}
	if err := x.header(signed, size, filters); err != nil {
		return err
	}
	if rec, err = cr.Read(); err != nil || strings.Join(rec, ",") != strings.Join(CSVHeader, ",") {
		return fmt.Errorf("%w: the second record is not the column row", ErrExport)
	}
	for row := 3; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		where := fmt.Sprintf("row %d", row)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrExport, where, err)
		}
		if rec[0] == "seal" {
			signed, err := base64.StdEncoding.Strict().DecodeString(rec[1])
			if err != nil || strings.Join(rec[2:], "") != "" {
				return fmt.Errorf("%w: %s: bad seal record", ErrExport, where)
			}
			if err := x.sealed(where, string(signed)); err != nil {
				return err
			}
			continue
		}
		if err := verifyCSVRow(x, where, rec); err != nil {
			return err
		}
	}
}

// verifyCSVRow checks one event row: its leaf and proof, and that its
// columns say what its leaf says.
func verifyCSVRow(x *exportCheck, where string, rec []string) error {
	idx, err := strconv.ParseUint(rec[0], 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s: bad index %q", ErrExport, where, rec[0])
	}
	var proof []string
	if rec[15] != "" {
		proof = strings.Split(rec[15], " ")
	}
	leaf, err := base64.StdEncoding.Strict().DecodeString(rec[14])
	if err != nil {
		return fmt.Errorf("%w: %s: leaf is not base64", ErrExport, where)
	}
	ev, lh, err := verifyEntry(BundleEntry{Index: idx, Leaf: rec[14], Proof: proof, Event: json.RawMessage(leaf)}, x.c)
	if err != nil {
		return fmt.Errorf("%w: %s (leaf %d): %w", ErrExport, where, idx, err)
	}
	for i, w := range csvEventColumns(idx, ev) {
		if rec[i] != w {
			return fmt.Errorf("%w: %s: column %s says %q, the leaf %q", ErrExport, where, CSVHeader[i], rec[i], w)
		}
	}
	return x.entry(where, idx, lh, ev)
}
