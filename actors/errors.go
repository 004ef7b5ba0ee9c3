package actors

import (
	"context"
	"errors"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/ordergrid/ordergrid/cluster"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// outcomeErr carries a state machine outcome across a grain call as a grain
// error whose reason is the outcome's name.
func outcomeErr(o pb.Outcome, detail string) error {
	return actorcluster.NewGrainErrorResponse(o.String(), detail)
}

// OutcomeOf returns the outcome a grain error carries, or OUTCOME_UNSPECIFIED.
func OutcomeOf(err error) pb.Outcome {
	var ge *actorcluster.GrainErrorResponse
	if errors.As(err, &ge) {
		if v, ok := pb.Outcome_value[ge.Reason]; ok {
			return pb.Outcome(v)
		}
	}
	return pb.Outcome_OUTCOME_UNSPECIFIED
}

// Failure says whether a failed call can succeed when retried, and if not,
// whose fault it is: the gateway answers 503 with Retry-After only for
// Transient, 422, 413 or 500 for the others.
type Failure int

// The failures.
const (
	// Transient: a timeout, no leader, a peer unreachable, a grain
	// stopping: the same request may succeed later. Every failure not
	// marked otherwise is transient.
	Transient Failure = iota
	// Invalid: the request can never succeed as sent (an order whose total
	// cannot be computed).
	Invalid
	// TooLarge: the request is too large for one Raft entry.
	TooLarge
	// Internal: an invariant of ordergrid broke, or the node lacks what it
	// needs (master keys): no retry helps, an operator must look.
	Internal
)

// The grain error reasons of the failures that are not transient (the
// outcomes use their names as reasons; these never collide with them).
const (
	reasonInvalid  = "FAILURE_INVALID"
	reasonTooLarge = "FAILURE_TOO_LARGE"
	reasonInternal = "FAILURE_INTERNAL"
	// fieldMeta names the request field at fault in an Invalid grain error.
	fieldMeta = "field"
)

// failureErr marks err with its failure. It stays err for errors.Is, and
// becomes a grain error with the failure's reason where errors.As asks for
// one, so the mark crosses a grain call (the actor library sends a grain
// error as it finds it with errors.As).
type failureErr struct {
	reason string
	field  string
	err    error
}

func (e *failureErr) Error() string { return e.err.Error() }
func (e *failureErr) Unwrap() error { return e.err }

// As makes the failure a grain error.
func (e *failureErr) As(target any) bool {
	t, ok := target.(**actorcluster.GrainErrorResponse)
	if ok {
		*t = actorcluster.NewGrainErrorResponse(e.reason, e.err.Error())
		if e.field != "" {
			(*t).Metadata = map[string]string{fieldMeta: e.field}
		}
	}
	return ok
}

// invalidErr marks err as Invalid, field being the request field at fault.
func invalidErr(field string, err error) error {
	return &failureErr{reason: reasonInvalid, field: field, err: err}
}

// internalErr marks err as Internal.
func internalErr(err error) error { return &failureErr{reason: reasonInternal, err: err} }

// FailureOf classifies err (nil is Transient, as is anything unmarked) and
// returns the request field at fault of an Invalid one.
func FailureOf(err error) (Failure, string) {
	if errors.Is(err, cluster.ErrCommandTooLarge) {
		return TooLarge, ""
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Transient, ""
	}
	var ge *actorcluster.GrainErrorResponse
	if !errors.As(err, &ge) {
		return Transient, ""
	}
	switch ge.Reason {
	case reasonInvalid:
		return Invalid, ge.Metadata[fieldMeta]
	case reasonTooLarge:
		return TooLarge, ""
	case reasonInternal:
		return Internal, ""
	}
	return Transient, ""
}
