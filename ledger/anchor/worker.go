package anchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/anchorcc"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// Back-off of a failing chain: doubling from backoffMin to backoffMax.
const (
	backoffMin = time.Second
	backoffMax = time.Minute
	// callTimeout bounds one anchoring transaction (endorse, submit, commit).
	callTimeout = 30 * time.Second
)

// Options configure a Worker.
type Options struct {
	// Interval is how often the newest checkpoint is anchored when the log
	// grew. Default 5s.
	Interval time.Duration
	// Channel and Chaincode are recorded with each anchor.
	Channel, Chaincode string
	Logger             *slog.Logger
	Registerer         prometheus.Registerer
}

// Worker anchors the ledger's newest checkpoint while this node leads the
// ledger group.
type Worker struct {
	seq   *ledger.Sequencer
	chain Chain
	opts  Options
	m     *metrics

	mu        sync.Mutex
	onChain   *anchorcc.Anchor // the chain's latest, as last seen; nil: ask
	lastErr   error
	failingAt time.Time
	leading   bool
}

// NewWorker returns the anchoring worker of seq's log.
func NewWorker(seq *ledger.Sequencer, chain Chain, opts Options) *Worker {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{seq: seq, chain: chain, opts: opts, m: newMetrics(opts.Registerer)}
}

// Run anchors until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := w.opts.Interval
		if err := w.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, backoffMin), backoffMax)
			wait = backoff
			w.opts.Logger.Warn("ledger: anchoring failed; backing off", slog.Duration("retry_in", wait), slog.Any("err", err))
		} else {
			backoff = 0
		}
		w.observe()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Once anchors the newest checkpoint if it is newer than the chain's, when
// this node leads the ledger group.
func (w *Worker) Once(ctx context.Context) error {
	g := w.seq.Group()
	w.mu.Lock()
	w.leading = g.IsLeader()
	if !w.leading {
		w.onChain = nil // another node anchors; ask the chain again when this one leads
	}
	w.mu.Unlock()
	if !w.leading {
		return nil
	}
	err := w.anchor(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.lastErr == nil {
			w.failingAt = time.Now()
		}
		w.lastErr = err
		w.onChain = nil
		w.m.failures.Inc()
		return err
	}
	w.lastErr = nil
	return nil
}

func (w *Worker) anchor(ctx context.Context) error {
	log := w.seq.Log()
	size, signed, err := log.LatestCheckpoint()
	if errors.Is(err, ledger.ErrNotFound) {
		return nil // nothing to anchor yet
	}
	if err != nil {
		return err
	}
	key, err := log.Key()
	if err != nil {
		return err
	}
	v, err := log.Verifier()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	w.mu.Lock()
	onChain := w.onChain
	w.mu.Unlock()
	if onChain == nil {
		if onChain, err = w.chain.Latest(cctx, v.Origin()); err != nil {
			return fmt.Errorf("latest anchor: %w", err)
		}
		if err := w.checkOurs(onChain, v, size); err != nil {
			return err
		}
		if err := w.recordKnown(ctx, onChain); err != nil {
			return err
		}
	}
	if onChain.Size >= size {
		w.remember(onChain)
		return nil
	}
	var proof []string
	if onChain.Size > 0 {
		p, err := log.ConsistencyProof(onChain.Size, size)
		if err != nil {
			return fmt.Errorf("consistency %d..%d: %w", onChain.Size, size, err)
		}
		proof = merkle.EncodeProof(p)
	}
	start := time.Now()
	r, err := w.chain.Anchor(cctx, key.VerifierKey, signed, proof)
	if err != nil {
		return fmt.Errorf("anchor checkpoint %d: %w", size, err)
	}
	w.m.latency.Observe(time.Since(start).Seconds())
	txID := r.Anchor.TxID // the transaction that wrote the anchor (a retry answers the first one)
	rec := &ledgerpb.AnchorRecord{Size: r.Anchor.Size, TransactionId: txID, BlockNumber: r.BlockNumber,
		Channel: w.opts.Channel, Chaincode: w.opts.Chaincode, AtUnixNano: time.Now().UnixNano(), RootHash: r.Anchor.RootHash}
	if err := w.seq.RecordAnchor(ctx, rec); err != nil {
		return fmt.Errorf("record anchor %d: %w", size, err)
	}
	w.remember(&r.Anchor)
	w.opts.Logger.Debug("ledger: anchored", slog.Uint64("size", size), slog.String("tx", r.TransactionID), slog.Uint64("block", r.BlockNumber))
	return nil
}

