package actors

import (
	"errors"
	"fmt"
	"testing"

	actorcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/ordergrid/ordergrid/cluster"
)

// A failure's mark survives wrapping and the actor library's conversion to
// a grain error (what a grain call sends back), and stays the error it wraps.
func TestFailureCrossesGrainCalls(t *testing.T) {
	base := errors.New("order total: overflow")
	for _, c := range []struct {
		name  string
		err   error
		want  Failure
		field string
	}{
		{"invalid", invalidErr("lines", base), Invalid, "lines"},
		{"internal", internalErr(base), Internal, ""},
		{"too large", &failureErr{reason: reasonTooLarge, err: fmt.Errorf("p1: %w", cluster.ErrCommandTooLarge)}, TooLarge, ""},
		{"unmarked", base, Transient, ""},
	} {
		for _, err := range []error{c.err, fmt.Errorf("wrapped: %w", c.err), actorcluster.FromError(c.err)} {
			if f, field := FailureOf(err); f != c.want || field != c.field {
				t.Errorf("%s: %v is %d %q, want %d %q", c.name, err, f, field, c.want, c.field)
			}
		}
		if c.want != TooLarge && !errors.Is(c.err, base) {
			t.Errorf("%s: no longer the error it marks", c.name)
		}
	}
}
