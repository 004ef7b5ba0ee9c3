package actors

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// ArchiveFormat names the archive encoding in its header line.
const ArchiveFormat = "ordergrid-archive/1"

// Limits of retention.
const (
	// archiveBatchMax bounds the orders of one archive file.
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

// archivePartition moves the partition's orders closed before now minus
// the retention into a new compressed archive file, then out of hot state.
// The file is durable (synced, renamed, directory synced) before the
// command that removes the orders is proposed; if that fails, the orders
// stay and go into the next file (an order in two archives restores once).
func (n *Node) archivePartition(p *cluster.Partition, log *slog.Logger) {
	if n.opts.Retention <= 0 || n.opts.Ledger == nil {
		return
	}
	before := n.now().Add(-n.opts.Retention).UnixNano()
	r := n.reader(p)
	ids, err := statemachine.ClosedBefore(r, p.Prefix, before, archiveBatchMax)
	if err != nil || len(ids) == 0 {
		if err != nil {
			log.Error("retention: closed orders", slog.Any("error", err))
		}
		return
	}
	var entries []ArchiveEntry
	for _, id := range ids {
		e, ok, err := n.archiveEntry(r, p, id)
		if err != nil {
			log.Error("retention: reading an order", slog.String("order", id), slog.Any("error", err))
			return
		}
		if ok {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return
	}
	name := fmt.Sprintf("p%03d-%d.jsonl.gz", p.ID, n.now().UnixNano())
	if err := writeArchive(filepath.Join(n.opts.ArchiveDir, name), ArchiveHeader{Format: ArchiveFormat, Partition: p.ID,
		CreatedAt: ledger.FormatTime(n.now().UnixNano())}, entries); err != nil {
		log.Error("retention: writing the archive", slog.Any("error", err))
		return
	}
	moving := make([]string, len(entries))
	for i, e := range entries {
		moving[i] = e.Order
	}
	ctx, cancel := n.callCtx()
	defer cancel()
	res, err := n.propose(ctx, p, "system:retention", &pb.Command{Kind: &pb.Command_ArchiveOrders{ArchiveOrders: &pb.ArchiveOrdersCommand{
		OrderIds: moving, Archive: name, BeforeUnixNano: before}}})
	if err != nil {
		log.Error("retention: archiving", slog.Any("error", err))
		return
	}
	n.metrics.archived.Add(float64(len(res.OrderIds)))
	log.Info("retention: orders archived", slog.String("archive", name), slog.Int("orders", len(res.OrderIds)))
}

// archiveEntry reads an order with its events and proof bundle; ok is false
// when the log has not checkpointed all its events yet (it waits a round).
func (n *Node) archiveEntry(r statemachine.Reader, p *cluster.Partition, id string) (ArchiveEntry, bool, error) {
	o, found, err := statemachine.ReadOrder(r, p.Prefix, id)
	if err != nil || !found {
		return ArchiveEntry{}, false, err
	}
	evs, err := statemachine.ReadEvents(r, p.Prefix, id)
	if err != nil {
		return ArchiveEntry{}, false, err
	}
	b, err := n.opts.Ledger.Bundle(id)
	if errors.Is(err, ledger.ErrNotFound) {
		return ArchiveEntry{}, false, nil
	}
	if err != nil {
		return ArchiveEntry{}, false, err
	}
	orderEvents := 0
	for _, e := range b.Entries {
		var ev struct{ Kind string }
		if json.Unmarshal(e.Event, &ev) == nil && ev.Kind == ledger.KindOrder {
			orderEvents++
		}
	}
	if orderEvents != len(evs) {
		return ArchiveEntry{}, false, nil
	}
	raw, err := proto.Marshal(&pb.ArchivedOrder{Order: o, Events: evs})
	if err != nil {
		return ArchiveEntry{}, false, err
	}
	return ArchiveEntry{Order: id, Status: o.Status, Record: base64.StdEncoding.EncodeToString(raw), Bundle: b}, true, nil
}

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
	Orders []*pb.ArchivedOrder
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
		a := &pb.ArchivedOrder{}
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

// RestoreArchive puts a verified archive's orders back into hot state, each
// through its partition; orders not archived (restored already) are skipped.
func (n *Node) RestoreArchive(a *VerifiedArchive, name, principal string) (restored int, err error) {
	byPartition := map[*partitionRef][]*pb.ArchivedOrder{}
	for _, o := range a.Orders {
		p := n.orderPartition(o.Order.Id)
		byPartition[p] = append(byPartition[p], o)
	}
	for p, orders := range byPartition {
		for len(orders) > 0 {
			k := min(len(orders), archiveBatchMax)
			ctx, cancel := n.callCtx()
			res, err := n.propose(ctx, p, principal, &pb.Command{Kind: &pb.Command_RestoreOrders{RestoreOrders: &pb.RestoreOrdersCommand{
				Orders: orders[:k], Archive: name}}})
			cancel()
			if err != nil {
				return restored, err
			}
			restored += len(res.OrderIds)
			orders = orders[k:]
		}
	}
	return restored, nil
}

// ReadArchived returns the marker an archived order left.
func (n *Node) ReadArchived(id string) (*pb.ArchivedOrderRecord, bool, error) {
	p := n.orderPartition(id)
	return statemachine.ReadArchived(n.reader(p), p.Prefix, id)
}
