package harness

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// streamTransport sends orders over one OrderService.StreamCreateOrders
// stream, shared by many senders: each waits for the result with its seq.
type streamTransport struct {
	conn   *grpc.ClientConn
	stream pb.OrderService_StreamCreateOrdersClient
	cancel context.CancelFunc

	sendMu  sync.Mutex
	mu      sync.Mutex
	seq     uint64
	pending map[uint64]chan *pb.BatchCreateOrderResult
	err     error
}

func newStream(addr, token string) (*streamTransport, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearerCreds(token)))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := pb.NewOrderServiceClient(conn).StreamCreateOrders(ctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	t := &streamTransport{conn: conn, stream: stream, cancel: cancel, pending: map[uint64]chan *pb.BatchCreateOrderResult{}}
	go t.receive()
	return t, nil
}

func (t *streamTransport) receive() {
	for {
		r, err := t.stream.Recv()
		t.mu.Lock()
		if err != nil {
			t.err = fmt.Errorf("stream: %w", err)
			for _, ch := range t.pending {
				close(ch)
			}
			t.pending = map[uint64]chan *pb.BatchCreateOrderResult{}
			t.mu.Unlock()
			return
		}
		ch := t.pending[r.Seq]
		delete(t.pending, r.Seq)
		t.mu.Unlock()
		if ch != nil {
			ch <- r.Result
		}
	}
}

func (t *streamTransport) Create(ctx context.Context, req *pb.CreateOrderRequest) Outcome {
	ch := make(chan *pb.BatchCreateOrderResult, 1)
	t.mu.Lock()
	if t.err != nil {
		err := t.err
		t.mu.Unlock()
		return Outcome{Class: TransportError, Detail: err.Error()}
	}
	t.seq++
	seq := t.seq
	t.pending[seq] = ch
	t.mu.Unlock()
	t.sendMu.Lock()
	err := t.stream.Send(&pb.StreamCreateOrderRequest{Seq: seq, Order: req})
	t.sendMu.Unlock()
	if err != nil {
		t.mu.Lock()
		delete(t.pending, seq)
		t.mu.Unlock()
		return Outcome{Class: TransportError, Detail: err.Error()}
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return Outcome{Class: TransportError, Detail: "stream ended"}
		}
		o := classify(int(r.Status), r.Problem.GetType())
		o.ID = r.Order.GetId()
		return o
	case <-ctx.Done():
		t.mu.Lock()
		delete(t.pending, seq)
		t.mu.Unlock()
		return Outcome{Class: TransportError, Detail: ctx.Err().Error()}
	}
}

func (t *streamTransport) CreateBatch(ctx context.Context, reqs []*pb.CreateOrderRequest) []Outcome {
	out := make([]Outcome, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = t.Create(ctx, r) }()
	}
	wg.Wait()
	return out
}

func (t *streamTransport) Close() error {
	t.sendMu.Lock()
	_ = t.stream.CloseSend()
	t.sendMu.Unlock()
	t.cancel()
	return t.conn.Close()
}
