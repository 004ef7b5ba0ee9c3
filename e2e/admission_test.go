package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// A node at its in-flight limit answers at once, over HTTP with 429 and
// Retry-After, over gRPC with ResourceExhausted and RetryInfo, per order in
// a stream with a 429 result; nothing it accepted is lost.
func TestAdmissionOverHTTPAndGRPC(t *testing.T) {
	n := newNode(t, "--http-in-flight-max", "2")
	n.start()
	n.must("PUT", "/v1/skus/ADM-1/stock/WH1", map[string]any{"on_hand": 1_000_000}, 200)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := do(context.Background(), "POST", n.http+"/v1/orders", orderBody(fmt.Sprintf("adm-h-%d", i), "ADM-1", 1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				counts["error"]++
			case r.code == 429 && r.headers.Get("Retry-After") == "1":
				counts["429"]++
			case r.code == 201:
				counts["201"]++
			default:
				counts[fmt.Sprint(r.code)]++
			}
		}()
	}
	wg.Wait()
	if counts["429"] == 0 || counts["201"] == 0 || counts["429"]+counts["201"] != 64 {
		t.Fatalf("HTTP answers %v", counts)
	}

	conn := dialGRPC(t, n.grpc)
	orders := pb.NewOrderServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counts = map[string]int{}
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := orders.CreateOrder(ctx, &pb.CreateOrderRequest{Channel: "jd", ChannelOrderId: fmt.Sprintf("adm-g-%d", i), Currency: "CNY",
				Customer: &pb.Customer{Id: "c"}, Lines: []*pb.OrderLineInput{{Sku: "ADM-1", Qty: 1, UnitPrice: "1.00"}}})
			st := status.Convert(err)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				counts["ok"]++
			case st.Code() == codes.ResourceExhausted && retryDelay(st) == time.Second && reason(st) == "overloaded":
				counts["exhausted"]++
			default:
				counts[st.Code().String()]++
			}
		}()
	}
	wg.Wait()
	if counts["exhausted"] == 0 || counts["ok"] == 0 || counts["exhausted"]+counts["ok"] != 64 {
		t.Fatalf("gRPC answers %v", counts)
	}

	stream, err := orders.StreamCreateOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64; i++ {
		_ = stream.Send(&pb.StreamCreateOrderRequest{Seq: uint64(i), Order: &pb.CreateOrderRequest{Channel: "jd", ChannelOrderId: fmt.Sprintf("adm-s-%d", i),
			Currency: "CNY", Customer: &pb.Customer{Id: "c"}, Lines: []*pb.OrderLineInput{{Sku: "ADM-1", Qty: 1, UnitPrice: "1.00"}}}})
	}
	_ = stream.CloseSend()
	counts = map[string]int{}
	for i := 0; i < 64; i++ {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		counts[fmt.Sprint(r.Result.Status)]++
	}
	if counts["429"] == 0 || counts["201"] == 0 || counts["429"]+counts["201"] != 64 {
		t.Fatalf("stream answers %v", counts)
	}
}

func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.RetryDelay.AsDuration()
		}
	}
	return 0
}
