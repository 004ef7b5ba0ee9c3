package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
)

// ErrNotLeader is returned when a command reaches a replica that does not
// lead its partition and cannot be forwarded to one that does.
var ErrNotLeader = errors.New("partition: not the leader")

// ErrNoLeader is returned when a partition has no leader within the caller's
// deadline (an election is under way, or a quorum is lost).
var ErrNoLeader = errors.New("partition: no leader")

// CommandBytesMax is the largest command Propose takes: its log entry
// (the command and a 25-byte header) must stay within what the log store
// reads back (logEntryBytesMax), or the partition could not restart.
const CommandBytesMax = logEntryBytesMax - 64

// ErrCommandTooLarge is returned by Propose for a command over
// CommandBytesMax: no retry can commit it; it must be split.
var ErrCommandTooLarge = errors.New("partition: command too large for one Raft entry")

const (
	// proposeTimeoutDefault bounds how long a proposal may wait to enter
	// Raft's queue when the context has no deadline.
	proposeTimeoutDefault = 10 * time.Second
	// forwardAttemptsMax bounds how often one call follows a moving leader.
	forwardAttemptsMax = 5
	// scanPairsMax caps the pairs of one forwarded scan page.
	scanPairsMax = 1000
)

// Partition is one Raft group and its state machine. Propose, Get and Scan
// work on any replica: a follower forwards them to the leader.
type Partition struct {
	ID     uint32
	Prefix []byte
	// Name is the group's name for a group of Options.Groups; empty for a
	// partition.
	Name    string
	host    *Host
	raft    *raft.Raft
	fsm     *fsm
	metrics *Metrics
	purgeMu sync.Mutex
	// leader and floor serve read indexes (readindex.go).
	leader leaderCheck
	floor  termFloor
}

// Propose replicates command and returns what the state machine's Apply
// returned for it, once the command is committed on a quorum and applied on
// the leader. ctx bounds the wait for a leader and for a place in Raft's
// queue; a command already queued is awaited to its outcome.
func (p *Partition) Propose(ctx context.Context, command []byte) ([]byte, error) {
	if len(command) > CommandBytesMax {
		return nil, fmt.Errorf("partition %d: %d bytes, at most %d: %w", p.ID, len(command), CommandBytesMax, ErrCommandTooLarge)
	}
	start := time.Now()
	var lastErr error
	for attempt := 0; attempt < forwardAttemptsMax; attempt++ {
		if p.IsLeader() {
			res, err := p.proposeLocal(ctx, command)
			if err == nil {
				p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
				return res, nil
			}
			if !errors.Is(err, ErrNotLeader) {
				return nil, err
			}
			lastErr = err
			continue
		}
		client, err := p.leaderClient(ctx)
		if errors.Is(err, ErrNotLeader) {
			continue // we became the leader meanwhile
		}
		if err != nil {
			return nil, err
		}
		resp, err := client.Propose(ctx, &clusterpb.ProposeRequest{Partition: p.ID, Command: command})
		if err == nil {
			p.metrics.forwarded.Inc()
			p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
			return resp.Result, nil
		}
		lastErr = fromStatus(err)
		if !errors.Is(lastErr, ErrNotLeader) && !errors.Is(lastErr, errUnreachable) {
			return nil, lastErr
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, fmt.Errorf("partition %d: %w (%v)", p.ID, ctx.Err(), lastErr)
		}
	}
	return nil, fmt.Errorf("partition %d: leader kept moving: %w", p.ID, lastErr)
}

func (p *Partition) proposeLocal(ctx context.Context, command []byte) ([]byte, error) {
	if len(command) > CommandBytesMax { // a forwarded command is checked again on the leader
		return nil, fmt.Errorf("partition %d: %d bytes, at most %d: %w", p.ID, len(command), CommandBytesMax, ErrCommandTooLarge)
	}
	timeout := proposeTimeoutDefault
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, ctx.Err()
		}
	}
	f := p.raft.Apply(command, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return nil, fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader)
		}
		return nil, fmt.Errorf("partition %d: propose: %w", p.ID, err)
	}
	res, _ := f.Response().([]byte)
	return res, nil
}

// leaderClient waits (within ctx) for a known leader and returns its client.
func (p *Partition) leaderClient(ctx context.Context) (clusterpb.PartitionServiceClient, error) {
	for {
		addr, id := p.raft.LeaderWithID()
		if addr != "" && id != raft.ServerID(p.host.opts.NodeID) {
			return p.host.peerClient(string(addr))
		}
		if addr != "" && p.IsLeader() {
			return nil, fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader) // we lead after all: caller retries locally
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, fmt.Errorf("partition %d: %w: %v", p.ID, ErrNoLeader, ctx.Err())
		}
	}
}

// Get reads key from the partition's state on its leader, linearizably
// (see readindex.go).
func (p *Partition) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	for attempt := 0; ; attempt++ {
		if p.IsLeader() {
			err := p.readIndex(ctx)
			if err == nil {
				return LocalReader{p.host.db}.Get(key)
			}
			if !errors.Is(err, ErrNotLeader) || attempt >= forwardAttemptsMax {
				return nil, false, err
			}
			if !sleepCtx(ctx, 20*time.Millisecond) { // deposed: ask the new leader
				return nil, false, ctx.Err()
			}
			continue
		}
		client, err := p.leaderClient(ctx)
		if errors.Is(err, ErrNotLeader) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		resp, err := client.Read(ctx, &clusterpb.ReadRequest{Partition: p.ID, Key: key})
		if err == nil {
			return resp.Value, resp.Found, nil
		}
		err = fromStatus(err)
		if attempt >= forwardAttemptsMax || (!errors.Is(err, ErrNotLeader) && !errors.Is(err, errUnreachable)) {
			return nil, false, err
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, false, ctx.Err()
		}
	}
}

