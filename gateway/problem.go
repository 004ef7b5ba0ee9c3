package gateway

import (
	"fmt"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// ProblemTypeBase prefixes every problem type; the last path segment is the
// stable name clients match on ("insufficient-stock").
const ProblemTypeBase = "https://ordergrid.dev/problems/"

// Problem is an error that answers a request: an RFC 9457 problem detail.
type Problem struct {
	Status        int
	Name          string // "insufficient-stock"
	Title         string
	Detail        string
	Errors        []*pb.FieldViolation
	SKU           string
	CurrentStatus string
	RetryAfterSec int
}

func (p *Problem) Error() string { return fmt.Sprintf("%s: %s", p.Name, p.Detail) }

// Proto returns the problem as the API message.
func (p *Problem) Proto() *pb.Problem {
	return &pb.Problem{Type: ProblemTypeBase + p.Name, Title: p.Title, Status: int32(p.Status), Detail: p.Detail,
		Errors: p.Errors, Sku: p.SKU, CurrentStatus: p.CurrentStatus}
}

func invalid(violations ...*pb.FieldViolation) *Problem {
	d := "the request has invalid fields"
	if len(violations) == 1 {
		d = violations[0].Field + ": " + violations[0].Detail
	}
	return &Problem{Status: http.StatusUnprocessableEntity, Name: "validation-failed", Title: "Invalid request", Detail: d, Errors: violations}
}

func malformed(field, detail string) *Problem {
	p := &Problem{Status: http.StatusBadRequest, Name: "malformed-request", Title: "Malformed request", Detail: detail}
	if field != "" {
		p.Errors = []*pb.FieldViolation{{Field: field, Detail: detail}}
	}
	return p
}

func notFound(what, id string) *Problem {
	return &Problem{Status: http.StatusNotFound, Name: "not-found", Title: "Not found", Detail: fmt.Sprintf("no %s %q", what, id),
		Errors: []*pb.FieldViolation{{Field: what, Detail: "unknown"}}}
}

// overloaded is the answer of a node at its in-flight limit.
func overloaded() *Problem {
	return &Problem{Status: http.StatusTooManyRequests, Name: "overloaded", Title: "Too many requests",
		Detail: "the node is at its in-flight limit; retry after the given seconds", RetryAfterSec: 1}
}

func unavailable(detail string) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Name: "unavailable", Title: "Temporarily unavailable", Detail: detail, RetryAfterSec: 1}
}

// internalProblem answers a failure no retry can fix that is not the
// caller's: a broken invariant or a node without what it needs. 500, no
// Retry-After.
func internalProblem(detail string) *Problem {
	return &Problem{Status: http.StatusInternalServerError, Name: "internal", Title: "Internal error", Detail: detail}
}

var grpcCodes = map[int]codes.Code{
	http.StatusBadRequest:            codes.InvalidArgument,
	http.StatusUnprocessableEntity:   codes.InvalidArgument,
	http.StatusRequestEntityTooLarge: codes.InvalidArgument,
	http.StatusNotFound:              codes.NotFound,
	http.StatusUnauthorized:          codes.Unauthenticated,
	http.StatusForbidden:             codes.PermissionDenied,
	http.StatusGone:                  codes.NotFound,
	http.StatusConflict:              codes.FailedPrecondition,
	http.StatusTooManyRequests:       codes.ResourceExhausted,
	http.StatusServiceUnavailable:    codes.Unavailable,
	http.StatusInternalServerError:   codes.Internal,
}

// GRPCStatus makes the problem a gRPC status with ErrorInfo and BadRequest details.
func (p *Problem) GRPCStatus() *status.Status {
	code, ok := grpcCodes[p.Status]
	if !ok {
		code = codes.Internal
	}
	if p.Name == "idempotency-conflict" {
		code = codes.AlreadyExists
	}
	st := status.New(code, p.Detail)
	meta := map[string]string{"type": ProblemTypeBase + p.Name}
	if p.SKU != "" {
		meta["sku"] = p.SKU
	}
	if p.CurrentStatus != "" {
		meta["current_status"] = p.CurrentStatus
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: p.Name, Domain: "ordergrid.dev", Metadata: meta}}
	if len(p.Errors) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range p.Errors {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Detail})
		}
		details = append(details, br)
	}
	if p.RetryAfterSec > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(p.RetryAfterSec) * time.Second)})
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		return withDetails
	}
	return st
}
