package retention

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Principal is the principal of the archive_orders commands the job
// proposes, and so of their "archived" events in the log.
const Principal = "system:retention"

// Partition is one partition as the job reaches it: reads of its committed
// state and proposals go to its leader. actors.Partition is one.
type Partition interface {
	// ID is the partition's number.
	ID() uint32
	// Prefix is the partition's key prefix.
	Prefix() []byte
	// IsLeader reports whether this node leads the partition now: the job
	// archives only the partitions it leads.
	IsLeader() bool
	// Reader reads the partition's committed state on its leader.
	Reader() statemachine.Reader
	// Propose stamps cmd with the time and principal, replicates it and
	// returns what the state machine answered.
	Propose(ctx context.Context, principal string, cmd *gridpb.Command) (*statemachine.Result, error)
}

// Grid is what retention needs of the node: its partitions and which of
// them holds an order. cmd/ordergrid adapts package actors' Node to it.
type Grid interface {
	// Partitions returns the grid's partitions.
	Partitions() []Partition
	// OrderPartition returns the partition that holds an order.
	OrderPartition(id string) Partition
}

// Proofs gives an order's proof bundle, or an error wrapping
// ledger.ErrNotFound while the log holds none of it. *ledger.Log is one.
type Proofs interface {
	Bundle(order string) (*ledger.Bundle, error)
}

