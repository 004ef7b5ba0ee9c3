package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The fetch workflow: platform orders the grid learns of by id (a push
// that names them, or a connector's pull of the orders changed on the
// platform) are queued as fetches in the grid, in the partition of the
// order each becomes, before the push is acknowledged; workers on each
// partition's leader fetch the due ones from the platform's order-detail
// API, map them with the channel's adapter and take them through the
// channel workflow. Every attempt's outcome is a command: done, failed for
// good, or due again after a backoff with jitter. A notice for an order
// queued or taken before is counted, not fetched again; two workers (a
// leadership change) take an order once, because the order id derives from
// the platform's order id and the outcome is conditional on the attempt.
//
// A connector per connection with pull settings walks its platform's
// changed orders in windows from a cursor kept in the grid (moved only
// from where it was read, so one puller moves it), each window reaching
// back an overlap before the cursor for orders the platform indexes late.

// PlatformAPI is what the fetch workflow needs of a connection's platform
// (platforms.Client in a node).
type PlatformAPI interface {
	// OrderDetail returns the platform's answer for one order, the body the
	// channel's adapter maps.
	OrderDetail(ctx context.Context, orderID string) ([]byte, error)
	// ChangedOrders lists the ids of orders changed in [from, to), a page
	// at a time ("" first; next "" after the last).
	ChangedOrders(ctx context.Context, from, to time.Time, page string) (ids []string, next string, err error)
}

// WindowLimiter is a PlatformAPI whose changed-orders call takes windows
// of at most span, ending at least lag before now (Pinduoduo: 30 minutes,
// 3 minutes behind): a connector's windows, overlap included, keep to it.
type WindowLimiter interface {
	WindowLimits() (span, lag time.Duration)
}

// FetchConnection is one connection the fetch workflow serves.
type FetchConnection struct {
	Conn    *channels.Connection
	Adapter channels.Adapter
	API     PlatformAPI
}

func (c *FetchConnection) name() string { return c.Conn.Channel + "/" + c.Conn.Name }

// FetchOptions configure a Fetcher. Zero values take the defaults.
type FetchOptions struct {
	// Connections are the connections with an API; those with pull
	// settings run a connector.
	Connections []FetchConnection
	// Check validates an order as it will be created (the transport's
	// validation); a refusal fails the fetch for good.
	Check func(*pb.CreateOrderRequest) error
	// PollInterval is how often workers look for due fetches besides being
	// woken by Queue. Default 1s.
	PollInterval time.Duration
	// AttemptsMax bounds the attempts at one fetch; then it fails for good.
	// Default 12 (with the default backoff, about an hour and a half).
	AttemptsMax uint32
	// AttemptsFor, when set, bounds the attempts after a failure of a kind
	// (0: AttemptsMax): an order the platform says does not exist is worth
	// a few tries (it may not be indexed yet), not an hour and a half.
	AttemptsFor func(error) uint32
	// DecryptRetry picks the receiver-decryption failures that fail the
	// attempt (retried later) rather than keep the masked fields
	// (ChannelOrder.DecryptRetry). nil: none.
	DecryptRetry func(error) bool
	// BackoffMin and BackoffMax bound the wait before a retry: doubling from
	// the first, capped by the second, with full jitter. Defaults 1s, 15m.
	BackoffMin, BackoffMax time.Duration
	// AttemptTimeout bounds one attempt (fetch, map, take). Default 30s.
	AttemptTimeout time.Duration
	// ConcurrencyMax bounds the attempts in flight per connection on a
	// node. Default 8.
	ConcurrencyMax int
	// SettledRetention is how long a done or failed fetch stays to answer
	// repeated notices. Default 7 days.
	SettledRetention time.Duration
	Registerer       prometheus.Registerer
	Logger           *slog.Logger
	// Now is the clock (tests move it). Default time.Now.
	Now func() time.Time
}

// Bounds of the fetch workflow.
const (
	// fetchRoundMax bounds the due fetches one partition gives a round.
	fetchRoundMax = 256
	// pullPagesMax bounds the pages of one window.
	pullPagesMax = 1000
	// pullWindowsPerRunMax bounds the windows one connector run walks (a
	// cursor far behind catches up over several runs).
	pullWindowsPerRunMax = 48
	// purgeEvery is how often a partition's leader purges settled fetches,
	// up to purgeBatchesMax commands of purgeBatch each time (a partition
	// settling more than that an hour catches up over the next).
	purgeEvery      = time.Hour
	purgeBatch      = 4096
	purgeBatchesMax = 64
)

// Fetcher runs the fetch workflow and the connectors of a node.
type Fetcher struct {
	grid  Partitions
	flow  *ChannelFlow
	opts  FetchOptions
	conns map[string]*FetchConnection // by channel/name
	wake  chan struct{}
	m     fetchMetrics

	// sems bound the attempts in flight per connection (channel/name).
	sems map[string]chan struct{}

	mu         sync.Mutex
	lastPurged map[uint32]time.Time
	// inflight are the fetches being attempted on this node, by FetchKey.
	inflight map[string]bool
}

type fetchMetrics struct {
	fetches *prometheus.CounterVec
	pulls   *prometheus.CounterVec
	seen    *prometheus.CounterVec
	lag     *prometheus.GaugeVec
}

// NewFetcher returns the fetch workflow over a grid and a channel workflow.
func NewFetcher(grid Partitions, flow *ChannelFlow, opts FetchOptions) (*Fetcher, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.AttemptsMax == 0 {
		opts.AttemptsMax = 12
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 15 * time.Minute
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 30 * time.Second
	}
	if opts.ConcurrencyMax <= 0 {
		opts.ConcurrencyMax = 8
	}
	if opts.SettledRetention <= 0 {
		opts.SettledRetention = 7 * 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Fetcher{grid: grid, flow: flow, opts: opts, conns: map[string]*FetchConnection{}, wake: make(chan struct{}, 1),
		lastPurged: map[uint32]time.Time{}, inflight: map[string]bool{}, sems: map[string]chan struct{}{}}
	for i := range opts.Connections {
		c := &opts.Connections[i]
		if c.Conn == nil || c.Adapter == nil || c.API == nil {
			return nil, fmt.Errorf("intake: fetch connection %d: connection, adapter and API are required", i)
		}
		if _, dup := f.conns[c.name()]; dup {
			return nil, fmt.Errorf("intake: fetch connection %s twice", c.name())
		}
		f.conns[c.name()] = c
		f.sems[c.name()] = make(chan struct{}, opts.ConcurrencyMax)
	}
	f.m = fetchMetrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_channel_fetches_total",
			Help: "Platform orders to fetch, by channel, connection and result (queued, repeated, done, retry, failed)."},
			[]string{"channel", "connection", "result"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_connector_pulls_total",
			Help: "Connector windows pulled, by channel, connection and result (ok, error)."}, []string{"channel", "connection", "result"}),
		seen: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_connector_orders_seen_total",
			Help: "Order ids a connector's pulls listed (an order changed twice is listed twice; it is fetched once)."},
			[]string{"channel", "connection"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ordergrid_connector_lag_seconds",
			Help: "How far behind now a connector's cursor is, as this node last saw it."}, []string{"channel", "connection"}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{f.m.fetches, f.m.pulls, f.m.seen, f.m.lag} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("intake: fetch metrics: %w", err)
			}
		}
	}
	return f, nil
}