// Scan calls fn for the partition's pairs in [lo, hi), at most limit of
// them (0: all), read on its leader, linearizably (see readindex.go). A
// scan over several pages reads each page at its own read index.
func (p *Partition) Scan(ctx context.Context, lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	n := 0
	for attempt := 0; ; attempt++ {
		if p.IsLeader() {
			err := p.readIndex(ctx)
			if err == nil {
				return LocalReader{p.host.db}.Scan(lo, hi, limit-n, fn)
			}
			if !errors.Is(err, ErrNotLeader) || attempt >= forwardAttemptsMax {
				return err
			}
			if !sleepCtx(ctx, 20*time.Millisecond) { // deposed: ask the new leader
				return ctx.Err()
			}
			continue
		}
		client, err := p.leaderClient(ctx)
		if errors.Is(err, ErrNotLeader) {
			continue
		}
		if err != nil {
			return err
		}
		page := uint32(scanPairsMax)
		if limit > 0 && limit-n < scanPairsMax {
			page = uint32(limit - n)
		}
		resp, err := client.Read(ctx, &clusterpb.ReadRequest{Partition: p.ID, Scan: true, Lo: lo, Hi: hi, Limit: page})
		if err != nil {
			err = fromStatus(err)
			if attempt >= forwardAttemptsMax || (!errors.Is(err, ErrNotLeader) && !errors.Is(err, errUnreachable)) {
				return err
			}
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		for _, kv := range resp.Pairs {
			if err := fn(kv.Key, kv.Value); err != nil {
				return err
			}
			n++
		}
		if !resp.Truncated || len(resp.Pairs) == 0 || (limit > 0 && n >= limit) {
			return nil
		}
		lo = append(append([]byte{}, resp.Pairs[len(resp.Pairs)-1].Key...), 0)
		attempt = 0
	}
}

// LocalReader reads a local Pebble database, batch or snapshot, whatever
// this replica has applied.
type LocalReader struct{ R pebble.Reader }

// Get returns a copy of key's value.
func (l LocalReader) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := l.R.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// Scan calls fn for the pairs in [lo, hi), at most limit (0: all); fn must
// not keep k or v.
func (l LocalReader) Scan(lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	it, err := l.R.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	n := 0
	for ok := it.First(); ok && (limit <= 0 || n < limit); ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
		n++
	}
	return it.Close()
}

// Applied reads what this replica has applied of the partition, leader or
// follower, without a round trip. Its reads are not linearizable: use it
// where a replica that lags is harmless, as the ledger's sequencer reading
// outboxes (the ledger group's cursor, not the read, decides what is
// appended). Keys carry the partition's Prefix.
func (p *Partition) Applied() LocalReader { return LocalReader{R: p.host.db} }

// IsLeader reports whether this replica leads the partition.
func (p *Partition) IsLeader() bool { return p.raft.State() == raft.Leader }

// LeaderID is the node id of the partition's leader as this replica knows
// it, or "".
func (p *Partition) LeaderID() string {
	_, id := p.raft.LeaderWithID()
	return string(id)
}

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

// Snapshot takes a snapshot now and compacts the log behind it.
func (p *Partition) Snapshot() error {
	if err := p.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("partition %d: snapshot: %w", p.ID, err)
	}
	return nil
}

// Status returns the partition's Raft status as this replica sees it.
func (p *Partition) Status() *clusterpb.PartitionStatus {
	addr, id := p.raft.LeaderWithID()
	st := &clusterpb.PartitionStatus{
		Id: p.ID, State: p.raft.State().String(), LeaderId: string(id), LeaderAddr: string(addr),
		CommitIndex: p.raft.CommitIndex(), AppliedIndex: p.raft.AppliedIndex(), LastLogIndex: p.raft.LastIndex(),
		Term: p.raft.CurrentTerm(),
	}
	if f := p.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, string(s.ID))
			}
		}
	}
	return st
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// AppliedIndex is the last Raft index this replica has applied.
func (p *Partition) AppliedIndex() uint64 { return p.raft.AppliedIndex() }

// StateMachine is the domain's state machine of this partition on this
// node (what it keeps in memory is this replica's, as of its last apply).
func (p *Partition) StateMachine() StateMachine { return p.fsm.sm }

// TransferLeadership hands the partition's leadership, held by this
// replica, to the voter id (the most caught-up voter when id is ""), and
// waits until the transfer is done or failed.
func (p *Partition) TransferLeadership(id string) error {
	if !p.IsLeader() {
		return fmt.Errorf("partition %d: %w", p.ID, ErrNotLeader)
	}
	var f raft.Future
	if id == "" {
		f = p.raft.LeadershipTransfer()
	} else {
		var addr raft.ServerAddress
		if c := p.raft.GetConfiguration(); c.Error() == nil {
			for _, s := range c.Configuration().Servers {
				if string(s.ID) == id {
					addr = s.Address
				}
			}
		}
		if addr == "" {
			return fmt.Errorf("partition %d: no voter %s", p.ID, id)
		}
		f = p.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("partition %d: leadership transfer: %w", p.ID, err)
	}
	return nil
}