// checkOurs checks that the chain's latest anchor of this origin is a
// checkpoint of this log: signed by its key, and the same tree as this log's
// checkpoint of that size. Anything else means another log uses the origin
// (or this log was reset): anchoring stops with an error, never anchors or
// records a foreign history.
func (w *Worker) checkOurs(a *anchorcc.Anchor, v *checkpoint.Verifier, newest uint64) error {
	if a.Size == 0 {
		return nil
	}
	c, err := v.Open([]byte(a.Checkpoint))
	if err != nil {
		return fmt.Errorf("the channel's newest anchor of %s is not this log's: %w", v.Origin(), err)
	}
	if a.Size > newest {
		return fmt.Errorf("the channel anchors %d leaves of %s, this log has a checkpoint of %d: another log uses this origin, or this log was reset", a.Size, v.Origin(), newest)
	}
	signed, err := w.seq.Log().Checkpoint(a.Size)
	if err != nil {
		return fmt.Errorf("the channel anchors a tree of %d leaves this log has no checkpoint of: %w", a.Size, err)
	}
	local, err := v.Open(signed)
	if err != nil {
		return err
	}
	if local.Root != c.Root {
		return fmt.Errorf("the channel anchors another root for %d leaves of %s: a forked or foreign log", a.Size, v.Origin())
	}
	return nil
}

// recordKnown records the chain's latest anchor locally when the ledger
// lacks it (anchored by a node that failed before recording it).
func (w *Worker) recordKnown(ctx context.Context, a *anchorcc.Anchor) error {
	if a.Size == 0 {
		return nil
	}
	if _, err := w.seq.Log().Anchor(a.Size); err == nil {
		return nil
	}
	return w.seq.RecordAnchor(ctx, &ledgerpb.AnchorRecord{Size: a.Size, TransactionId: a.TxID, Channel: w.opts.Channel,
		Chaincode: w.opts.Chaincode, AtUnixNano: time.Now().UnixNano(), RootHash: a.RootHash})
}

func (w *Worker) remember(a *anchorcc.Anchor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onChain = a
}

// observe updates the backlog and age gauges.
func (w *Worker) observe() {
	log := w.seq.Log()
	size, _, err := log.LatestCheckpoint()
	if err != nil {
		return
	}
	var anchored uint64
	if a, err := log.LatestAnchor(); err == nil {
		anchored = a.Size
		w.m.age.Set(time.Since(time.Unix(0, a.AtUnixNano)).Seconds())
	}
	w.m.backlog.Set(float64(size - min(size, anchored)))
}

// Status describes anchoring for operators.
type Status struct {
	State       string `json:"state"` // anchoring, standby, failing
	Error       string `json:"error,omitempty"`
	FailingFor  string `json:"failing_for,omitempty"`
	ChainSize   uint64 `json:"chain_size"`
	LogSize     uint64 `json:"checkpoint_size"`
	BacklogSize uint64 `json:"backlog_leaves"`
}

// Status is the worker's state now.
func (w *Worker) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{State: "anchoring"}
	if !w.leading {
		st.State = "standby"
	}
	if w.lastErr != nil {
		st.State, st.Error = "failing", w.lastErr.Error()
		st.FailingFor = time.Since(w.failingAt).Round(time.Second).String()
	}
	if w.onChain != nil {
		st.ChainSize = w.onChain.Size
	}
	if size, _, err := w.seq.Log().LatestCheckpoint(); err == nil {
		st.LogSize = size
	}
	if a, err := w.seq.Log().LatestAnchor(); err == nil {
		st.BacklogSize = st.LogSize - min(st.LogSize, a.Size)
	} else {
		st.BacklogSize = st.LogSize
	}
	return st
}

type metrics struct {
	backlog  prometheus.Gauge
	age      prometheus.Gauge
	latency  prometheus.Histogram
	failures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ordergrid_ledger_anchor_backlog_leaves",
			Help: "Leaves in the newest checkpoint beyond the newest anchored one."}),
		age: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ordergrid_ledger_anchor_age_seconds",
			Help: "Time since the newest anchor was recorded."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordergrid_ledger_anchor_seconds",
			Help: "Latency of one anchoring transaction (endorse, submit, commit).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "ordergrid_ledger_anchor_failures_total",
			Help: "Anchoring attempts that failed."}),
	}
	if reg != nil {
		reg.MustRegister(m.backlog, m.age, m.latency, m.failures)
	}
	return m
}
