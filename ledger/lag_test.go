package ledger_test

import (
	"testing"
	"time"
)

// Lag is zero once the log holds every event under a checkpoint; with the
// sequencer stopped, new events wait in the outboxes and their age is the
// lag.
func TestLag(t *testing.T) {
	n := start(t, t.TempDir(), freeAddr(t))
	defer n.host.Close()
	events := load(t, n.host, 0, 2)
	waitCheckpoint(t, n.seq.Log(), uint64(events))
	lag, err := n.seq.Lag(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if lag.Events != 0 || lag.Checkpoint != 0 || lag.Size != uint64(events) || lag.CheckpointSize != uint64(events) {
		t.Fatalf("caught up: %+v, want size %d and no lag", lag, events)
	}
	n.cancel()
	<-n.done
	load(t, n.host, 2, 1)
	lag, err = n.seq.Lag(time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if lag.Events < time.Minute || lag.Events > time.Minute+10*time.Second || lag.Size != uint64(events) {
		t.Fatalf("behind: %+v, want events a minute old, size %d", lag, events)
	}
}