// Options configure a Job.
type Options struct {
	// Retention is how long an order stays in hot state after it closed
	// (delivered, cancelled, expired, ...). 0: the job does nothing.
	Retention time.Duration
	// Dir is where archive files go. Required when Retention is set.
	Dir string
	// Interval is how often each led partition is looked at. Default 1s.
	Interval   time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultInterval is Options.Interval's default.
const DefaultInterval = time.Second

// Job archives closed orders (Run) and restores archives (Restore).
type Job struct {
	grid     Grid
	proofs   Proofs
	opts     Options
	now      func() time.Time
	archived prometheus.Counter
}

// ErrNoDir is returned by New for a retention without a directory.
var ErrNoDir = errors.New("retention: a retention needs a directory for its archives")

// New returns the job over grid's partitions, with proofs from proofs.
func New(grid Grid, proofs Proofs, opts Options) (*Job, error) {
	if opts.Retention > 0 && opts.Dir == "" {
		return nil, ErrNoDir
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	j := &Job{grid: grid, proofs: proofs, opts: opts, now: time.Now,
		archived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordergrid_orders_archived_total", Help: "Closed orders moved to archive files by retention."})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(j.archived)
	}
	return j, nil
}

// Start runs the job in the background until ctx is done or stop is
// called; stop returns once the job has.
func (j *Job) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		j.Run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// Run archives, every interval, each partition this node leads, until ctx
// is done. It returns at once when the retention is 0 or there are no
// proofs to archive with.
func (j *Job) Run(ctx context.Context) {
	if j.opts.Retention <= 0 || j.proofs == nil {
		return
	}
	t := time.NewTicker(j.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, p := range j.grid.Partitions() {
				if p.IsLeader() {
					j.archivePartition(ctx, p, j.opts.Logger.With(slog.Uint64("partition", uint64(p.ID()))))
				}
			}
		}
	}
}

// archivePartition moves the partition's orders closed before now minus
// the retention into a new compressed archive file, then out of hot state.
// The file is durable (synced, renamed, directory synced) before the
// command that removes the orders is proposed; if that fails, the orders
// stay and go into the next file (an order in two archives restores once).
func (j *Job) archivePartition(ctx context.Context, p Partition, log *slog.Logger) {
	before := j.now().Add(-j.opts.Retention).UnixNano()
	r := p.Reader()
	ids, err := statemachine.ClosedBefore(r, p.Prefix(), before, archiveBatchMax)
	if err != nil || len(ids) == 0 {
		if err != nil {
			log.Error("retention: closed orders", slog.Any("error", err))
		}
		return
	}
	var entries []ArchiveEntry
	for _, id := range ids {
		e, ok, err := j.archiveEntry(r, p, id)
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
	name := fmt.Sprintf("p%03d-%d.jsonl.gz", p.ID(), j.now().UnixNano())
	if err := writeArchive(filepath.Join(j.opts.Dir, name), ArchiveHeader{Format: ArchiveFormat, Partition: p.ID(),
		CreatedAt: ledger.FormatTime(j.now().UnixNano())}, entries); err != nil {
		log.Error("retention: writing the archive", slog.Any("error", err))
		return
	}
	moving := make([]string, len(entries))
	for i, e := range entries {
		moving[i] = e.Order
	}
	res, err := p.Propose(ctx, Principal, &gridpb.Command{Kind: &gridpb.Command_ArchiveOrders{ArchiveOrders: &gridpb.ArchiveOrdersCommand{
		OrderIds: moving, Archive: name, BeforeUnixNano: before}}})
	if err != nil {
		log.Error("retention: archiving", slog.Any("error", err))
		return
	}
	j.archived.Add(float64(len(res.OrderIds)))
	log.Info("retention: orders archived", slog.String("archive", name), slog.Int("orders", len(res.OrderIds)))
}

// archiveEntry reads an order with its events and proof bundle; ok is false
// when the log has not checkpointed all its events yet (it waits a round).
func (j *Job) archiveEntry(r statemachine.Reader, p Partition, id string) (ArchiveEntry, bool, error) {
	o, found, err := statemachine.ReadOrder(r, p.Prefix(), id)
	if err != nil || !found {
		return ArchiveEntry{}, false, err
	}
	evs, err := statemachine.ReadEvents(r, p.Prefix(), id)
	if err != nil {
		return ArchiveEntry{}, false, err
	}
	b, err := j.proofs.Bundle(id)
	if errors.Is(err, ledger.ErrNotFound) {
		return ArchiveEntry{}, false, nil
	}
	if err != nil {
		return ArchiveEntry{}, false, fmt.Errorf("proofs: %w", err)
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
	raw, err := proto.Marshal(&gridpb.ArchivedOrder{Order: o, Events: evs})
	if err != nil {
		return ArchiveEntry{}, false, fmt.Errorf("archived order: %w", err)
	}
	return ArchiveEntry{Order: id, Status: o.Status, Record: base64.StdEncoding.EncodeToString(raw), Bundle: b}, true, nil
}

// Restore puts a verified archive's orders back into hot state, each
// through its partition, under principal; orders not archived (restored
// already) are skipped. ctx bounds it.
func Restore(ctx context.Context, grid Grid, a *VerifiedArchive, name, principal string) (restored int, err error) {
	byPartition := map[uint32][]*gridpb.ArchivedOrder{}
	parts := map[uint32]Partition{}
	for _, o := range a.Orders {
		p := grid.OrderPartition(o.Order.Id)
		parts[p.ID()] = p
		byPartition[p.ID()] = append(byPartition[p.ID()], o)
	}
	for id, orders := range byPartition {
		p := parts[id]
		for len(orders) > 0 {
			k := min(len(orders), archiveBatchMax)
			res, err := p.Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_RestoreOrders{RestoreOrders: &gridpb.RestoreOrdersCommand{
				Orders: orders[:k], Archive: name}}})
			if err != nil {
				return restored, fmt.Errorf("retention: restoring into partition %d: %w", id, err)
			}
			restored += len(res.OrderIds)
			orders = orders[k:]
		}
	}
	return restored, nil
}

// ReadArchived returns the marker an archived order left in its partition.
func ReadArchived(grid Grid, id string) (*gridpb.ArchivedOrderRecord, bool, error) {
	p := grid.OrderPartition(id)
	return statemachine.ReadArchived(p.Reader(), p.Prefix(), id)
}
