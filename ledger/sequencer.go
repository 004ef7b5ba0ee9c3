package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// Defaults of SequencerOptions.
const (
	DefaultOrigin             = "ordergrid.local/ledger"
	DefaultSequenceInterval   = 20 * time.Millisecond
	DefaultCheckpointInterval = time.Second
	// DefaultBatchLeavesMax and batchBytesMax bound one append: one Raft
	// entry of at most a few MiB.
	DefaultBatchLeavesMax = 4096
	batchBytesMax         = 4 << 20
)

// SequencerOptions configure a Sequencer. Zero fields take the defaults.
type SequencerOptions struct {
	// Origin names the log in its checkpoints and is its key's name, used
	// when a new log makes its key. Default DefaultOrigin.
	Origin string
	// SignerKey is the log's signer key (checkpoint.GenerateKey's first
	// result), when it is kept in a file. Empty: the first sequencer of a new
	// log makes the key and replicates it in the ledger group, so every node
	// signs with the log's one key.
	SignerKey string
	// SequenceInterval is how often the leader reads the partitions'
	// outboxes when they were empty. Default 20ms.
	SequenceInterval time.Duration
	// CheckpointInterval is how often a grown tree gets a new signed
	// checkpoint. Default 1s.
	CheckpointInterval time.Duration
	// BatchLeavesMax bounds the leaves of one append. Default 4096.
	BatchLeavesMax int
	// TrimOutbox deletes partition p's outbox entries below Raft index
	// before, through p's own state machine (the domain knows its command
	// format: statemachine.TrimOutbox is one). The sequencer calls it every
	// TrimInterval for what the log has appended. nil: outboxes are never
	// trimmed.
	TrimOutbox func(ctx context.Context, p *cluster.Partition, before uint64) error
	// TrimInterval is how often outboxes are trimmed. Default 10s.
	TrimInterval time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

func (o *SequencerOptions) withDefaults() {
	if o.Origin == "" {
		o.Origin = DefaultOrigin
	}
	if o.SequenceInterval <= 0 {
		o.SequenceInterval = DefaultSequenceInterval
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.BatchLeavesMax <= 0 {
		o.BatchLeavesMax = DefaultBatchLeavesMax
	}
	if o.TrimInterval <= 0 {
		o.TrimInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Sequencer moves committed events from the partitions' outboxes into the
// log and signs checkpoints. Every node runs one; only the ledger group's
// leader acts. Exactly-once comes from the ledger state machine, which
// appends a batch only if it starts at the partition's stored cursor.
type Sequencer struct {
	opts    SequencerOptions
	host    *cluster.Host
	group   *cluster.Partition
	log     *Log
	metrics *metrics

	mu             sync.Mutex
	signer         *checkpoint.Signer
	signErr        error
	lastCheckpoint time.Time
	lastTrim       time.Time
	trimmed        map[uint32]uint64 // partition -> index trimmed below
}

// NewSequencer returns the sequencer of host's ledger group (which must be
// among its Groups, named GroupName).
func NewSequencer(host *cluster.Host, opts SequencerOptions) (*Sequencer, error) {
	opts.withDefaults()
	if err := checkpoint.ValidOrigin(opts.Origin); err != nil {
		return nil, err
	}
	g := host.Group(GroupName)
	if g == nil {
		return nil, errors.New("ledger: the host has no ledger group")
	}
	s := &Sequencer{opts: opts, host: host, group: g, log: NewLog(host.DB(), g.Prefix),
		metrics: newMetrics(opts.Registerer)}
	if opts.SignerKey != "" {
		signer, err := checkpoint.NewSigner(strings.TrimSpace(opts.SignerKey))
		if err != nil {
			return nil, err
		}
		s.signer = signer
		s.log.sealer.signerKey = opts.SignerKey // bundles and exports are sealed on every node
	}
	return s, nil
}

// Log reads the ledger on this node.
func (s *Sequencer) Log() *Log { return s.log }

// Group is the ledger's Raft group.
func (s *Sequencer) Group() *cluster.Partition { return s.group }

// Run sequences until ctx ends.
func (s *Sequencer) Run(ctx context.Context) {
	leading := false
	for {
		busy := false
		if s.group.IsLeader() {
			if !leading {
				if err := s.takeOver(ctx); err != nil {
					if ctx.Err() == nil {
						s.opts.Logger.Warn("ledger: taking over the sequencer", slog.Any("err", err))
					}
				} else {
					leading = true
				}
			}
			if leading {
				var err error
				busy, err = s.round(ctx)
				if err != nil && ctx.Err() == nil {
					s.opts.Logger.Warn("ledger: sequencing", slog.Any("err", err))
					leading = false // re-read state after a barrier
				}
			}
		} else {
			leading = false
		}
		s.observe()
		if busy {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opts.SequenceInterval):
		}
	}
}

// takeOver waits until this leader's state holds everything committed
// before it, then makes sure the log has a key. A node that cannot sign
// still sequences (it records why in SigningError and makes no checkpoints),
// so a missing key file never stops the log itself.
func (s *Sequencer) takeOver(ctx context.Context) error {
	if err := s.group.Barrier(ctx); err != nil {
		return err
	}
	lk, err := s.log.Key()
	if errors.Is(err, ErrNoKey) {
		lk, err = s.makeKey(ctx)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	signer, err := s.signerFor(lk)
	if err != nil {
		s.signer, s.signErr = nil, err
		s.opts.Logger.Error("ledger: this node leads the ledger but cannot sign its checkpoints", slog.Any("err", err))
		return nil
	}
	s.signer, s.signErr = signer, nil
	return nil
}

// signerFor is this node's signer for the log's key lk.
func (s *Sequencer) signerFor(lk *ledgerpb.LedgerKey) (*checkpoint.Signer, error) {
	var signer *checkpoint.Signer
	switch {
	case s.opts.SignerKey != "":
		var err error
		if signer, err = checkpoint.NewSigner(strings.TrimSpace(s.opts.SignerKey)); err != nil {
			return nil, err
		}
	case lk.SignerKey != "":
		var err error
		if signer, err = checkpoint.NewSigner(lk.SignerKey); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the log's signer key lives in a file on each node, and this node has none (ledger.signing_key_file)")
	}
	if err := sameKey(signer, lk.VerifierKey); err != nil {
		return nil, err
	}
	return signer, nil
}

// sameKey checks that signer signs what the verifier key accepts.
func sameKey(signer *checkpoint.Signer, verifierKey string) error {
	v, err := checkpoint.NewVerifier(verifierKey)
	if err != nil {
		return err
	}
	probe := checkpoint.Checkpoint{Origin: signer.Origin(), Size: 1}
	signed, err := signer.Sign(probe)
	if err == nil {
		_, err = v.Open(signed)
	}
	if err != nil {
		return fmt.Errorf("ledger: this node's signing key is not the log's key %s: %w", verifierKey, err)
	}
	return nil
}

func (s *Sequencer) makeKey(ctx context.Context) (*ledgerpb.LedgerKey, error) {
	lk := &ledgerpb.LedgerKey{}
	if s.opts.SignerKey != "" {
		// The key lives in a file: replicate only its public half.
		vkey, err := checkpoint.VerifierKeyOf(s.opts.SignerKey)
		if err != nil {
			return nil, err
		}
		lk.VerifierKey = vkey
	} else {
		skey, vkey, err := checkpoint.GenerateKey(s.opts.Origin)
		if err != nil {
			return nil, err
		}
		lk.SignerKey, lk.VerifierKey = skey, vkey
	}
	if _, err := s.propose(ctx, &ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Key{Key: lk}}); err != nil {
		return nil, err
	}
	s.opts.Logger.Info("ledger: the log has its key", slog.String("verifier_key", lk.VerifierKey))
	return s.log.Key()
}

func (s *Sequencer) propose(ctx context.Context, cmd *ledgerpb.LedgerCommand) (*ledgerpb.LedgerResult, error) {
	cmd.AtUnixNano = time.Now().UnixNano()
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	out, err := s.group.Propose(ctx, data)
	if err != nil {
		return nil, err
	}
	var res ledgerpb.LedgerResult
	if err := proto.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("ledger result: %w", err)
	}
	if res.Error != "" {
		return &res, errors.New(res.Error)
	}
	return &res, nil
}

// round appends what every partition's outbox holds past its cursor (one
// batch per partition, proposed together so they share Raft's group commit)
// and signs a checkpoint when one is due. It reports whether a batch was
// full, so the caller goes on without waiting.
func (s *Sequencer) round(ctx context.Context) (bool, error) {
	parts := s.host.Partitions()
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	full := make([]bool, len(parts))
	for i, p := range parts {
		cur, err := s.log.Cursor(p.ID)
		if err != nil {
			return false, err
		}
		entries, next, err := outbox.Read(p.Applied(), p.Prefix, cur, s.opts.BatchLeavesMax, batchBytesMax)
		if err != nil {
			return false, err
		}
		if len(entries) == 0 {
			s.metrics.lag.WithLabelValues(p.Name, fmt.Sprint(p.ID)).Set(0)
			continue
		}
		s.metrics.lag.WithLabelValues(p.Name, fmt.Sprint(p.ID)).Set(time.Since(time.Unix(0, entries[0].AtUnixNano)).Seconds())
		full[i] = len(entries) == s.opts.BatchLeavesMax
		wg.Add(1)
		go func(i int, p *cluster.Partition) {
			defer wg.Done()
			errs[i] = s.appendBatch(ctx, p.ID, cur, next, entries)
		}(i, p)
	}
	wg.Wait()
	busy := false
	for i, err := range errs {
		if err != nil {
			return false, err
		}
		busy = busy || full[i]
	}
	if time.Since(s.lastCheckpoint) >= s.opts.CheckpointInterval {
		if err := s.checkpoint(ctx); err != nil {
			return busy, err
		}
	}
	if s.opts.TrimOutbox != nil && time.Since(s.lastTrim) >= s.opts.TrimInterval {
		s.lastTrim = time.Now()
		s.trim(ctx, parts)
	}
	return busy, nil
}

// trim drops what the log has appended from the partitions' outboxes. A
// failure is retried next time; an untrimmed outbox only costs space.
func (s *Sequencer) trim(ctx context.Context, parts []*cluster.Partition) {
	if s.trimmed == nil {
		s.trimmed = map[uint32]uint64{}
	}
	for _, p := range parts {
		cur, err := s.log.Cursor(p.ID)
		if err != nil || cur.Index <= s.trimmed[p.ID] {
			continue
		}
		if err := s.opts.TrimOutbox(ctx, p, cur.Index); err != nil {
			s.opts.Logger.Warn("ledger: trimming an outbox", slog.Uint64("partition", uint64(p.ID)), slog.Any("err", err))
			continue
		}
		s.trimmed[p.ID] = cur.Index
	}
}

func (s *Sequencer) appendBatch(ctx context.Context, partition uint32, from, next outbox.Cursor, entries []outbox.Entry) error {
	a := &ledgerpb.LedgerAppend{Partition: partition, FromIndex: from.Index, FromN: from.N, NextIndex: next.Index, NextN: next.N,
		Leaves: make([]*ledgerpb.LedgerLeaf, len(entries))}
	for i, e := range entries {
		a.Leaves[i] = &ledgerpb.LedgerLeaf{Leaf: e.Leaf, Order: e.Order, AtUnixNano: e.AtUnixNano}
	}
	start := time.Now()
	_, err := s.propose(ctx, &ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Append{Append: a}})
	if err != nil {
		return fmt.Errorf("append %d leaves of partition %d: %w", len(entries), partition, err)
	}
	now := time.Now()
	s.metrics.appendSeconds.Observe(now.Sub(start).Seconds())
	s.metrics.batchLeaves.Observe(float64(len(entries)))
	s.metrics.leaves.Add(float64(len(entries)))
	for _, e := range entries {
		s.metrics.inclusion.Observe(now.Sub(time.Unix(0, e.AtUnixNano)).Seconds())
	}
	return nil
}

// checkpoint signs the current tree if it grew since the last checkpoint.
func (s *Sequencer) checkpoint(ctx context.Context) error {
	size, err := s.log.Size()
	if err != nil {
		return err
	}
	last, _, err := s.log.LatestCheckpoint()
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.lastCheckpoint = time.Now()
	if size == last {
		return nil
	}
	root, err := s.log.Root(size)
	if err != nil {
		return err
	}
	s.mu.Lock()
	signer := s.signer
	s.mu.Unlock()
	if signer == nil {
		return nil // SigningError says why
	}
	signed, err := signer.Sign(checkpoint.Checkpoint{Origin: signer.Origin(), Size: size, Root: root})
	if err != nil {
		return err
	}
	if _, err := s.propose(ctx, &ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Checkpoint{Checkpoint: &ledgerpb.LedgerCheckpoint{Signed: signed}}}); err != nil {
		return fmt.Errorf("checkpoint %d: %w", size, err)
	}
	s.metrics.checkpoints.Inc()
	return nil
}

// observe updates the gauges every node reports.
func (s *Sequencer) observe() {
	if size, err := s.log.Size(); err == nil {
		s.metrics.size.Set(float64(size))
	}
	if size, _, err := s.log.LatestCheckpoint(); err == nil {
		s.metrics.checkpointSize.Set(float64(size))
	}
}

// SigningError is why this node cannot sign checkpoints while it leads the
// ledger group; nil when it can.
func (s *Sequencer) SigningError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signErr
}

// RecordAnchor records a committed anchoring transaction in the ledger group.
func (s *Sequencer) RecordAnchor(ctx context.Context, rec *ledgerpb.AnchorRecord) error {
	_, err := s.propose(ctx, &ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Anchor{Anchor: rec}})
	return err
}
