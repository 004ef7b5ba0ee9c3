package actors

import (
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// The marks the grains put on their errors (package failure): each crosses
// a grain call, and the gateway answers it.

// outcomeErr carries a state machine outcome across a grain call.
func outcomeErr(o gridpb.Outcome, detail string) error { return failure.FromOutcome(o, detail) }

// invalidErr marks err as Invalid, field being the request field at fault.
func invalidErr(field string, err error) error { return failure.MarkInvalid(field, err) }

// internalErr marks err as Internal.
func internalErr(err error) error { return failure.MarkInternal(err) }
