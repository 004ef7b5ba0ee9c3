package actors

import (
	"errors"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

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
