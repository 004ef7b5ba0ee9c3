package actors

import (
	"context"
	"crypto/rand"
	"time"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// The grain calls made from outside the grid (the gateway's reads, and the
// writes that are one grain's alone: a SKU's stock level, a subject's
// erasure). Each waits until ctx's deadline, or the node's request timeout
// without one; the caller never sees a grain client.

// GetOrder asks an order's grain for the order (OUTCOME_NOT_FOUND for one
// never recorded or archived).
func (n *Node) GetOrder(ctx context.Context, id string) (*gridpb.OrderGrainResponse, error) {
	return n.orderClient(id).Get(&gridpb.OrderQuery{OrderId: id}, n.callOptionsFor(ctx)...)
}

// OpenPersonal asks a subject's grain to open sealed personal fields, for
// principal and purpose (an access the subject's audit trail records).
func (n *Node) OpenPersonal(ctx context.Context, subject string, req *gridpb.OpenPersonalRequest) (*gridpb.OpenPersonalResponse, error) {
	return n.subjectClient(subject).Open(req, n.callOptionsFor(ctx)...)
}

// SetStock sets a SKU's on-hand quantity at a warehouse, through its grain.
func (n *Node) SetStock(ctx context.Context, req *pb.SetStockRequest, principal string) (*pb.SkuStock, error) {
	// One id for the call, however often it is retried: a copy committed
	// late changes nothing (statemachine's stock sets).
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return n.skuClient(req.Sku).SetStock(&gridpb.SetStockGrainRequest{Stock: req, Principal: principal, RequestId: id}, n.callOptionsFor(ctx)...)
}

// GetStock reads a SKU's stock in every warehouse, from its grain.
func (n *Node) GetStock(ctx context.Context, sku string) (*pb.SkuStock, error) {
	return n.skuClient(sku).GetStock(&gridpb.SkuQuery{Sku: sku}, n.callOptionsFor(ctx)...)
}

// EraseSubject erases a data subject (crypto-shredding its key), through
// its grain; OUTCOME_NOT_FOUND and OUTCOME_ERASED come back as failures
// carrying the outcome (failure.OutcomeOf).
func (n *Node) EraseSubject(ctx context.Context, id, principal string) (*gridpb.SubjectTombstoneRecord, error) {
	return n.subjectClient(id).Erase(&gridpb.EraseSubjectGrainRequest{Principal: principal}, n.callOptionsFor(ctx)...)
}

// callOptionsFor are the grain call options, bounded by ctx's deadline.
func (n *Node) callOptionsFor(ctx context.Context) []actorcluster.GrainCallOption {
	opts := n.callOptions()
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, actorcluster.WithTimeout(time.Until(d)))
	}
	return opts
}
