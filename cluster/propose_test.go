package cluster

import (
	"context"
	"errors"
	"testing"
)

// A command over CommandBytesMax is refused before it reaches Raft: its
// entry could not be read back.
func TestProposeRefusesTooLargeCommand(t *testing.T) {
	p := &Partition{ID: 1}
	if _, err := p.Propose(context.Background(), make([]byte, CommandBytesMax+1)); !errors.Is(err, ErrCommandTooLarge) {
		t.Fatalf("Propose: %v, want ErrCommandTooLarge", err)
	}
	if _, err := p.proposeLocal(context.Background(), make([]byte, CommandBytesMax+1)); !errors.Is(err, ErrCommandTooLarge) {
		t.Fatalf("proposeLocal: %v, want ErrCommandTooLarge", err)
	}
}