// ErrNoAPI is a notice for a connection without an API to fetch from.
var ErrNoAPI = errors.New("the connection has no api settings to fetch orders with")

// Serves reports whether notices of a connection can be fetched.
func (f *Fetcher) Serves(channel, connection string) bool {
	_, ok := f.conns[channel+"/"+connection]
	return ok
}

// QueueResult counts what Queue did.
type QueueResult struct {
	// Queued are new fetches (and fetches again of orders taken or given
	// up before); Repeated named orders queued and not yet taken, or, for a
	// pull, taken before.
	Queued, Repeated int
}

// Queue records fetches of the orders a push's notices name, durably (one
// command per partition), and wakes the workers; the push is acknowledged
// only after it returns without error. An order taken before is fetched
// again (a push says it changed at the platform: paid, say).
func (f *Fetcher) Queue(ctx context.Context, channel, connection string, notices []channels.Notice) (QueueResult, error) {
	return f.queue(ctx, channel, connection, notices, true)
}

// queue records fetches; refresh fetches again the ones taken before.
func (f *Fetcher) queue(ctx context.Context, channel, connection string, notices []channels.Notice, refresh bool) (QueueResult, error) {
	var out QueueResult
	if !f.Serves(channel, connection) {
		return out, fmt.Errorf("%s/%s: %w", channel, connection, ErrNoAPI)
	}
	groups := map[uint32][]*gridpb.ChannelFetchRecord{}
	parts := map[uint32]actors.Partition{}
	seen := map[string]bool{}
	for _, n := range notices {
		if n.OrderID == "" || seen[n.OrderID] {
			continue
		}
		seen[n.OrderID] = true
		p := f.grid.PartitionOf(actors.OrderKey(fetchOrderID(channel, n.OrderID)))
		parts[p.ID()] = p
		groups[p.ID()] = append(groups[p.ID()], &gridpb.ChannelFetchRecord{Channel: channel, Connection: connection, OrderId: n.OrderID, Tag: n.Tag,
			Refresh: refresh})
	}
	for id, fs := range groups {
		for len(fs) > 0 {
			chunk := fs[:min(len(fs), statemachine.FetchesPerCommandMax)]
			fs = fs[len(chunk):]
			res, err := parts[id].Propose(ctx, "system:fetches", &gridpb.Command{Kind: &gridpb.Command_QueueFetches{
				QueueFetches: &gridpb.QueueFetchesCommand{Fetches: chunk}}})
			if err != nil {
				return out, fmt.Errorf("queue fetches: %w", err)
			}
			if len(res.Results) != len(chunk) {
				return out, fmt.Errorf("queue fetches: %s", res.Detail)
			}
			for _, r := range res.Results {
				switch r.Outcome {
				case gridpb.Outcome_OUTCOME_OK:
					out.Queued++
				case gridpb.Outcome_OUTCOME_REPLAYED:
					out.Repeated++
				default:
					return out, fmt.Errorf("queue fetches: %s", r.Detail)
				}
			}
		}
	}
	f.m.fetches.WithLabelValues(channel, connection, "queued").Add(float64(out.Queued))
	f.m.fetches.WithLabelValues(channel, connection, "repeated").Add(float64(out.Repeated))
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return out, nil
}

