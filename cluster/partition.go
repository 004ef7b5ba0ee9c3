package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ErrNotLeader is returned when a command is proposed on a replica that does
// not lead its partition. The caller retries on the leader.
var ErrNotLeader = errors.New("partition: not the leader")

// proposeTimeoutDefault bounds how long a proposal may wait to enter Raft's
// queue when the context has no deadline.
const proposeTimeoutDefault = 10 * time.Second

// Partition is one Raft group and its state machine.
type Partition struct {
	ID      uint32
	Prefix  []byte
	raft    *raft.Raft
	fsm     *fsm
	metrics *Metrics
}

// Propose replicates command and returns what the state machine's Apply
// returned for it. It returns once the command is committed on a quorum and
// applied locally. ctx bounds the wait for a place in Raft's queue; a command
// already queued is awaited to its outcome, so a caller never sees a timeout
// for a command that then commits.
func (p *Partition) Propose(ctx context.Context, command []byte) (any, error) {
	timeout := proposeTimeoutDefault
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, ctx.Err()
		}
	}
	start := time.Now()
	f := p.raft.Apply(command, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader)
		}
		return nil, fmt.Errorf("partition %d: propose: %w", p.ID, err)
	}
	if p.metrics != nil {
		p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	}
	return f.Response(), nil
}

// IsLeader reports whether this replica leads the partition.
func (p *Partition) IsLeader() bool { return p.raft.State() == raft.Leader }

// HasLeader reports whether the partition knows a leader.
func (p *Partition) HasLeader() bool {
	addr, _ := p.raft.LeaderWithID()
	return addr != ""
}

// Barrier waits until every entry committed before the call is applied.
func (p *Partition) Barrier(ctx context.Context) error {
	timeout := proposeTimeoutDefault
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := p.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("partition %d: barrier: %w", p.ID, err)
	}
	return nil
}

// Status is what an operator sees of a partition.
type Status struct {
	ID           uint32 `json:"id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastLogIndex uint64 `json:"last_log_index"`
}

// Status returns the partition's Raft status.
func (p *Partition) Status() Status {
	addr, _ := p.raft.LeaderWithID()
	last := p.raft.LastIndex()
	return Status{
		ID:           p.ID,
		State:        p.raft.State().String(),
		Leader:       string(addr),
		CommitIndex:  p.raft.CommitIndex(),
		AppliedIndex: p.raft.AppliedIndex(),
		LastLogIndex: last,
	}
}

// Snapshot takes a snapshot now and compacts the log behind it.
func (p *Partition) Snapshot() error {
	if err := p.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("partition %d: snapshot: %w", p.ID, err)
	}
	return nil
}
