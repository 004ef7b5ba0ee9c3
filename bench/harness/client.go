package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Class sorts an answer for the report: admission rejects (429) apart from
// business rejects (out of stock) apart from errors.
type Class int

const (
	Created        Class = iota // 201
	Replayed                    // 200: a retry answered with the first result
	OutOfStock                  // 409 insufficient-stock: the business said no
	Admission                   // 429: the node shed load, with Retry-After
	Conflict                    // other 4xx: a bug in the harness or the node
	Unavailable                 // 503: could not complete, retry
	ServerError                 // other 5xx
	TransportError              // no answer
	classes
)

var classNames = [...]string{"created", "replayed", "out_of_stock", "admission_429", "conflict_4xx", "unavailable_503", "server_error_5xx", "transport_error"}

func (c Class) String() string { return classNames[c] }

// Outcome is the answer to one order.
type Outcome struct {
	Class Class
	ID    string
	// RetryAfter is the Retry-After of an admission reject.
	RetryAfter string
	Detail     string
}

// Transport sends orders to a node.
type Transport interface {
	Create(ctx context.Context, req *pb.CreateOrderRequest) Outcome
	CreateBatch(ctx context.Context, reqs []*pb.CreateOrderRequest) []Outcome
	Close() error
}

// httpTransport is the JSON API.
type httpTransport struct {
	client *http.Client
	url    string
}

func newHTTP(url string, conns int, token string) *httpTransport {
	return &httpTransport{url: strings.TrimRight(url, "/"), client: &http.Client{Timeout: 30 * time.Second,
		Transport: &bearerTransport{token: token,
			base: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}}}}
}

func (h *httpTransport) Close() error { h.client.CloseIdleConnections(); return nil }

func (h *httpTransport) Create(ctx context.Context, req *pb.CreateOrderRequest) Outcome {
	// encoding/json writes the generated structs with their proto field
	// names and int64 as numbers, as the API takes them.
	body, _ := json.Marshal(req)
	code, hdr, raw, err := h.do(ctx, "POST", "/v1/orders", body, "Idempotency-Key", req.IdempotencyKey)
	if err != nil {
		return Outcome{Class: TransportError, Detail: err.Error()}
	}
	return classifyHTTP(code, hdr, raw)
}

func (h *httpTransport) CreateBatch(ctx context.Context, reqs []*pb.CreateOrderRequest) []Outcome {
	body, _ := json.Marshal(&pb.BatchCreateOrdersRequest{Orders: reqs})
	code, hdr, raw, err := h.do(ctx, "POST", "/v1/orders:batch", body)
	out := make([]Outcome, len(reqs))
	if err != nil || code != http.StatusOK {
		o := Outcome{Class: TransportError}
		if err == nil {
			o = classifyHTTP(code, hdr, raw)
		} else {
			o.Detail = err.Error()
		}
		for i := range out {
			out[i] = o
		}
		return out
	}
	var resp struct {
		Results []struct {
			Status  int                    `json:"status"`
			Order   *struct{ ID string }   `json:"order"`
			Problem *struct{ Type string } `json:"problem"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil || len(resp.Results) != len(reqs) {
		for i := range out {
			out[i] = Outcome{Class: ServerError, Detail: "batch answer unreadable"}
		}
		return out
	}
	for i, r := range resp.Results {
		typ := ""
		if r.Problem != nil {
			typ = r.Problem.Type
		}
		out[i] = classify(r.Status, typ)
		if r.Order != nil {
			out[i].ID = r.Order.ID
		}
	}
	return out
}

func (h *httpTransport) do(ctx context.Context, method, path string, body []byte, headers ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, resp.Header, raw, err
}

// getJSON reads path into v; it fails on any status but 200.
func (h *httpTransport) getJSON(ctx context.Context, path string, v any) error {
	code, _, raw, err := h.do(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, code, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, v)
}

func classifyHTTP(code int, hdr http.Header, raw []byte) Outcome {
	var p struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	_ = json.Unmarshal(raw, &p)
	o := classify(code, p.Type)
	o.ID = p.ID
	if o.Class == Admission {
		o.RetryAfter = hdr.Get("Retry-After")
	}
	if o.Class >= Conflict {
		o.Detail = fmt.Sprintf("%d %s", code, bytes.TrimSpace(raw))
	}
	return o
}

func classify(code int, problemType string) Outcome {
	switch {
	case code == http.StatusCreated:
		return Outcome{Class: Created}
	case code == http.StatusOK:
		return Outcome{Class: Replayed}
	case code == http.StatusConflict && strings.HasSuffix(problemType, "/insufficient-stock"):
		return Outcome{Class: OutOfStock}
	case code == http.StatusTooManyRequests:
		return Outcome{Class: Admission}
	case code == http.StatusServiceUnavailable:
		return Outcome{Class: Unavailable}
	case code >= 500:
		return Outcome{Class: ServerError}
	default:
		return Outcome{Class: Conflict, Detail: fmt.Sprint(code, " ", problemType)}
	}
}

// grpcTransport is the gRPC API.
type grpcTransport struct {
	conn   *grpc.ClientConn
	client pb.OrderServiceClient
}

func newGRPC(addr, token string) (*grpcTransport, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearerCreds(token)))
	if err != nil {
		return nil, err
	}
	return &grpcTransport{conn: conn, client: pb.NewOrderServiceClient(conn)}, nil
}

func (g *grpcTransport) Close() error { return g.conn.Close() }

func (g *grpcTransport) Create(ctx context.Context, req *pb.CreateOrderRequest) Outcome {
	resp, err := g.client.CreateOrder(ctx, req)
	if err != nil {
		return classifyGRPC(err)
	}
	if resp.Replayed {
		return Outcome{Class: Replayed, ID: resp.Order.GetId()}
	}
	return Outcome{Class: Created, ID: resp.Order.GetId()}
}

func (g *grpcTransport) CreateBatch(ctx context.Context, reqs []*pb.CreateOrderRequest) []Outcome {
	out := make([]Outcome, len(reqs))
	resp, err := g.client.BatchCreateOrders(ctx, &pb.BatchCreateOrdersRequest{Orders: reqs})
	if err != nil || len(resp.Results) != len(reqs) {
		o := classifyGRPC(err)
		if err == nil {
			o = Outcome{Class: ServerError, Detail: "batch answer has the wrong length"}
		}
		for i := range out {
			out[i] = o
		}
		return out
	}
	for i, r := range resp.Results {
		out[i] = classify(int(r.Status), r.Problem.GetType())
		out[i].ID = r.Order.GetId()
	}
	return out
}

func classifyGRPC(err error) Outcome {
	st, ok := status.FromError(err)
	if !ok {
		return Outcome{Class: TransportError, Detail: err.Error()}
	}
	reason := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.Reason
		}
	}
	switch {
	case st.Code() == codes.FailedPrecondition && reason == "insufficient-stock":
		return Outcome{Class: OutOfStock}
	case st.Code() == codes.ResourceExhausted:
		return Outcome{Class: Admission}
	case st.Code() == codes.Unavailable && reason == "unavailable":
		return Outcome{Class: Unavailable}
	case st.Code() == codes.Unavailable, errors.Is(err, context.DeadlineExceeded), st.Code() == codes.DeadlineExceeded:
		return Outcome{Class: TransportError, Detail: st.Message()}
	case st.Code() == codes.Internal || st.Code() == codes.Unknown:
		return Outcome{Class: ServerError, Detail: st.Message()}
	default:
		return Outcome{Class: Conflict, Detail: st.Code().String() + " " + reason + ": " + st.Message()}
	}
}
