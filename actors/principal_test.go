package actors

import (
	"testing"

	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// A batch's command principal is its callers' one principal, or none when
// they differ: never the first caller's for the others.
func TestBatchPrincipal(t *testing.T) {
	items := func(ps ...string) []*gridpb.ReserveItem {
		out := make([]*gridpb.ReserveItem, len(ps))
		for i, p := range ps {
			out[i] = &gridpb.ReserveItem{OrderId: "o", Principal: p}
		}
		return out
	}
	for _, c := range []struct {
		ps   []string
		want string
	}{
		{nil, ""},
		{[]string{"alice"}, "alice"},
		{[]string{"alice", "alice", "alice"}, "alice"},
		{[]string{"alice", "bob"}, ""},
		{[]string{"alice", "alice", "bob"}, ""},
		{[]string{"alice", ""}, ""},
	} {
		if got := batchPrincipal(items(c.ps...), (*gridpb.ReserveItem).GetPrincipal); got != c.want {
			t.Errorf("batchPrincipal(%q) = %q, want %q", c.ps, got, c.want)
		}
	}
}
