package retention

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

// ArchiveFormat names the archive encoding in its header line.
const ArchiveFormat = "ordergrid-archive/1"

// Limits of archive files.
const (
	// archiveBatchMax bounds the orders of one archive file, and of one
	// restore_orders command.
	archiveBatchMax = 500
	// archiveLineBytesMax bounds one order of an archive a reader takes.
	archiveLineBytesMax = 16 << 20
	// archiveOrdersMax bounds the orders of an archive a restore takes.
	archiveOrdersMax = 100_000
)

// ArchiveHeader is the first line of an archive file.
type ArchiveHeader struct {
	Format    string `json:"format"`
	Partition uint32 `json:"partition"`
	CreatedAt string `json:"created_at"`
}

// ArchiveEntry is one order of an archive: its record and events (an
// ArchivedOrder, protobuf, base64) and its proof bundle, so the archive
// proves itself against the log.
type ArchiveEntry struct {
	Order  string         `json:"order"`
	Status string         `json:"status"`
	Record string         `json:"record"`
	Bundle *ledger.Bundle `json:"bundle"`
}

// writeArchive writes h and entries to a new archive file at path, durably:
// a temporary file synced, renamed into place, its directory synced.
func writeArchive(path string, h ArchiveHeader, entries []ArchiveEntry) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	bw := bufio.NewWriter(zw)
	enc := json.NewEncoder(bw)
	err = enc.Encode(h)
	for i := 0; err == nil && i < len(entries); i++ {
		err = enc.Encode(entries[i])
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrArchive is returned for an archive that does not verify.
var ErrArchive = errors.New("archive does not verify")

// VerifiedArchive is what ReadArchive proved.
type VerifiedArchive struct {
	Header ArchiveHeader
	Orders []*gridpb.ArchivedOrder
	// Statuses counts the orders by status.
	Statuses map[string]int
}

// ReadArchive reads and verifies an archive: every order's bundle verifies
// against the log's verifier and holds exactly the order's events, in order,
// with the record's status the last event's.
func ReadArchive(r io.Reader, v *checkpoint.Verifier) (*VerifiedArchive, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not gzip: %v", ErrArchive, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), archiveLineBytesMax)
	out := &VerifiedArchive{Statuses: map[string]int{}}
	for line := 1; sc.Scan(); line++ {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if line == 1 {
			if err := dec.Decode(&out.Header); err != nil || out.Header.Format != ArchiveFormat {
				return nil, fmt.Errorf("%w: line 1 is not an %s header", ErrArchive, ArchiveFormat)
			}
			continue
		}
		if len(out.Orders) >= archiveOrdersMax {
			return nil, fmt.Errorf("%w: more than %d orders", ErrArchive, archiveOrdersMax)
		}
		var e ArchiveEntry
		if err := dec.Decode(&e); err != nil || e.Bundle == nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrArchive, line, err)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(e.Record)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: record is not base64", ErrArchive, line)
		}
		a := &gridpb.ArchivedOrder{}
		if err := proto.Unmarshal(raw, a); err != nil || a.Order.GetId() != e.Order || a.Order.Status != e.Status {
			return nil, fmt.Errorf("%w: line %d: record is not order %s", ErrArchive, line, e.Order)
		}
		bundle, err := json.Marshal(e.Bundle)
		if err != nil {
			return nil, err
		}
		got, err := ledger.VerifyArchivedBundle(bundle, v)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: order %s: %w", ErrArchive, line, e.Order, err)
		}
		var logged []*ledger.Event
		for _, ve := range got.Entries {
			if ve.Event.Kind == ledger.KindOrder {
				logged = append(logged, ve.Event)
			}
		}
		if got.Order != e.Order || len(logged) != len(a.Events) {
			return nil, fmt.Errorf("%w: line %d: order %s has %d events, its proofs %d", ErrArchive, line, e.Order, len(a.Events), len(logged))
		}
		for i, ev := range a.Events {
			if ev.Seq != logged[i].Seq || ev.Type != logged[i].Type || ev.Status != logged[i].Status {
				return nil, fmt.Errorf("%w: line %d: order %s event %d differs from the log", ErrArchive, line, e.Order, ev.Seq)
			}
		}
		if len(a.Events) == 0 || a.Events[len(a.Events)-1].Status != a.Order.Status {
			return nil, fmt.Errorf("%w: line %d: order %s status differs from its last event", ErrArchive, line, e.Order)
		}
		out.Orders = append(out.Orders, a)
		out.Statuses[a.Order.Status]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArchive, err)
	}
	if out.Header.Format == "" {
		return nil, fmt.Errorf("%w: empty", ErrArchive)
	}
	return out, nil
}
