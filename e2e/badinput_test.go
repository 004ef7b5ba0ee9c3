package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Bad input gets a problem+json naming the field, changes nothing, and
// leaves the node serving.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/BAD-1/stock/WH1", map[string]any{"on_hand": 10}, 200)
	before := n.stock("BAD-1")

	lines := make([]map[string]any, 101)
	for i := range lines {
		lines[i] = map[string]any{"sku": "BAD-1", "qty": 1, "unit_price": "1"}
	}
	withLines := func(l any) map[string]any { b := orderBody("x", "BAD-1", 1); b["lines"] = l; return b }
	without := func(k string) map[string]any { b := orderBody("x", "BAD-1", 1); delete(b, k); return b }
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		ctype  string
		code   int
		field  string
	}{
		{"malformed json", "POST", "/v1/orders", `{"channel": "douyin",`, "", 400, "body"},
		{"not an object", "POST", "/v1/orders", `[1,2]`, "", 400, "body"},
		{"trailing data", "POST", "/v1/orders", `{} {}`, "", 400, "body"},
		{"empty body", "POST", "/v1/orders", ``, "", 400, "body"},
		{"unknown field", "POST", "/v1/orders", `{"channel":"douyin","discount":5}`, "", 400, "discount"},
		{"wrong type", "POST", "/v1/orders", `{"lines":[{"sku":"BAD-1","qty":1},{"sku":"BAD-1","qty":"two"}]}`, "", 400, "lines[1].qty"},
		{"qty overflow", "POST", "/v1/orders", `{"lines":[{"sku":"BAD-1","qty":1e30}]}`, "", 400, "lines[0].qty"},
		{"nested unknown field", "POST", "/v1/orders", `{"customer":{"id":"c","nickname":"x"}}`, "", 400, "customer.nickname"},
		{"duplicate key", "POST", "/v1/orders", `{"channel":"douyin","channel":"tmall"}`, "", 400, "channel"},
		{"invalid utf-8", "POST", "/v1/orders", "{\"channel\":\"douyin\xff\"}", "", 400, "channel"},
		{"batch malformed", "POST", "/v1/orders:batch", `{"orders":[{"channel":"a"},{"lines":[{"qty":true}]}`, "", 400, "body"},
		{"event duplicate key", "POST", "/v1/orders/o_00000000000000000000000000000000/events", `{"type":"paid","type":"shipped"}`, "", 400, "type"},
		{"missing channel", "POST", "/v1/orders", without("channel"), "", 422, "channel"},
		{"missing customer", "POST", "/v1/orders", without("customer"), "", 422, "customer"},
		{"missing currency", "POST", "/v1/orders", without("currency"), "", 422, "currency"},
		{"missing lines", "POST", "/v1/orders", without("lines"), "", 422, "lines"},
		{"zero qty", "POST", "/v1/orders", withLines([]map[string]any{{"sku": "BAD-1", "qty": 0, "unit_price": "1"}}), "", 422, "lines[0].qty"},
		{"negative qty", "POST", "/v1/orders", withLines([]map[string]any{{"sku": "BAD-1", "qty": -3, "unit_price": "1"}}), "", 422, "lines[0].qty"},
		{"huge qty", "POST", "/v1/orders", withLines([]map[string]any{{"sku": "BAD-1", "qty": 1 << 40, "unit_price": "1"}}), "", 422, "lines[0].qty"},
		{"bad price", "POST", "/v1/orders", withLines([]map[string]any{{"sku": "BAD-1", "qty": 1, "unit_price": "1,50"}}), "", 422, "lines[0].unit_price"},
		{"bad sku", "POST", "/v1/orders", withLines([]map[string]any{{"sku": "../etc", "qty": 1, "unit_price": "1"}}), "", 422, "lines[0].sku"},
		{"too many lines", "POST", "/v1/orders", withLines(lines), "", 422, "lines"},
		{"unknown sku", "POST", "/v1/orders", withLines([]map[string]any{{"sku": "NEVER-STOCKED", "qty": 1, "unit_price": "1"}}), "", 409, "lines[0].sku"},
		{"body too large", "POST", "/v1/orders", `{"channel":"` + strings.Repeat("a", 5<<20) + `"}`, "", 413, "body"},
		{"wrong media type", "POST", "/v1/orders", `channel=douyin`, "application/x-www-form-urlencoded", 415, ""},
		{"unknown order", "GET", "/v1/orders/o_00000000000000000000000000000000", nil, "", 404, "order"},
		{"garbage order id", "GET", "/v1/orders/..%2f..%2fetc", nil, "", 404, "order"},
		{"unknown sku get", "GET", "/v1/skus/NOPE", nil, "", 404, "sku"},
		{"unknown event", "POST", "/v1/orders/o_00000000000000000000000000000000/events", `{"type":"teleported"}`, "", 422, "type"},
		{"negative stock", "PUT", "/v1/skus/BAD-1/stock/WH1", `{"on_hand":-1}`, "", 422, "on_hand"},
		{"stock without on_hand", "PUT", "/v1/skus/BAD-1/stock/WH1", `{}`, "", 422, "on_hand"},
		{"stock duplicate key", "PUT", "/v1/skus/BAD-1/stock/WH1", `{"on_hand":50,"on_hand":60}`, "", 400, "on_hand"},
		{"stock wrong type", "PUT", "/v1/skus/BAD-1/stock/WH1", `{"on_hand":1.5}`, "", 400, "on_hand"},
		{"stock empty body", "PUT", "/v1/skus/BAD-1/stock/WH1", ``, "", 400, "body"},
		{"warehouse nested wrong type", "PUT", "/v1/warehouses/WH-BAD", `{"rates":[{"region":"*","cost":"1"},{"region":"east","cost":2}]}`, "", 400, "rates[1].cost"},
		{"warehouse nested unknown field", "PUT", "/v1/warehouses/WH-BAD", `{"rates":[{"region":"*","cost":"1","colour":"red"}]}`, "", 400, "rates[0].colour"},
		{"warehouse duplicate key", "PUT", "/v1/warehouses/WH-BAD", `{"rates":[{"region":"*","region":"east","cost":"1"}]}`, "", 400, "rates[0].region"},
		{"warehouse too large", "PUT", "/v1/warehouses/WH-BAD", `{"name":"` + strings.Repeat("a", 300<<10) + `"}`, "", 413, "body"},
		{"strategy unknown field", "PUT", "/v1/routing/strategies/bad", `{"weights":{"cost":1},"tier_rules":[{"tier":"vip","rule":"fastest_within_cost_cap","cap":"1"}]}`, "", 400, "tier_rules[0].cap"},
		{"strategy wrong type", "PUT", "/v1/routing/strategies/bad", `{"weights":{"cost":"high"}}`, "", 400, "weights.cost"},
		{"selection wrong type", "PUT", "/v1/routing/selection", `{"strategy":"s","candidate":{"strategy":"t","share_percent":"ten"}}`, "", 400, "candidate.share_percent"},
		{"selection empty body", "PUT", "/v1/routing/selection", ``, "", 400, "body"},
		{"batch too big", "POST", "/v1/orders:batch", `{"orders":[` + strings.Repeat(`{},`, 1000) + `{}]}`, "", 422, "orders"},
		{"no route", "DELETE", "/v1/everything", nil, "", 404, ""},
		{"wrong method", "DELETE", "/v1/orders", nil, "", 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := []string{}
			if c.ctype != "" {
				headers = append(headers, "Content-Type", c.ctype)
			}
			r, err := do(context.Background(), c.method, n.http+c.path, c.body, headers...)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != c.code {
				t.Fatalf("status %d, want %d: %s", r.code, c.code, r.body)
			}
			if ct := r.headers.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p problem
			r.json(t, &p)
			if p.Status != c.code || !strings.HasPrefix(p.Type, "https://ordergrid.dev/problems/") || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			if c.field != "" {
				found := false
				for _, e := range p.Errors {
					found = found || e.Field == c.field
				}
				if !found {
					t.Fatalf("problem does not name %q: %s", c.field, r.body)
				}
			}
			for _, leak := range []string{"json:", "Go", "int64", "float64", "struct", "unmarshal", "reflect", "grain error"} {
				if strings.Contains(string(r.body), leak) {
					t.Fatalf("the problem holds %q: %s", leak, r.body)
				}
			}
		})
	}
	// A body cut short of its Content-Length (the client closed its side):
	// 400 naming the body, not the reader's error.
	code, body := sendCutShort(t, n.http, "PUT", "/v1/skus/BAD-1/stock/WH1", `{"on_hand":`)
	if code != 400 || !strings.Contains(body, `"field":"body"`) || strings.Contains(body, "EOF") {
		t.Fatalf("cut short: %d %s", code, body)
	}
	if after := n.stock("BAD-1"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("stock changed: %+v -> %+v", before, after)
	}
	n.must("GET", "/healthz", nil, 200)
	n.must("GET", "/readyz", nil, 200)
}

