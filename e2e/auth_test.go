package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// tokenSpec is one token to make with `ordergrid token new`.
type tokenSpec struct {
	name, role, channels, expires string
}

// makeTokens makes each token with the CLI, writes the tokens file the CLI
// asked for, and returns the file and the tokens by name.
func makeTokens(t *testing.T, specs ...tokenSpec) (string, map[string]string) {
	t.Helper()
	tokens := map[string]string{}
	var file strings.Builder
	file.WriteString("tokens:\n")
	for _, s := range specs {
		args := []string{"token", "new", "--name", s.name, "--role", s.role}
		if s.channels != "" {
			args = append(args, "--channels", s.channels)
		}
		if s.expires != "" {
			args = append(args, "--expires", s.expires)
		}
		cmd := exec.Command(binary(t), args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("token new %s: %v\n%s", s.name, err, stderr.String())
		}
		tokens[s.name] = strings.TrimSpace(string(out))
		entry := stderr.String()[strings.Index(stderr.String(), "- name:"):]
		for _, l := range strings.Split(strings.TrimRight(entry, "\n"), "\n") {
			file.WriteString("  " + l + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}

func bearerHeader(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// Every API call is authenticated; each role does what it may and gets a
// 403 problem for the rest, naming the role it lacks; intake and partner
// tokens only touch their channels' orders; events record the token's name.
func TestAuthRolesAndChannels(t *testing.T) {
	file, tok := makeTokens(t,
		tokenSpec{name: "douyin-intake", role: "intake", channels: "douyin"},
		tokenSpec{name: "tmall-intake", role: "intake", channels: "tmall"},
		tokenSpec{name: "wms-sync", role: "ops"},
		tokenSpec{name: "douyin-partner", role: "partner", channels: "douyin"},
		tokenSpec{name: "dpo", role: "compliance"},
		tokenSpec{name: "short-lived", role: "ops", expires: "2s"},
	)
	n := newNode(t, "--auth-tokens-file", file)
	n.start()
	as := func(name string) []string { return bearerHeader(tok[name]) }
	problemOf := func(r response) problem {
		var p problem
		r.json(t, &p)
		return p
	}

	// No token, a forged one, an expired one: 401, nothing done.
	r := n.must("GET", "/v1/skus/AUTH-1", nil, 401, "Authorization", "")
	if r.headers.Get("WWW-Authenticate") == "" || !strings.HasSuffix(problemOf(r).Type, "/unauthenticated") ||
		problemOf(r).Errors[0].Field != "authorization" || r.headers.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no token: %v %s", r.headers, r.body)
	}
	n.must("PUT", "/v1/skus/AUTH-1/stock/WH-1", map[string]any{"on_hand": 5}, 401, bearerHeader("og_forged")...)
	time.Sleep(2100 * time.Millisecond)
	if p := problemOf(n.must("PUT", "/v1/skus/AUTH-1/stock/WH-1", map[string]any{"on_hand": 5}, 401, as("short-lived")...)); !strings.Contains(p.Detail, "expired") {
		t.Fatalf("expired token: %+v", p)
	}
	n.must("GET", "/v1/skus/AUTH-1", nil, 404) // still unknown: nothing was set

	// ops sets stock; intake may not.
	n.must("PUT", "/v1/skus/AUTH-1/stock/WH-1", map[string]any{"on_hand": 5}, 200, as("wms-sync")...)
	if p := problemOf(n.must("PUT", "/v1/skus/AUTH-1/stock/WH-1", map[string]any{"on_hand": 50}, 403, as("douyin-intake")...)); !strings.Contains(p.Detail, "needs role ops") {
		t.Fatalf("intake setting stock: %+v", p)
	}

	// intake creates orders of its channels only.
	var dy, tm order
	n.must("POST", "/v1/orders", orderBody("auth-dy-1", "AUTH-1", 1), 201, append(as("douyin-intake"), "Idempotency-Key", "auth-dy-1")...).json(t, &dy)
	tmBody := orderBody("auth-tm-1", "AUTH-1", 1)
	tmBody["channel"] = "tmall"
	p := problemOf(n.must("POST", "/v1/orders", tmBody, 403, append(as("douyin-intake"), "Idempotency-Key", "auth-tm-1")...))
	if len(p.Errors) != 1 || p.Errors[0].Field != "channel" {
		t.Fatalf("another channel's order: %+v", p)
	}
	if s := n.checkConserved("AUTH-1"); s.Total.Pending != 1 {
		t.Fatalf("the refused order took stock: %+v", s.Total)
	}
	n.must("POST", "/v1/orders", tmBody, 201, append(as("tmall-intake"), "Idempotency-Key", "auth-tm-1")...).json(t, &tm)
	n.must("POST", "/v1/orders", orderBody("auth-x", "AUTH-1", 1), 403, append(as("wms-sync"), "Idempotency-Key", "auth-x")...)

	// A batch: each order judged by its channel.
	var batch struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	b2 := orderBody("auth-tm-2", "AUTH-1", 1)
	b2["channel"], b2["idempotency_key"] = "tmall", "auth-tm-2"
	b1 := orderBody("auth-dy-2", "AUTH-1", 1)
	b1["idempotency_key"] = "auth-dy-2"
	n.must("POST", "/v1/orders:batch", map[string]any{"orders": []any{b1, b2}}, 200, as("douyin-intake")...).json(t, &batch)
	if len(batch.Results) != 2 || batch.Results[0].Status != 201 || batch.Results[1].Status != 403 {
		t.Fatalf("batch results %+v", batch.Results)
	}

	// Reading: ops, compliance, admin any order; a partner its channels' only.
	n.must("GET", "/v1/orders/"+dy.ID, nil, 403, as("douyin-intake")...)
	n.must("GET", "/v1/orders/"+dy.ID, nil, 200, as("wms-sync")...)
	n.must("GET", "/v1/orders/"+tm.ID, nil, 200, as("dpo")...)
	n.must("GET", "/v1/orders/"+dy.ID, nil, 200, as("douyin-partner")...)
	n.must("GET", "/v1/orders/"+tm.ID, nil, 403, as("douyin-partner")...)
	n.must("GET", "/v1/orders/"+tm.ID+"/events", nil, 403, as("douyin-partner")...)
	n.must("GET", "/v1/orders/"+tm.ID+"/proof", nil, 403, as("douyin-partner")...)
	n.eventually("GET", "/v1/orders/"+dy.ID+"/proof", nil, 200, as("douyin-partner")...)
	n.must("GET", "/v1/ledger/checkpoint", nil, 200, as("douyin-partner")...)

	// Fulfilment: ops; the events record who.
	n.must("POST", "/v1/orders/"+dy.ID+"/pay", map[string]any{}, 403, as("douyin-partner")...)
	n.must("POST", "/v1/orders/"+dy.ID+"/pay", map[string]any{}, 200, as("wms-sync")...)
	var evs struct {
		Events []struct{ Type, Principal string } `json:"events"`
	}
	n.must("GET", "/v1/orders/"+dy.ID+"/events", nil, 200, as("douyin-partner")...).json(t, &evs)
	if len(evs.Events) != 2 || evs.Events[0].Principal != "douyin-intake" || evs.Events[1].Principal != "wms-sync" {
		t.Fatalf("events %+v", evs.Events)
	}

	// The cluster API is the admin's.
	n.must("GET", "/v1/cluster", nil, 403, as("dpo")...)
	n.must("GET", "/v1/cluster", nil, 200) // the bootstrap admin token

	// gRPC: the same rules, as statuses.
	dial := func(token string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
		}
		conn, err := grpc.NewClient(n.grpc, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := func(err error) codes.Code { return status.Code(err) }
	if _, err := pb.NewOrderServiceClient(dial("")).GetOrder(ctx, &pb.GetOrderRequest{Id: dy.ID}); code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without a token: %v", err)
	}
	req := &pb.CreateOrderRequest{Channel: "douyin", ChannelOrderId: "auth-grpc-1", Currency: "CNY", IdempotencyKey: "auth-grpc-1",
		Customer: &pb.Customer{Id: "c-grpc", Name: "Li Si", Phone: "13900000000", Address: "2 Huaihai Rd"},
		Lines:    []*pb.OrderLineInput{{Sku: "AUTH-1", Qty: 1, UnitPrice: "1.00"}}}
	if _, err := pb.NewOrderServiceClient(dial(tok["tmall-intake"])).CreateOrder(ctx, req); code(err) != codes.PermissionDenied {
		t.Fatalf("gRPC create for another channel: %v", err)
	}
	if _, err := pb.NewOrderServiceClient(dial(tok["douyin-intake"])).CreateOrder(ctx, req); err != nil {
		t.Fatalf("gRPC create: %v", err)
	}
	stream, err := pb.NewOrderServiceClient(dial(tok["wms-sync"])).StreamCreateOrders(ctx)
	if err == nil {
		_, err = stream.Recv()
	}
	if code(err) != codes.PermissionDenied {
		t.Fatalf("gRPC stream by ops: %v", err)
	}
}
