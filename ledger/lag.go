package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// Lag is how far the log is behind, as this node sees it.
type Lag struct {
	// Events is the age of the oldest event in this node's replica of a
	// partition not yet in the log (0: caught up): the gauge
	// ordergrid_ledger_lag_seconds, from any node, not only the sequencer.
	Events time.Duration
	// Checkpoint is the age of the oldest leaf the newest signed checkpoint
	// does not cover (0: it covers the whole log).
	Checkpoint time.Duration
	// Size is the log's size and CheckpointSize the newest checkpoint's.
	Size, CheckpointSize uint64
}

// Lag reads how far the log is behind the partitions and its checkpoints
// behind the log, at now, on this node's replicas. It reads one outbox
// entry per partition and one leaf.
func (s *Sequencer) Lag(now time.Time) (Lag, error) {
	var out Lag
	for _, p := range s.host.Partitions() {
		cur, err := s.log.Cursor(p.ID)
		if err != nil {
			return out, fmt.Errorf("ledger lag: partition %d: %w", p.ID, err)
		}
		entries, _, err := outbox.Read(p.Applied(), p.Prefix, cur, 1, batchBytesMax)
		if err != nil {
			return out, fmt.Errorf("ledger lag: partition %d: %w", p.ID, err)
		}
		if len(entries) > 0 {
			out.Events = max(out.Events, now.Sub(time.Unix(0, entries[0].AtUnixNano)))
		}
	}
	size, err := s.log.Size()
	if err != nil {
		return out, fmt.Errorf("ledger lag: %w", err)
	}
	out.Size = size
	cs, _, err := s.log.LatestCheckpoint()
	if err != nil && !errors.Is(err, ErrNotFound) {
		return out, fmt.Errorf("ledger lag: %w", err)
	}
	out.CheckpointSize = cs
	if size > cs {
		leaf, err := s.log.Leaf(cs)
		if err != nil {
			return out, fmt.Errorf("ledger lag: %w", err)
		}
		e, err := DecodeLeaf(leaf)
		if err != nil {
			return out, fmt.Errorf("ledger lag: leaf %d: %w", cs, err)
		}
		out.Checkpoint = max(now.Sub(e.Time()), 0)
	}
	return out, nil
}
