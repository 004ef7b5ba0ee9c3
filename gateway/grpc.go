package gateway

import (
	"context"
	"net/http"
	"time"

	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"

	"google.golang.org/grpc/metadata"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// The gRPC face of Service. Callers authenticate with "authorization:
// Bearer <token>" metadata, checked by the interceptors.

// authenticated returns ctx with the caller of its "authorization" metadata.
func (s *Service) authenticated(ctx context.Context) (context.Context, error) {
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	if s.tokens == nil {
		return nil, grpcErr(unauthenticated(ErrUnknownToken))
	}
	p, err := s.tokens.Authenticate(header)
	if err != nil {
		s.metrics.rejects.WithLabelValues("unauthenticated").Inc()
		return nil, grpcErr(unauthenticated(err))
	}
	return WithPrincipal(ctx, p), nil
}

func grpcErr(p *Problem) error {
	if p == nil {
		return nil
	}
	return p.GRPCStatus().Err()
}

// CreateOrder implements pb.OrderServiceServer.
func (s *Service) CreateOrder(ctx context.Context, req *pb.CreateOrderRequest) (*pb.CreateOrderResponse, error) {
	resp, _, p := s.createOrder(ctx, req)
	if p != nil {
		return nil, grpcErr(p)
	}
	return resp, nil
}

// BatchCreateOrders implements pb.OrderServiceServer.
func (s *Service) BatchCreateOrders(ctx context.Context, req *pb.BatchCreateOrdersRequest) (*pb.BatchCreateOrdersResponse, error) {
	resp, p := s.batchCreate(ctx, req, nil)
	if p != nil {
		return nil, grpcErr(p)
	}
	return resp, nil
}

// GetOrder implements pb.OrderServiceServer.
func (s *Service) GetOrder(ctx context.Context, req *pb.GetOrderRequest) (*pb.Order, error) {
	o, p := s.getOrder(ctx, req.Id, req.IncludePersonal, "")
	if p != nil {
		return nil, grpcErr(p)
	}
	return o, nil
}

// ListOrderEvents implements pb.OrderServiceServer.
func (s *Service) ListOrderEvents(ctx context.Context, req *pb.GetOrderRequest) (*pb.ListOrderEventsResponse, error) {
	r, p := s.listEvents(ctx, req.Id)
	if p != nil {
		return nil, grpcErr(p)
	}
	return r, nil
}

// AddOrderEvent implements pb.OrderServiceServer.
func (s *Service) AddOrderEvent(ctx context.Context, req *pb.OrderEventRequest) (*pb.Order, error) {
	o, p := s.addEvent(ctx, req)
	if p != nil {
		return nil, grpcErr(p)
	}
	return o, nil
}

// SetStock implements pb.InventoryServiceServer.
func (s *Service) SetStock(ctx context.Context, req *pb.SetStockRequest) (*pb.SkuStock, error) {
	st, p := s.setStock(ctx, req)
	if p != nil {
		return nil, grpcErr(p)
	}
	return st, nil
}

// GetSku implements pb.InventoryServiceServer.
func (s *Service) GetSku(ctx context.Context, req *pb.GetSkuRequest) (*pb.SkuStock, error) {
	st, p := s.getSku(ctx, req.Sku)
	if p != nil {
		return nil, grpcErr(p)
	}
	return st, nil
}

// ListSkuEvents implements pb.InventoryServiceServer.
func (s *Service) ListSkuEvents(ctx context.Context, req *pb.GetSkuRequest) (*pb.ListSkuEventsResponse, error) {
	r, p := s.listSkuEvents(ctx, req.Sku)
	if p != nil {
		return nil, grpcErr(p)
	}
	return r, nil
}

// streamInFlightMax bounds the orders of one stream being created at once;
// a full stream is not read until one completes (backpressure to the client).
const streamInFlightMax = 512

// StreamCreateOrders implements pb.OrderServiceServer.
func (s *Service) StreamCreateOrders(stream pb.OrderService_StreamCreateOrdersServer) error {
	ctx := stream.Context()
	if p := allow(ctx, "creating orders", RoleIntake); p != nil {
		return grpcErr(p)
	}
	results := make(chan *pb.StreamCreateOrderResult, streamInFlightMax)
	sendErr := make(chan error, 1)
	go func() {
		var err error
		for r := range results {
			if err == nil {
				err = stream.Send(r)
			}
		}
		sendErr <- err
	}()
	sem := make(chan struct{}, streamInFlightMax)
	var wg sync.WaitGroup
	var recvErr error
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			recvErr = err
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			recvErr = ctx.Err()
		}
		if recvErr != nil {
			break
		}
		wg.Add(1)
		if !s.admission.acquire() {
			// Every order of a stream is admitted like a request: over the
			// limit it is answered 429 at once.
			<-sem
			wg.Done()
			s.metrics.rejects.WithLabelValues("overloaded").Inc()
			results <- &pb.StreamCreateOrderResult{Seq: req.Seq, Result: &pb.BatchCreateOrderResult{Status: http.StatusTooManyRequests, Problem: overloaded().Proto()}}
			continue
		}
		go func(req *pb.StreamCreateOrderRequest) {
			start := time.Now()
			defer func() { s.admission.release(time.Since(start)); <-sem; wg.Done() }()
			results <- &pb.StreamCreateOrderResult{Seq: req.Seq, Result: s.createOne(ctx, req.Order, "order.")}
		}(req)
	}
	wg.Wait()
	close(results)
	if err := <-sendErr; err != nil {
		return err
	}
	return recvErr
}

// UnaryInterceptor authenticates unary gRPC calls and applies the HTTP
// API's admission control to them: over the in-flight limit a call fails at
// once with ResourceExhausted, ErrorInfo reason "overloaded" and RetryInfo.
func (s *Service) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := s.authenticated(ctx)
		if err != nil {
			return nil, err
		}
		if !s.admission.acquire() {
			s.metrics.rejects.WithLabelValues("overloaded").Inc()
			return nil, grpcErr(overloaded())
		}
		start := time.Now()
		defer func() { s.admission.release(time.Since(start)) }()
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates streaming gRPC calls (their orders are
// admitted one by one, see StreamCreateOrders).
func (s *Service) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := s.authenticated(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &authenticatedStream{ServerStream: ss, ctx: ctx})
	}
}

type authenticatedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authenticatedStream) Context() context.Context { return a.ctx }

// EraseSubject implements pb.PrivacyServiceServer.
func (s *Service) EraseSubject(ctx context.Context, req *pb.EraseSubjectRequest) (*pb.SubjectErasure, error) {
	e, p := s.eraseSubject(ctx, req.Id)
	if p != nil {
		return nil, grpcErr(p)
	}
	return e, nil
}