// Batch intake answers one result per order, in order.
func TestBatchIntake(t *testing.T) {
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/BATCH-1/stock/WH1", map[string]any{"on_hand": 3}, 200)
	bad := orderBody("b-2", "BATCH-1", 0)
	// The orders of a batch run concurrently: b-3 asks for more than there
	// is at all, so it is refused whatever runs first.
	body := map[string]any{"orders": []any{
		orderBody("b-1", "BATCH-1", 2), bad, orderBody("b-3", "BATCH-1", 4), orderBody("b-1", "BATCH-1", 2),
	}}
	var out struct {
		Results []struct {
			Status  int      `json:"status"`
			Order   *order   `json:"order"`
			Problem *problem `json:"problem"`
		} `json:"results"`
	}
	n.must("POST", "/v1/orders:batch", body, 200).json(t, &out)
	if len(out.Results) != 4 {
		t.Fatalf("%d results", len(out.Results))
	}
	r := out.Results
	// b-1 and its duplicate run concurrently: one creates, one replays.
	if !((r[0].Status == 201 && r[3].Status == 200) || (r[0].Status == 200 && r[3].Status == 201)) || r[0].Order.ID != r[3].Order.ID {
		t.Fatalf("b-1 twice: %+v %+v", r[0], r[3])
	}
	if r[1].Status != 422 || r[1].Problem.Errors[0].Field != "orders[1].lines[0].qty" {
		t.Fatalf("invalid order: %+v", r[1].Problem)
	}
	if r[2].Status != 409 || r[2].Problem.SKU != "BATCH-1" {
		t.Fatalf("out of stock: %+v", r[2])
	}
	if s := n.checkConserved("BATCH-1"); s.Total.Pending != 2 {
		t.Fatalf("stock %+v", s.Total)
	}

	// An order of the wrong shape is refused alone (400 naming its field);
	// the others of the batch are taken.
	raw := `{"orders":[{"channel":"douyin","lines":[{"sku":"BATCH-1","qty":"one"}]},` + string(mustJSON(t, orderBody("b-4", "BATCH-1", 1))) + `]}`
	n.must("POST", "/v1/orders:batch", raw, 200).json(t, &out)
	if len(out.Results) != 2 || out.Results[0].Status != 400 || out.Results[0].Problem.Errors[0].Field != "orders[0].lines[0].qty" ||
		out.Results[1].Status != 201 {
		t.Fatalf("a malformed order in a batch: %+v", out.Results)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The gRPC API is the same service: same results, errors as statuses with details.
func TestGRPC(t *testing.T) {
	n := newNode(t)
	n.start()
	conn := dialGRPC(t, n.grpc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv := pb.NewInventoryServiceClient(conn)
	orders := pb.NewOrderServiceClient(conn)
	if _, err := inv.SetStock(ctx, &pb.SetStockRequest{Sku: "G-1", Warehouse: "WH1", OnHand: 1}); err != nil {
		t.Fatal(err)
	}
	req := &pb.CreateOrderRequest{Channel: "jd", ChannelOrderId: "g-1", Currency: "CNY", IdempotencyKey: "grpc-key-1",
		Customer: &pb.Customer{Id: "c1"}, Lines: []*pb.OrderLineInput{{Sku: "G-1", Qty: 1, UnitPrice: "10.00"}}}
	first, err := orders.CreateOrder(ctx, req)
	if err != nil || first.Replayed || first.Order.Status != "pending_payment" {
		t.Fatalf("create: %v %v", first, err)
	}
	again, err := orders.CreateOrder(ctx, req)
	if err != nil || !again.Replayed || again.Order.Id != first.Order.Id {
		t.Fatalf("retry: %v %v", again, err)
	}
	req2 := &pb.CreateOrderRequest{Channel: "jd", ChannelOrderId: "g-2", Currency: "CNY",
		Customer: &pb.Customer{Id: "c1"}, Lines: []*pb.OrderLineInput{{Sku: "G-1", Qty: 1, UnitPrice: "10.00"}}}
	_, err = orders.CreateOrder(ctx, req2)
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || reason(st) != "insufficient-stock" {
		t.Fatalf("out of stock: %v", st)
	}
	req2.Lines[0].Qty = 0
	_, err = orders.CreateOrder(ctx, req2)
	st = status.Convert(err)
	if st.Code() != codes.InvalidArgument || !namesField(st, "lines[0].qty") {
		t.Fatalf("invalid: %v %v", st, st.Details())
	}
	_, err = orders.GetOrder(ctx, &pb.GetOrderRequest{Id: "o_00000000000000000000000000000000"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown order: %v", err)
	}
	paid, err := orders.AddOrderEvent(ctx, &pb.OrderEventRequest{Id: first.Order.Id, Type: "paid"})
	if err != nil || paid.Status != "paid" {
		t.Fatalf("pay: %v %v", paid, err)
	}
	sku, err := inv.GetSku(ctx, &pb.GetSkuRequest{Sku: "G-1"})
	if err != nil || sku.Total.Committed != 1 || sku.Total.Available != 0 {
		t.Fatalf("sku: %v %v", sku, err)
	}

	// Streaming intake: results by seq, each judged alone.
	if _, err := inv.SetStock(ctx, &pb.SetStockRequest{Sku: "G-2", Warehouse: "WH1", OnHand: 2}); err != nil {
		t.Fatal(err)
	}
	stream, err := orders.StreamCreateOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(i int, qty int64) *pb.CreateOrderRequest {
		return &pb.CreateOrderRequest{Channel: "douyin", ChannelOrderId: fmt.Sprintf("s-%d", i), Currency: "CNY",
			Customer: &pb.Customer{Id: "c1"}, Lines: []*pb.OrderLineInput{{Sku: "G-2", Qty: qty, UnitPrice: "1.00"}}}
	}
	sends := []*pb.StreamCreateOrderRequest{{Seq: 1, Order: mk(1, 1)}, {Seq: 2, Order: mk(2, 1)}, {Seq: 3, Order: mk(3, 1)},
		{Seq: 4, Order: mk(4, 0)}, {Seq: 5, Order: mk(1, 1)}, {Seq: 6}}
	for _, r := range sends {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]*pb.BatchCreateOrderResult{}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[r.Seq] = r.Result
	}
	codes := map[int32]int{}
	for _, seq := range []uint64{1, 2, 3} {
		codes[got[seq].GetStatus()]++
	}
	// Two of the three distinct orders fit the stock of 2 (the order in
	// which they run is the stream's); the retry of order 1 (seq 5) is
	// either its first answer's twin or the order itself.
	if len(got) != 6 || codes[201]+codes[200] != 2 || codes[409] != 1 {
		t.Fatalf("stream results %v", got)
	}
	if got[4].GetStatus() != 422 || got[4].Problem.GetErrors()[0].GetField() != "order.lines[0].qty" {
		t.Fatalf("invalid order in a stream: %v", got[4])
	}
	if got[6].GetStatus() != 422 {
		t.Fatalf("empty order in a stream: %v", got[6])
	}
}

func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

func namesField(st *status.Status, field string) bool {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				if v.Field == field {
					return true
				}
			}
		}
	}
	return false
}

// sendCutShort sends a request whose body ends before its Content-Length,
// closing the client's side of the connection, and returns the answer.
func sendCutShort(t *testing.T, base, method, path, part string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n%s", method, path, testToken, len(part)+100, part); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
