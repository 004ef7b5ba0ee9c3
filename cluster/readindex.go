package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Reads are linearizable: a read on a partition sees every write that was
// acknowledged before it started, whichever node it arrives at. A leader
// that was deposed without knowing it (frozen, or cut off from the others)
// must not answer from its own state, which may miss what a newer leader
// has committed since. Before a read, the leader therefore takes a read
// index, the Raft paper's read-only protocol (section 6.4):
//
//  1. readIndex = the commit index, and at least the last index the leader
//     held when its term began: a new leader learns what the old one
//     committed only when it commits an entry of its own (Raft's no-op);
//  2. it confirms it still leads, with a round of heartbeats answered by a
//     quorum (raft.VerifyLeader); concurrent reads share one round, but a
//     read only joins a round that starts after it took its index;
//  3. it waits until its state machine has applied readIndex;
//  4. it reads its local state.
//
// No clock is trusted: a read costs one heartbeat round (shared) and no log
// entry. A follower forwards reads to the leader, which does the same.

// ErrReadIndex is returned when a read index could not be taken: this
// replica is no longer the leader, or could not reach a quorum in time.
var ErrReadIndex = errors.New("partition: read index")

// appliedProgress publishes a state machine's applied index to readers
// waiting for it.
type appliedProgress struct {
	index atomic.Uint64
	mu    sync.Mutex
	// moved, made by the first waiter, is closed when index advances.
	moved chan struct{}
}

func (a *appliedProgress) init(index uint64) { a.index.Store(index) }

func (a *appliedProgress) advance(index uint64) {
	a.index.Store(index)
	a.mu.Lock()
	if a.moved != nil { // nil: nobody waits
		close(a.moved)
		a.moved = nil
	}
	a.mu.Unlock()
}

// wait returns once index is applied, or with ctx's error.
func (a *appliedProgress) wait(ctx context.Context, index uint64) error {
	for {
		if a.index.Load() >= index {
			return nil
		}
		a.mu.Lock()
		if a.moved == nil {
			a.moved = make(chan struct{})
		}
		moved := a.moved
		a.mu.Unlock()
		if a.index.Load() >= index { // advanced before the channel was made
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leaderCheck coalesces leadership confirmations: callers that ask while
// no round is running start one; callers that ask while one runs wait for
// the next, so every caller's round starts after it asked.
type leaderCheck struct {
	mu      sync.Mutex
	running bool
	waiting []chan error
}

func (c *leaderCheck) confirm(ctx context.Context, r *raft.Raft) error {
	done := make(chan error, 1)
	c.mu.Lock()
	c.waiting = append(c.waiting, done)
	if !c.running {
		c.running = true
		go c.rounds(r)
	}
	c.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *leaderCheck) rounds(r *raft.Raft) {
	for {
		c.mu.Lock()
		batch := c.waiting
		c.waiting = nil
		if len(batch) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		err := r.VerifyLeader().Error()
		for _, done := range batch {
			done <- err
		}
	}
}

// termFloor is the last log index a leader held when its term began.
type termFloor struct {
	mu    sync.Mutex
	term  uint64
	index uint64
}

// readIndex runs steps 1-3 above on this replica, which must lead the
// partition; on return its local state is fresh enough to read.
func (p *Partition) readIndex(ctx context.Context) error {
	term := p.raft.CurrentTerm()
	p.floor.mu.Lock()
	if p.floor.term != term {
		if !p.IsLeader() {
			p.floor.mu.Unlock()
			return fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader)
		}
		p.floor.term, p.floor.index = term, p.raft.LastIndex()
	}
	index := max(p.raft.CommitIndex(), p.floor.index)
	p.floor.mu.Unlock()
	if err := p.leader.confirm(ctx, p.raft); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("partition %d: %w: %w", p.ID, ErrReadIndex, ctx.Err())
		}
		return fmt.Errorf("partition %d: %w: %w", p.ID, ErrReadIndex, err)
	}
	if p.raft.CurrentTerm() != term {
		return fmt.Errorf("partition %d: %w: the term changed", p.ID, ErrNotLeader)
	}
	if err := p.waitApplied(ctx, index); err != nil {
		return fmt.Errorf("partition %d: %w: waiting for index %d: %w", p.ID, ErrReadIndex, index, err)
	}
	return nil
}

// appliedPollInterval is how often waitApplied looks again at Raft's own
// applied index, which moves past no-op entries without telling anyone.
const appliedPollInterval = time.Millisecond

// waitApplied returns once the state machine has applied every entry up to
// index that it will ever see. Raft hands it commands and configurations,
// not the no-op a leader appends when its term begins nor barriers: when
// index is such an entry (a new leader that has taken no command yet, or a
// barrier), the state machine's progress stops before it, and waiting for
// index itself would never end.
func (p *Partition) waitApplied(ctx context.Context, index uint64) error {
	progress := &p.fsm.progress
	for {
		if progress.index.Load() >= index {
			return nil
		}
		if p.raft.AppliedIndex() >= index && progress.index.Load() >= p.lastFSMEntry(index, progress.index.Load()) {
			return nil
		}
		waitCtx, cancel := context.WithTimeout(ctx, appliedPollInterval)
		err := progress.wait(waitCtx, index)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// lastFSMEntry returns the last index at or below index that Raft hands to
// the state machine (a command or a configuration), looking no lower than floor
// (what the state machine has applied already). An entry no longer in the
// log is covered by a snapshot of applied state.
func (p *Partition) lastFSMEntry(index, floor uint64) uint64 {
	store := NewRaftStore(p.host.db, p.ID)
	var l raft.Log
	for i := index; i > floor; i-- {
		if err := store.GetLog(i, &l); err != nil {
			return floor
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return floor
}
