package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/grpc/codes"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Failed grain calls map to problems by whether a retry can fix them: only
// the transient ones are 503 with Retry-After; a request that can never
// succeed is 4xx, a broken invariant 500, neither with Retry-After.
func TestFailureProblems(t *testing.T) {
	grainErr := func(reason, msg string) error { return actorcluster.NewGrainErrorResponse(reason, msg) }
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   codes.Code
		field  string
	}{
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, codes.Unavailable, ""},
		{"no leader", fmt.Errorf("partition 3: %w", cluster.ErrNoLeader), http.StatusServiceUnavailable, codes.Unavailable, ""},
		{"not leader", fmt.Errorf("partition 3: %w", cluster.ErrNotLeader), http.StatusServiceUnavailable, codes.Unavailable, ""},
		{"unknown grain error", grainErr("UNKNOWN", "grain stopped"), http.StatusServiceUnavailable, codes.Unavailable, ""},
		{"plain error", errors.New("peer unreachable"), http.StatusServiceUnavailable, codes.Unavailable, ""},
		{"not found", grainErr(gridpb.Outcome_OUTCOME_NOT_FOUND.String(), "no order"), http.StatusNotFound, codes.NotFound, "order"},
		{"below reserved", grainErr(gridpb.Outcome_OUTCOME_BELOW_RESERVED.String(), "3 reserved"), http.StatusConflict, codes.FailedPrecondition, "on_hand"},
		{"too large, local", fmt.Errorf("batch: %w", cluster.ErrCommandTooLarge), http.StatusRequestEntityTooLarge, codes.InvalidArgument, ""},
		{"too large, across a grain call", grainErr("FAILURE_TOO_LARGE", "too large"), http.StatusRequestEntityTooLarge, codes.InvalidArgument, ""},
		{"invalid, across a grain call", &actorcluster.GrainErrorResponse{Reason: "FAILURE_INVALID", Message: "order total: overflow", Metadata: map[string]string{"field": "lines"}},
			http.StatusUnprocessableEntity, codes.InvalidArgument, "lines"},
		{"internal, across a grain call", grainErr("FAILURE_INTERNAL", "personal fields without a customer id"), http.StatusInternalServerError, codes.Internal, ""},
	} {
		p := failureProblem(c.err, "order", "o_1")
		if p.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, p.Status, p.Detail, c.status)
		}
		if retry := p.RetryAfterSec > 0; retry != (c.status == http.StatusServiceUnavailable) {
			t.Errorf("%s: %d with Retry-After %d", c.name, p.Status, p.RetryAfterSec)
		}
		if got := p.GRPCStatus().Code(); got != c.code {
			t.Errorf("%s: gRPC %s, want %s", c.name, got, c.code)
		}
		if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
			t.Errorf("%s: %+v does not name %s", c.name, p.Errors, c.field)
		}
	}
}
