package failure

import (
	"errors"
	"fmt"
	"testing"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// A failure's mark survives wrapping and the actor library's conversion to
// a grain error (what a grain call sends back), and stays the error it wraps.
func TestFailureCrossesGrainCalls(t *testing.T) {
	base := errors.New("order total: overflow")
	for _, c := range []struct {
		name  string
		err   error
		want  Kind
		field string
	}{
		{"invalid", MarkInvalid("lines", base), Invalid, "lines"},
		{"internal", MarkInternal(base), Internal, ""},
		{"too large", MarkTooLarge(fmt.Errorf("p1: %w", cluster.ErrCommandTooLarge)), TooLarge, ""},
		{"unmarked", base, Transient, ""},
	} {
		for _, err := range []error{c.err, fmt.Errorf("wrapped: %w", c.err), actorcluster.FromError(c.err)} {
			if f, field := Of(err); f != c.want || field != c.field {
				t.Errorf("%s: %v is %d %q, want %d %q", c.name, err, f, field, c.want, c.field)
			}
		}
		if c.want != TooLarge && !errors.Is(c.err, base) {
			t.Errorf("%s: no longer the error it marks", c.name)
		}
	}
}

// An outcome crosses a grain call with its detail; anything else has none.
func TestOutcomeCrossesGrainCalls(t *testing.T) {
	err := FromOutcome(gridpb.Outcome_OUTCOME_BELOW_RESERVED, "3 reserved")
	for _, e := range []error{err, fmt.Errorf("wrapped: %w", err), actorcluster.FromError(err)} {
		if got := OutcomeOf(e); got != gridpb.Outcome_OUTCOME_BELOW_RESERVED {
			t.Errorf("%v: outcome %s", e, got)
		}
		if got := Detail(e); got != "3 reserved" {
			t.Errorf("%v: detail %q", e, got)
		}
	}
	if got := OutcomeOf(MarkInternal(errors.New("x"))); got != gridpb.Outcome_OUTCOME_UNSPECIFIED {
		t.Errorf("a marked failure carries outcome %s", got)
	}
}