// fetchOrderID is the grid order a platform order becomes: the id a
// channel order's (channel, channel order id) derives.
func fetchOrderID(channel, platformID string) string {
	return OrderID(&pb.CreateOrderRequest{Channel: channel, ChannelOrderId: platformID})
}

// Run runs the workers and the connectors until ctx ends.
func (f *Fetcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range f.conns {
		if c.Conn.API != nil && c.Conn.API.Pull != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.runConnector(ctx, c)
			}()
		}
	}
	t := time.NewTicker(f.opts.PollInterval)
	defer t.Stop()
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Round(ctx)
		}()
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		case <-f.wake:
		}
	}
}

// Round attempts every fetch due now in the partitions this node leads
// that is not already being attempted, at most ConcurrencyMax at once per
// connection (a slow platform holds only its own fetches), and purges
// settled fetches past their retention once an hour; it returns when the
// attempts it started are done. Rounds may overlap: Run starts one every
// PollInterval (or when woken) without waiting for the last.
func (f *Fetcher) Round(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range f.grid.Partitions() {
		if ctx.Err() != nil {
			break
		}
		if !p.IsLeader() {
			continue
		}
		now := f.opts.Now()
		f.mu.Lock()
		busy := len(f.inflight)
		f.mu.Unlock()
		// Past the ones in flight: a hanging platform's fetches at the head
		// of the due list never hide another connection's.
		due, err := statemachine.DueFetches(p.Reader(), p.Prefix(), now.UnixNano(), fetchRoundMax+busy)
		if err != nil {
			f.opts.Logger.Warn("reading due fetches", slog.Uint64("partition", uint64(p.ID())), slog.Any("error", err))
			continue
		}
		for _, fr := range due {
			key := statemachine.FetchKey(fr.Channel, fr.Connection, fr.OrderId)
			sem := f.sems[fr.Channel+"/"+fr.Connection]
			f.mu.Lock()
			inflight := f.inflight[key]
			f.inflight[key] = true // claimed here: an overlapping round skips it
			f.mu.Unlock()
			if inflight {
				continue
			}
			if sem != nil {
				select {
				case sem <- struct{}{}:
				default:
					// The connection is at its bound: a later round.
					f.mu.Lock()
					delete(f.inflight, key)
					f.mu.Unlock()
					continue
				}
			}
			wg.Add(1)
			go func() {
				defer func() {
					if sem != nil {
						<-sem
					}
					f.mu.Lock()
					delete(f.inflight, key)
					f.mu.Unlock()
					wg.Done()
				}()
				f.attempt(ctx, p, fr)
			}()
		}
		f.purge(ctx, p, now)
	}
	wg.Wait()
}

