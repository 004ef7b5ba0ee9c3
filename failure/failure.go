// Package failure is the vocabulary of a call into the order grid that did
// not succeed, shared by the grid, which marks its errors (package actors),
// and the transports, which answer them (package gateway maps them to HTTP
// and gRPC, the same for both).
//
// An error says one of two things. Either the state machine judged the
// command and answered an outcome other than OK (OutcomeOf: not found,
// below reserved, erased, ...), or the call failed, and Of says whether a
// retry can succeed (Transient) and if not whose fault it is (Invalid,
// TooLarge, Internal). Both cross a grain call: a mark becomes a
// Proto.Actor grain error whose reason names it, and the caller on the
// other node reads it back from there.
package failure

import (
	"context"
	"errors"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Kind says whether a failed call can succeed when retried, and if not,
// whose fault it is: a transport answers 503 with Retry-After only for
// Transient, 422, 413 or 500 for the others.
type Kind int

// The kinds of failure.
const (
	// Transient: a timeout, no leader, a peer unreachable, a grain
	// stopping: the same request may succeed later. Every failure not
	// marked otherwise is transient.
	Transient Kind = iota
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

// marked is err with its failure's mark. It stays err for errors.Is, and
// becomes a grain error with the failure's reason where errors.As asks for
// one, so the mark crosses a grain call (the actor library sends a grain
// error as it finds it with errors.As).
type marked struct {
	reason string
	field  string
	err    error
}

func (e *marked) Error() string { return e.err.Error() }
func (e *marked) Unwrap() error { return e.err }

// As makes the failure a grain error.
func (e *marked) As(target any) bool {
	t, ok := target.(**actorcluster.GrainErrorResponse)
	if ok {
		*t = actorcluster.NewGrainErrorResponse(e.reason, e.err.Error())
		if e.field != "" {
			(*t).Metadata = map[string]string{fieldMeta: e.field}
		}
	}
	return ok
}

// MarkInvalid marks err as Invalid, field being the request field at fault.
func MarkInvalid(field string, err error) error {
	return &marked{reason: reasonInvalid, field: field, err: err}
}

// MarkInternal marks err as Internal.
func MarkInternal(err error) error { return &marked{reason: reasonInternal, err: err} }

// MarkTooLarge marks err (a cluster.ErrCommandTooLarge) as TooLarge, so the
// mark survives a grain call, which keeps only a grain error's reason.
func MarkTooLarge(err error) error { return &marked{reason: reasonTooLarge, err: err} }

// Of classifies err (nil is Transient, as is anything unmarked) and
// returns the request field at fault of an Invalid one.
func Of(err error) (Kind, string) {
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

// FromOutcome is a state machine's answer other than OK as an error that
// crosses a grain call: a grain error whose reason is the outcome's name.
func FromOutcome(o gridpb.Outcome, detail string) error {
	return actorcluster.NewGrainErrorResponse(o.String(), detail)
}

// OutcomeOf returns the outcome an error carries (FromOutcome), or
// OUTCOME_UNSPECIFIED.
func OutcomeOf(err error) gridpb.Outcome {
	var ge *actorcluster.GrainErrorResponse
	if errors.As(err, &ge) {
		if v, ok := gridpb.Outcome_value[ge.Reason]; ok {
			return gridpb.Outcome(v)
		}
	}
	return gridpb.Outcome_OUTCOME_UNSPECIFIED
}

// Detail is an error's message without the actor library's wrapping: the
// detail of an outcome, the message of a marked failure.
func Detail(err error) string {
	if ge := actorcluster.FromError(err); ge != nil && ge.Message != "" {
		return ge.Message
	}
	return err.Error()
}
