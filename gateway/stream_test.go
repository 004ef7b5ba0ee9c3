package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordergrid/ordergrid/ledger"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// sseEvent is one event of a Server-Sent Events stream.
type sseEvent struct {
	id   string
	data string
}

// openSSE opens GET path as role and returns the response and a channel of
// its events (closed when the stream ends).
func openSSE(t *testing.T, srv *httptest.Server, tg *testGateway, path string, role Role, lastID string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tg.tokens[role])
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return resp, out
}

// next waits for the next event whose data contains want.
func nextEvent(t *testing.T, evs <-chan sseEvent, want string) sseEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("the stream ended before an event with %s", want)
			}
			if strings.Contains(ev.data, want) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event with %s within 10s", want)
		}
	}
}

func (tg *testGateway) order(t *testing.T, channel, id string) string {
	t.Helper()
	tg.must(t, "PUT", "/v1/skus/STR-1/stock/WH-STR", `{"on_hand":1000}`, http.StatusOK)
	body := fmt.Sprintf(`{"channel":%q,"channel_order_id":%q,"currency":"CNY","customer":{"id":"u-str"},"lines":[{"sku":"STR-1","qty":1,"unit_price":"1.00"}]}`, channel, id)
	rec := tg.do("POST", "/v1/orders", body, RoleAdmin)
	if rec.Code != http.StatusCreated {
		t.Fatalf("order: %d %s", rec.Code, rec.Body)
	}
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &o)
	return o.ID
}

func TestStreamLiveResumeAndScope(t *testing.T) {
	tg := startGateway(t)
	srv := httptest.NewServer(tg.gw)
	t.Cleanup(srv.Close) // after the streams' own cleanups have closed them

	resp, live := openSSE(t, srv, tg, "/v1/stream?kind=order", RoleOps, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_, scoped := openSSE(t, srv, tg, "/v1/stream", RolePartner, "") // bound to douyin
	tmall := tg.order(t, "tmall", "str-tmall-1")
	douyin := tg.order(t, "douyin", "str-douyin-1")
	tg.must(t, "POST", "/v1/orders/"+douyin+"/pay", "", http.StatusOK)

	first := nextEvent(t, live, tmall)
	e, err := ledger.DecodeLeaf([]byte(first.data))
	if err != nil || e.Type != "created" || e.Order != tmall {
		t.Fatalf("the first event is not the log's leaf of tmall's created: %v %s", err, first.data)
	}
	paid := nextEvent(t, live, `"type":"paid"`)
	// The id is the log index: the event is that leaf.
	idx, _ := strconv.ParseUint(paid.id, 10, 64)
	leaf, err := tg.gw.opts.Ledger.Leaf(idx)
	if err != nil || string(leaf) != paid.data {
		t.Fatalf("id %s is not the leaf of the event: %v %s", paid.id, err, leaf)
	}
	// The partner sees douyin's order (its created, reservation, payment) and never tmall's.
	for _, want := range []string{`"type":"created"`, `"type":"paid"`} {
		ev := nextEvent(t, scoped, want)
		if !strings.Contains(ev.data, douyin) {
			t.Fatalf("partner of douyin got %s", ev.data)
		}
	}

	// Resume after the created event of tmall's order: the next order event
	// is douyin's created, then its payment, nothing repeated.
	_, resumed := openSSE(t, srv, tg, "/v1/stream?kind=order&order="+tmall+","+douyin, RoleOps, first.id)
	got := []string{}
	for len(got) < 2 {
		ev := nextEvent(t, resumed, `"kind":"order"`)
		got = append(got, ev.id)
		if ev.id == first.id {
			t.Fatalf("resumed stream repeats %s", first.id)
		}
	}
	if got[1] != paid.id {
		t.Fatalf("resumed: %v, then want the payment %s", got, paid.id)
	}
	// ?from=INDEX starts at that index.
	_, from := openSSE(t, srv, tg, "/v1/stream?from="+first.id, RoleCompliance, "")
	if ev := nextEvent(t, from, `"kind"`); ev.id != first.id {
		t.Fatalf("from=%s starts at %s", first.id, ev.id)
	}
}

func TestStreamRefusesBadRequests(t *testing.T) {
	tg := startGateway(t)
	head, _ := tg.events.Head()
	for _, c := range []struct {
		path, lastID string
		role         Role
		code         int
		field        string
	}{
		{path: "/v1/stream?chanel=tmall", role: RoleOps, code: 400, field: "chanel"},
		{path: "/v1/stream?status=lost", role: RoleOps, code: 400, field: "status"},
		{path: "/v1/stream?kind=order,orders", role: RoleOps, code: 400, field: "kind"},
		{path: "/v1/stream?from=-1", role: RoleOps, code: 400, field: "from"},
		{path: fmt.Sprintf("/v1/stream?from=%d", head+1_000_000), role: RoleOps, code: 400, field: "from"},
		{path: "/v1/stream", lastID: "x", role: RoleOps, code: 400, field: "Last-Event-ID"},
		{path: "/v1/stream?channel=tmall", role: RolePartner, code: 403, field: "channel"},
		{path: "/v1/stream", role: RoleIntake, code: 403},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.Header.Set("Authorization", "Bearer "+tg.tokens[c.role])
		if c.lastID != "" {
			req.Header.Set("Last-Event-ID", c.lastID)
		}
		rec := httptest.NewRecorder()
		tg.gw.ServeHTTP(rec, req)
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != c.code || rec.Header().Get("Content-Type") != "application/problem+json" ||
			c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
			t.Errorf("%s as %s: %d %s, want %d naming %q", c.path, c.role, rec.Code, rec.Body, c.code, c.field)
		}
	}
}

func TestStreamEventsOverGRPC(t *testing.T) {
	tg := startGateway(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(tg.gw.UnaryInterceptor()), grpc.StreamInterceptor(tg.gw.StreamInterceptor()))
	pb.RegisterEventServiceServer(srv, tg.gw.Service)
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewEventServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	auth := func(r Role) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tg.tokens[r])
	}
	head, _ := tg.events.Head()
	id := tg.order(t, "douyin", "str-grpc-1")
	s, err := client.StreamEvents(auth(RoleOps), &pb.StreamEventsRequest{From: &head, Order: []string{id}, Kind: []string{"order"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Recv()
	if err != nil || ev.Order != id || ev.Type != "created" || ev.Index < head {
		t.Fatalf("first event: %v %v", ev, err)
	}
	if leaf, _ := tg.gw.opts.Ledger.Leaf(ev.Index); string(leaf) != string(ev.Leaf) {
		t.Fatalf("event %d is not its leaf", ev.Index)
	}
	// Bad filter: InvalidArgument naming the field.
	s, _ = client.StreamEvents(auth(RoleOps), &pb.StreamEventsRequest{Status: []string{"lost"}})
	if _, err := s.Recv(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "status") {
		t.Fatalf("bad status: %v", err)
	}
	s, _ = client.StreamEvents(auth(RoleIntake), &pb.StreamEventsRequest{})
	if _, err := s.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("intake token: %v", err)
	}
}
