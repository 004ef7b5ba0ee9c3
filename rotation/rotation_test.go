package rotation

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/actors/memgrid"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/statemachine"
)

// A rewrap moves every subject key under the active master key, across
// every partition and page, leaves each data key as it was, and is a no-op
// the second time; without master keys it is an Internal failure.
func TestRewrapMovesEveryKeyToTheActiveMasterKey(t *testing.T) {
	grid, err := memgrid.New(2)
	if err != nil {
		t.Fatal(err)
	}
	defer grid.Close()
	line1, _ := privacy.NewMasterKeyLine("k1")
	line2, _ := privacy.NewMasterKeyLine("k2")
	old, err := privacy.ParseKeyring(line1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const subjects = 2*pageSize + 10 // more than a page on some partition
	for i := range subjects {
		s := fmt.Sprintf("cu_%d", i)
		w, err := old.NewDataKey(s)
		if err != nil {
			t.Fatal(err)
		}
		res, err := grid.PartitionOf(actors.SubjectKey(s)).Propose(ctx, "test", &gridpb.Command{Kind: &gridpb.Command_PutSubjectKeys{PutSubjectKeys: &gridpb.PutSubjectKeysCommand{
			Keys: []*gridpb.SubjectKeyRecord{{Subject: s, MasterKeyId: w.MasterKeyID, Nonce: w.Nonce, WrappedKey: w.Ciphertext}}}}})
		if err != nil || len(res.SubjectKeys) != 1 {
			t.Fatalf("put %s: %v %+v", s, err, res)
		}
	}
	rotated, err := privacy.ParseKeyring(line1 + "\n" + line2)
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	rep, err := NewRewrapper(grid, rotated).Rewrap(ctx, func(Report) { pages++ })
	if err != nil || rep != (Report{ActiveMasterKey: "k2", Examined: subjects, Rewrapped: subjects}) || pages <= len(grid.Partitions()) {
		t.Fatalf("rewrap: %+v after %d pages, %v", rep, pages, err)
	}
	for i := range subjects {
		s := fmt.Sprintf("cu_%d", i)
		p := grid.PartitionOf(actors.SubjectKey(s))
		rec, found, err := statemachine.ReadSubjectKey(p.Reader(), p.Prefix(), s)
		if err != nil || !found || rec.MasterKeyId != "k2" {
			t.Fatalf("%s: %+v %v %v", s, rec, found, err)
		}
		if _, err := rotated.Open(s, privacy.Wrapped{MasterKeyID: rec.MasterKeyId, Nonce: rec.Nonce, Ciphertext: rec.WrappedKey}); err != nil {
			t.Fatalf("%s does not open: %v", s, err)
		}
	}
	if again, err := NewRewrapper(grid, rotated).Rewrap(ctx, nil); err != nil || again.Rewrapped != 0 || again.Examined != subjects {
		t.Fatalf("second rewrap: %+v %v", again, err)
	}
	_, err = NewRewrapper(grid, nil).Rewrap(ctx, nil)
	if kind, _ := failure.Of(err); !errors.Is(err, ErrNoKeyring) || kind != failure.Internal {
		t.Fatalf("no keyring: %v (%d)", err, kind)
	}
}