func (f *Fetcher) purge(ctx context.Context, p actors.Partition, now time.Time) {
	f.mu.Lock()
	due := now.Sub(f.lastPurged[p.ID()]) >= purgeEvery
	f.mu.Unlock()
	if !due {
		return
	}
	before := now.Add(-f.opts.SettledRetention).UnixNano()
	for range purgeBatchesMax {
		res, err := p.Propose(ctx, "system:fetches", &gridpb.Command{Kind: &gridpb.Command_PurgeFetches{PurgeFetches: &gridpb.PurgeFetchesCommand{
			SettledBeforeUnixNano: before, Limit: purgeBatch}}})
		if err != nil {
			f.opts.Logger.Warn("purging settled fetches", slog.Uint64("partition", uint64(p.ID())), slog.Any("error", err))
			return // the next round tries again
		}
		if res.Purged < purgeBatch {
			break
		}
	}
	f.mu.Lock()
	f.lastPurged[p.ID()] = now
	f.mu.Unlock()
}

// permanentError is an attempt's failure that another attempt would
// repeat: the platform's answer does not map, or the order is refused.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// attempt fetches, maps and takes one order, and records the outcome.
func (f *Fetcher) attempt(ctx context.Context, p actors.Partition, fr *gridpb.ChannelFetchRecord) {
	c, ok := f.conns[fr.Channel+"/"+fr.Connection]
	outcome := &gridpb.FetchOutcomeCommand{Channel: fr.Channel, Connection: fr.Connection, OrderId: fr.OrderId, Attempts: fr.Attempts}
	var err error
	if !ok {
		err = &permanentError{fmt.Errorf("%s/%s: %w", fr.Channel, fr.Connection, ErrNoAPI)}
	} else {
		actx, cancel := context.WithTimeout(ctx, f.opts.AttemptTimeout)
		outcome.GridOrderId, err = f.take(actx, c, fr.OrderId)
		cancel()
	}
	if ctx.Err() != nil {
		return // shutting down: the fetch stays due
	}
	var perm *permanentError
	result := "done"
	switch {
	case err == nil:
		outcome.Done = true
	case errors.As(err, &perm) || fr.Attempts+1 >= f.attemptsMax(err):
		outcome.Failed, outcome.Error, result = true, err.Error(), "failed"
	default:
		outcome.Error, result = err.Error(), "retry"
		outcome.NextUnixNano = f.opts.Now().Add(f.backoff(fr.Attempts)).UnixNano()
	}
	res, perr := p.Propose(ctx, "system:fetches", &gridpb.Command{Kind: &gridpb.Command_FetchOutcome{FetchOutcome: outcome}})
	if perr != nil {
		f.opts.Logger.Warn("recording a fetch's outcome; it will be attempted again", slog.String("channel", fr.Channel),
			slog.String("order", fr.OrderId), slog.Any("error", perr))
		return
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_OK {
		return // another worker settled it first
	}
	f.m.fetches.WithLabelValues(fr.Channel, fr.Connection, result).Inc()
	if err != nil {
		level := slog.LevelWarn
		if result == "failed" {
			level = slog.LevelError
		}
		f.opts.Logger.Log(ctx, level, "fetching a platform order", slog.String("channel", fr.Channel), slog.String("connection", fr.Connection),
			slog.String("order", fr.OrderId), slog.Uint64("attempt", uint64(fr.Attempts+1)), slog.String("result", result), slog.Any("error", err))
	}
}

// attemptsMax bounds the attempts after err.
func (f *Fetcher) attemptsMax(err error) uint32 {
	if f.opts.AttemptsFor != nil {
		if n := f.opts.AttemptsFor(err); n > 0 {
			return min(n, f.opts.AttemptsMax)
		}
	}
	return f.opts.AttemptsMax
}

// backoff is the wait after attempt n (0-based) failed: full jitter over
// a doubling ceiling.
func (f *Fetcher) backoff(n uint32) time.Duration {
	ceiling := f.opts.BackoffMin << min(n, 30)
	if ceiling <= 0 || ceiling > f.opts.BackoffMax {
		ceiling = f.opts.BackoffMax
	}
	return f.opts.BackoffMin/2 + rand.N(ceiling)
}

// take fetches one order and takes it through the channel workflow; it
// answers the grid's order id.
func (f *Fetcher) take(ctx context.Context, c *FetchConnection, platformID string) (string, error) {
	body, err := c.API.OrderDetail(ctx, platformID)
	if err != nil {
		return "", fmt.Errorf("order detail: %w", err)
	}
	m, err := c.Adapter.Map(body)
	if err != nil {
		return "", &permanentError{fmt.Errorf("mapping the platform's order: %w", err)}
	}
	if got := m.Request.GetChannelOrderId(); got != platformID {
		return "", &permanentError{fmt.Errorf("the platform answered order %q for %q", got, platformID)}
	}
	principal := "channel:" + c.Conn.Channel + "/" + connectionName(c.Conn) + " (fetched)"
	res, err := f.flow.Take(ctx, &ChannelOrder{Mapped: m, Principal: principal, Check: f.opts.Check, Connection: c.Conn, TakeStored: true,
		DecryptRetry: f.opts.DecryptRetry})
	var step *StepError
	switch {
	case err == nil:
	case errors.Is(err, ErrQueueFull), errors.As(err, &step), ctx.Err() != nil:
		return "", err
	default:
		return "", &permanentError{err}
	}
	if res.Skipped != "" {
		return "", nil // nothing to take: done
	}
	switch res.Created.Outcome {
	case gridpb.Outcome_OUTCOME_OK, gridpb.Outcome_OUTCOME_REPLAYED, gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT:
		// A conflict is an order an earlier attempt created from an
		// earlier answer of the platform (TakeStored): taken.
		return res.Created.Order.GetId(), nil
	case gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK, gridpb.Outcome_OUTCOME_UNROUTABLE:
		// Stock may come back: try again later.
		return "", fmt.Errorf("order refused for now: %s %s", res.Created.Outcome, res.Created.Detail)
	default:
		return "", &permanentError{fmt.Errorf("order refused: %s %s", res.Created.Outcome, res.Created.Detail)}
	}
}

func connectionName(c *channels.Connection) string {
	if c.Name == "" {
		return "default"
	}
	return c.Name
}

// cursorKey places a connector's cursor.
func cursorKey(channel, connection string) string { return "connector/" + channel + "/" + connection }

func (f *Fetcher) runConnector(ctx context.Context, c *FetchConnection) {
	pull := c.Conn.API.Pull
	interval := time.Duration(max(pull.IntervalMs, 0)) * time.Millisecond
	if interval <= 0 {
		interval = time.Minute
	}
	for {
		if err := f.Pull(ctx, c.Conn.Channel, c.Conn.Name); err != nil && ctx.Err() == nil {
			f.opts.Logger.Warn("connector pull", slog.String("channel", c.Conn.Channel), slog.String("connection", c.Conn.Name), slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Pull runs one connector's pulls now, on the node that leads its
// cursor's partition (elsewhere it does nothing): windows from the cursor
// (less the overlap) to now, each window's changed orders queued as
// fetches, the cursor moved after each window.
func (f *Fetcher) Pull(ctx context.Context, channel, connection string) error {
	c, ok := f.conns[channel+"/"+connection]
	if !ok || c.Conn.API == nil || c.Conn.API.Pull == nil {
		return fmt.Errorf("%s/%s: no connector", channel, connection)
	}
	pull := c.Conn.API.Pull
	overlap := time.Duration(max(pull.OverlapMs, 0)) * time.Millisecond
	if pull.OverlapMs == 0 {
		overlap = 5 * time.Minute
	}
	windowMax := time.Duration(pull.WindowMaxMs) * time.Millisecond
	if windowMax <= 0 {
		windowMax = 30 * time.Minute
	}
	lookback := time.Duration(pull.StartLookbackMs) * time.Millisecond
	if lookback <= 0 {
		lookback = 24 * time.Hour
	}
	span, lag := time.Duration(0), time.Duration(0)
	if wl, ok := c.API.(WindowLimiter); ok {
		span, lag = wl.WindowLimits()
	}
	if span > 0 {
		// The platform's longest window holds the overlap and the step.
		overlap = min(overlap, span/2)
		windowMax = min(windowMax, span-overlap)
	}
	p := f.grid.PartitionOf(cursorKey(channel, connection))
	if !p.IsLeader() {
		return nil
	}
	for range pullWindowsPerRunMax {
		cur, found, err := statemachine.ReadCursor(p.Reader(), p.Prefix(), channel, connection)
		if err != nil {
			return fmt.Errorf("read cursor: %w", err)
		}
		now := f.opts.Now()
		end := now.Add(-lag)
		from := time.Unix(0, cur.CursorUnixNano)
		if !found || cur.CursorUnixNano == 0 {
			from = end.Add(-lookback)
		}
		f.m.lag.WithLabelValues(channel, connection).Set(max(now.Sub(from).Seconds(), 0))
		if end.Sub(from) < time.Second {
			return nil
		}
		to := from.Add(windowMax)
		if to.After(end) {
			to = end
		}
		seen, err := f.pullWindow(ctx, c, from.Add(-overlap), to)
		next := &gridpb.ConnectorCursorRecord{Channel: channel, Connection: connection, CursorUnixNano: from.UnixNano(),
			Pulls: cur.Pulls + 1, OrdersSeen: cur.OrdersSeen + uint64(seen)}
		if err != nil {
			next.LastError = err.Error()
			f.m.pulls.WithLabelValues(channel, connection, "error").Inc()
		} else {
			next.CursorUnixNano = to.UnixNano()
			f.m.pulls.WithLabelValues(channel, connection, "ok").Inc()
		}
		res, perr := p.Propose(ctx, "system:connector", &gridpb.Command{Kind: &gridpb.Command_SetCursor{SetCursor: &gridpb.SetCursorCommand{
			Cursor: next, ExpectCursorUnixNano: cur.CursorUnixNano}}})
		switch {
		case perr != nil:
			return fmt.Errorf("move cursor: %w", perr)
		case res.Outcome != gridpb.Outcome_OUTCOME_OK:
			return nil // another puller moved it: it pulls
		case err != nil:
			return err
		}
		f.m.lag.WithLabelValues(channel, connection).Set(max(now.Sub(to).Seconds(), 0))
		if !to.Before(now) {
			return nil
		}
	}
	return nil
}

// pullWindow queues every order changed in [from, to); it answers how
// many ids the platform listed.
func (f *Fetcher) pullWindow(ctx context.Context, c *FetchConnection, from, to time.Time) (int, error) {
	page, seen := "", 0
	for range pullPagesMax {
		ids, next, err := c.API.ChangedOrders(ctx, from, to, page)
		if err != nil {
			return seen, fmt.Errorf("changed orders %s..%s page %q: %w", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), page, err)
		}
		seen += len(ids)
		f.m.seen.WithLabelValues(c.Conn.Channel, c.Conn.Name).Add(float64(len(ids)))
		notices := make([]channels.Notice, len(ids))
		for i, id := range ids {
			notices[i] = channels.Notice{OrderID: id, Tag: "pull"}
		}
		// A pull lists an order on every change and again in the overlap:
		// one taken before is not fetched again for it.
		if _, err := f.queue(ctx, c.Conn.Channel, c.Conn.Name, notices, false); err != nil {
			return seen, err
		}
		if next == "" {
			return seen, nil
		}
		if next == page {
			return seen, fmt.Errorf("the platform answered page %q again", page)
		}
		page = next
	}
	return seen, fmt.Errorf("more than %d pages in one window: narrow window_max_ms", pullPagesMax)
}

// FetchState selects fetches by state in a listing.
type FetchState string

// Fetch states.
const (
	FetchPending FetchState = "pending"
	FetchDone    FetchState = "done"
	FetchFailed  FetchState = "failed"
)

// StateOf is a fetch's state.
func StateOf(fr *gridpb.ChannelFetchRecord) FetchState {
	switch {
	case fr.Failed:
		return FetchFailed
	case fr.DoneUnixNano != 0:
		return FetchDone
	default:
		return FetchPending
	}
}

// FetchesListedMax bounds one listing of fetches.
const FetchesListedMax = 1000

// Fetches lists the fetches of every partition in a state ("" all), at
// most limit (1..FetchesListedMax), each partition scanned up to
// FetchesListedMax records.
func (f *Fetcher) Fetches(state FetchState, limit int) ([]*gridpb.ChannelFetchRecord, error) {
	limit = min(max(limit, 1), FetchesListedMax)
	var out []*gridpb.ChannelFetchRecord
	for _, p := range f.grid.Partitions() {
		got, err := statemachine.Fetches(p.Reader(), p.Prefix(), FetchesListedMax)
		if err != nil {
			return nil, err
		}
		for _, fr := range got {
			if (state == "" || StateOf(fr) == state) && len(out) < limit {
				out = append(out, fr)
			}
		}
	}
	return out, nil
}

// Cursors returns the cursor of every connection that runs a connector
// (a connector that has not pulled yet has none).
func (f *Fetcher) Cursors() ([]*gridpb.ConnectorCursorRecord, error) {
	var out []*gridpb.ConnectorCursorRecord
	for _, c := range f.conns {
		if c.Conn.API == nil || c.Conn.API.Pull == nil {
			continue
		}
		p := f.grid.PartitionOf(cursorKey(c.Conn.Channel, c.Conn.Name))
		cur, ok, err := statemachine.ReadCursor(p.Reader(), p.Prefix(), c.Conn.Channel, c.Conn.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, cur)
		}
	}
	return out, nil
}
