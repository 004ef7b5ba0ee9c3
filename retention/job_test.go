package retention_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/lifecycle"
	"github.com/ordergrid/ordergrid/retention"
	"github.com/ordergrid/ordergrid/statemachine"
)

// grid is retention.Grid over a single-node host: orders and SKUs go to
// the partition of their own id.
type grid struct{ h *cluster.Host }

func (g grid) Partitions() []retention.Partition {
	var out []retention.Partition
	for _, p := range g.h.Partitions() {
		out = append(out, part{p})
	}
	return out
}

func (g grid) OrderPartition(id string) retention.Partition { return part{g.h.PartitionOf(id)} }

// part is a one-node host's partition as the job reaches it.
type part struct{ p *cluster.Partition }

func (p part) ID() uint32                  { return p.p.ID }
func (p part) Prefix() []byte              { return p.p.Prefix }
func (p part) IsLeader() bool              { return p.p.IsLeader() }
func (p part) Reader() statemachine.Reader { return p.p.Applied() }

func (p part) Propose(ctx context.Context, principal string, cmd *gridpb.Command) (*statemachine.Result, error) {
	cmd.AtUnixNano, cmd.Principal = time.Now().UnixNano(), principal
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	out, err := p.p.Propose(ctx, data)
	if err != nil {
		return nil, err
	}
	res := &statemachine.Result{}
	return res, proto.Unmarshal(out, res)
}

func (g grid) propose(t *testing.T, key string, cmd *gridpb.Command) *statemachine.Result {
	t.Helper()
	res, err := part{g.h.PartitionOf(key)}.Propose(t.Context(), "test", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("%T: %v %s", cmd.Kind, res.Outcome, res.Detail)
	}
	return res
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// closedOrder makes order id, reserved, created, cancelled, its stock
// released: closed and owing nothing.
func closedOrder(t *testing.T, g grid, id string) {
	t.Helper()
	far := time.Now().Add(time.Hour).UnixNano()
	g.propose(t, "SKU-1", &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "SKU-1",
		Items: []*gridpb.ReserveItem{{OrderId: id, Qty: 1, ExpiresUnixNano: far}}}}})
	g.propose(t, id, &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: &gridpb.OrderRecord{
		Id: id, Channel: "tmall", PayByUnixNano: far, Lines: []*gridpb.OrderLineRecord{{Sku: "SKU-1", Qty: 1, UnitPrice: "1.00", Warehouse: "WH-1"}}}}}})
	g.propose(t, id, &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: id, Type: lifecycle.StatusCancelled}}})
	g.propose(t, "SKU-1", &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: "SKU-1", OrderId: id, Action: lifecycle.ActionRelease}}})
	g.propose(t, id, &gridpb.Command{Kind: &gridpb.Command_StockSynced{StockSynced: &gridpb.StockSyncedCommand{OrderId: id, Action: lifecycle.ActionRelease}}})
}

// The job moves a closed order into an archive file once the log proves
// all its events, the file verifies, the order leaves a marker, and a
// restore puts it back (once).
func TestJobArchivesAndRestores(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := cluster.Open(cluster.Options{DataDir: t.TempDir(), RaftAddr: freeAddr(t), Partitions: 2, Logger: logger,
		Groups: []cluster.Group{{Name: ledger.GroupName, Machine: ledger.NewMachine}}}, statemachine.New)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewSequencer(h, ledger.SequencerOptions{Origin: "ordergrid.test/retention",
		CheckpointInterval: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	seqCtx, stopSeq := context.WithCancel(ctx)
	seqDone := make(chan struct{})
	go func() { defer close(seqDone); seq.Run(seqCtx) }()
	defer func() { stopSeq(); <-seqDone }()

	g := grid{h}
	g.propose(t, "SKU-1", &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "SKU-1", Warehouse: "WH-1", OnHand: 10}}})
	closedOrder(t, g, "o-closed")
	far := time.Now().Add(time.Hour).UnixNano()
	g.propose(t, "o-open", &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: &gridpb.OrderRecord{
		Id: "o-open", Channel: "tmall", PayByUnixNano: far, Lines: []*gridpb.OrderLineRecord{{Sku: "SKU-1", Qty: 1, UnitPrice: "1.00", Warehouse: "WH-1"}}}}}})

	dir := filepath.Join(t.TempDir(), "archive")
	if _, err := retention.New(g, seq.Log(), retention.Options{Retention: time.Millisecond}); !errors.Is(err, retention.ErrNoDir) {
		t.Fatalf("a retention without a directory: %v", err)
	}
	job, err := retention.New(g, seq.Log(), retention.Options{Retention: time.Millisecond, Dir: dir,
		Interval: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	stop := job.Start(ctx)
	var marker *gridpb.ArchivedOrderRecord
	for marker == nil {
		m, archived, err := retention.ReadArchived(g, "o-closed")
		if err != nil {
			t.Fatal(err)
		}
		if archived {
			marker = m
		} else if ctx.Err() != nil {
			t.Fatal("not archived in time")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	if _, archived, _ := retention.ReadArchived(g, "o-open"); archived {
		t.Fatal("an open order was archived")
	}
	if marker.Status != lifecycle.StatusCancelled {
		t.Fatalf("marker %+v", marker)
	}

	f, err := os.Open(filepath.Join(dir, marker.Archive))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := seq.Log().Verifier()
	if err != nil {
		t.Fatal(err)
	}
	a, err := retention.ReadArchive(f, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Orders) != 1 || a.Orders[0].Order.Id != "o-closed" || a.Statuses[lifecycle.StatusCancelled] != 1 ||
		a.Header.Partition != g.OrderPartition("o-closed").ID() {
		t.Fatalf("archive %+v: %d orders", a.Header, len(a.Orders))
	}

	for i, want := range []int{1, 0} {
		n, err := retention.Restore(ctx, g, a, marker.Archive, "admin")
		if err != nil || n != want {
			t.Fatalf("restore %d: %d restored, %v; want %d", i+1, n, err, want)
		}
	}
	p := h.PartitionOf("o-closed")
	o, found, err := statemachine.ReadOrder(p.Applied(), p.Prefix, "o-closed")
	if err != nil || !found || o.Status != lifecycle.StatusCancelled {
		t.Fatalf("restored order: %v %v %v", o, found, err)
	}
	if _, archived, _ := retention.ReadArchived(g, "o-closed"); archived {
		t.Fatal("a restored order is still marked archived")
	}
}
