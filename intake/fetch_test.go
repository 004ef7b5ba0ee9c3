package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/actors/memgrid"
	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// platform is a platform's API as the fetch workflow sees it: the order
// detail of the Douyin fixture under the asked id, failing the ids in
// fail that many times first; changed orders from a list of (time, id).
type platform struct {
	mu      sync.Mutex
	order   []byte
	details []string
	fail    map[string]int
	garbage map[string]bool
	// missing ids answer missingErr.
	missing    map[string]bool
	missingErr error
	changes    []change
	lists      [][2]time.Time
	pageLen    int
}

type change struct {
	at time.Time
	id string
}

func (p *platform) OrderDetail(_ context.Context, id string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.details = append(p.details, id)
	if p.fail[id] > 0 {
		p.fail[id]--
		return nil, errors.New("throttled: 请求过于频繁")
	}
	if p.missing[id] {
		return nil, p.missingErr
	}
	if p.garbage[id] {
		return []byte(`{"shop_order_detail":{"order_id":"` + id + `"}}`), nil
	}
	return bytes.ReplaceAll(p.order, []byte("6920164531297438473"), []byte(id)), nil
}

func (p *platform) ChangedOrders(_ context.Context, from, to time.Time, page string) ([]string, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if page == "" {
		p.lists = append(p.lists, [2]time.Time{from.UTC(), to.UTC()})
	}
	var ids []string
	for _, c := range p.changes {
		if !c.at.Before(from) && c.at.Before(to) {
			ids = append(ids, c.id)
		}
	}
	start := 0
	if page != "" {
		fmt.Sscan(page, &start)
	}
	end := min(start+p.pageLen, len(ids))
	next := ""
	if end < len(ids) {
		next = fmt.Sprint(end)
	}
	return ids[start:end], next, nil
}

type fetchHarness struct {
	fetcher  *Fetcher
	platform *platform
	creator  *recordingCreator
	now      time.Time
}

func newFetchHarness(t *testing.T, pull *channels.Pull) *fetchHarness {
	t.Helper()
	order, err := os.ReadFile("../channels/testdata/douyin/order.json")
	if err != nil {
		t.Fatal(err)
	}
	grid, err := memgrid.New(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { grid.Close() })
	h := &fetchHarness{platform: &platform{order: order, fail: map[string]int{}, garbage: map[string]bool{}, pageLen: 2},
		creator: &recordingCreator{},
		// Ahead of the grid's clock (which stamps when fetches are queued).
		now: time.Now().UTC().Add(time.Minute).Round(0).Truncate(time.Second)}
	flow := NewChannelFlow(New(h.creator, Options{}), &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}},
		channelOptions())
	conn := &channels.Connection{Channel: "douyin", Name: "flagship", API: &channels.API{BaseURL: "http://platform.test", Pull: pull}}
	h.fetcher, err = NewFetcher(grid, flow, FetchOptions{
		Connections: []FetchConnection{{Conn: conn, Adapter: channels.Adapters["douyin"], API: h.platform}},
		Check:       func(*pb.CreateOrderRequest) error { return nil },
		AttemptsMax: 3, BackoffMin: time.Second, BackoffMax: 4 * time.Second,
		Now: func() time.Time { return h.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *fetchHarness) queue(t *testing.T, ids ...string) QueueResult {
	t.Helper()
	var ns []channels.Notice
	for _, id := range ids {
		ns = append(ns, channels.Notice{OrderID: id, Tag: "100"})
	}
	res, err := h.fetcher.Queue(context.Background(), "douyin", "flagship", ns)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (h *fetchHarness) fetches(t *testing.T, state FetchState) map[string]*gridpb.ChannelFetchRecord {
	t.Helper()
	fs, err := h.fetcher.Fetches(state, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*gridpb.ChannelFetchRecord{}
	for _, f := range fs {
		out[f.OrderId] = f
	}
	return out
}

// A push's notices are queued once, fetched once, taken through the
// channel workflow, and settled; a repeated notice is counted, not fetched.
func TestFetchQueuesOnceAndTakes(t *testing.T) {
	h := newFetchHarness(t, nil)
	ctx := context.Background()
	if res := h.queue(t, "1001", "1002", "1001"); res.Queued != 2 || res.Repeated != 0 {
		t.Fatalf("queue: %+v", res)
	}
	if res := h.queue(t, "1001"); res.Queued != 0 || res.Repeated != 1 {
		t.Fatalf("repeat: %+v", res)
	}
	h.fetcher.Round(ctx)
	slices.Sort(h.platform.details)
	if !slices.Equal(h.platform.details, []string{"1001", "1002"}) {
		t.Fatalf("fetched %v", h.platform.details)
	}
	done := h.fetches(t, FetchDone)
	want := fetchOrderID("douyin", "1001")
	if f := done["1001"]; f == nil || f.GridOrderId != want || f.Notices != 2 || f.Attempts != 1 {
		t.Fatalf("done: %+v", done)
	}
	if res := h.queue(t, "1002"); res.Repeated != 1 {
		t.Fatalf("notice after done: %+v", res)
	}
	h.fetcher.Round(ctx)
	if len(h.platform.details) != 2 {
		t.Fatalf("a settled fetch was fetched again: %v", h.platform.details)
	}
	if _, err := h.fetcher.Queue(ctx, "douyin", "other", []channels.Notice{{OrderID: "1"}}); !errors.Is(err, ErrNoAPI) {
		t.Fatalf("unknown connection: %v", err)
	}
}

// A failed fetch is due again after its backoff, not before; it fails for
// good after AttemptsMax, or at once when the platform's answer does not map.
func TestFetchRetriesWithBackoffThenFails(t *testing.T) {
	h := newFetchHarness(t, nil)
	ctx := context.Background()
	h.platform.fail["2001"] = 1
	h.platform.fail["2002"] = 10
	h.platform.garbage["2003"] = true
	h.platform.missing = map[string]bool{"2004": true}
	errUnknown := errors.New("no such order")
	h.platform.missingErr = errUnknown
	h.fetcher.opts.AttemptsFor = func(err error) uint32 {
		if errors.Is(err, errUnknown) {
			return 1 // the platform says it does not exist: one try
		}
		return 0
	}
	h.queue(t, "2001", "2002", "2003", "2004")
	h.fetcher.Round(ctx)
	failed := h.fetches(t, FetchFailed)
	if len(failed) != 2 || failed["2003"] == nil || failed["2003"].Attempts != 1 {
		t.Fatalf("an unmappable order is failed at once: %+v", failed)
	}
	if f := failed["2004"]; f == nil || f.Attempts != 1 || !strings.Contains(f.LastError, "no such order") {
		t.Fatalf("an order the platform does not know fails after its kind's bound: %+v", f)
	}
	calls := len(h.platform.details)
	h.fetcher.Round(ctx)
	if len(h.platform.details) != calls {
		t.Fatalf("retried before the backoff: %v", h.platform.details)
	}
	for range 4 {
		h.now = h.now.Add(5 * time.Second)
		h.fetcher.Round(ctx)
	}
	if done := h.fetches(t, FetchDone); done["2001"] == nil || done["2001"].Attempts != 2 {
		t.Fatalf("2001 after a retry: %+v", done)
	}
	f := h.fetches(t, FetchFailed)["2002"]
	if f == nil || f.Attempts != 3 || f.LastError == "" {
		t.Fatalf("2002 after AttemptsMax: %+v", f)
	}
	// 2001's creation and its "paid" event (the fixture is paid on Douyin).
	if n := len(h.creator.batches); n != 2 {
		t.Fatalf("%d batches, want 2001's creation and its paid event: %v", n, h.creator.batches)
	}
}

// A connector walks the changed orders in windows from its cursor,
// reaching back an overlap; an order seen in two windows is fetched once;
// the cursor lives in the grid.
func TestConnectorPullsFromCursor(t *testing.T) {
	h := newFetchHarness(t, &channels.Pull{OverlapMs: 60_000, StartLookbackMs: int64(time.Hour / time.Millisecond), WindowMaxMs: int64(30 * time.Minute / time.Millisecond)})
	ctx := context.Background()
	start := h.now
	for i, m := range []time.Duration{-50, -40, -20, -10, -1} {
		h.platform.changes = append(h.platform.changes, change{at: start.Add(m * time.Minute), id: fmt.Sprint(3000 + i)})
	}
	if err := h.fetcher.Pull(ctx, "douyin", "flagship"); err != nil {
		t.Fatal(err)
	}
	// Two windows (an hour back, 30 minutes each), each reaching back a minute.
	want := [][2]time.Time{{start.Add(-61 * time.Minute), start.Add(-30 * time.Minute)}, {start.Add(-31 * time.Minute), start}}
	if !slices.Equal(h.platform.lists, want) {
		t.Fatalf("windows %v, want %v", h.platform.lists, want)
	}
	cursors, err := h.fetcher.Cursors()
	if err != nil || len(cursors) != 1 || cursors[0].CursorUnixNano != start.UnixNano() || cursors[0].Pulls != 2 || cursors[0].OrdersSeen != 5 {
		t.Fatalf("cursor %+v %v", cursors, err)
	}
	// A change within the overlap is listed again, queued once.
	h.now = start.Add(2 * time.Minute)
	h.platform.changes = append(h.platform.changes, change{at: start.Add(time.Minute), id: "3009"})
	if err := h.fetcher.Pull(ctx, "douyin", "flagship"); err != nil {
		t.Fatal(err)
	}
	if last := h.platform.lists[len(h.platform.lists)-1]; last != [2]time.Time{start.Add(-time.Minute), h.now} {
		t.Fatalf("third window %v", last)
	}
	h.fetcher.Round(ctx)
	pending := h.fetches(t, "")
	if len(pending) != 6 || pending["3004"].Notices != 2 {
		t.Fatalf("fetches %+v", pending)
	}
	if len(h.platform.details) != 6 {
		t.Fatalf("fetched %v", h.platform.details)
	}
}

// hanging is a platform that answers nothing until released.
type hanging struct{ release chan struct{} }

func (h hanging) OrderDetail(ctx context.Context, _ string) ([]byte, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return nil, errors.New("released")
}

func (hanging) ChangedOrders(context.Context, time.Time, time.Time, string) ([]string, string, error) {
	return nil, "", nil
}

// A platform that hangs holds only its own connection's fetches: another
// connection's are taken meanwhile, and a second round does not attempt
// the hanging fetch twice.
func TestFetchHangingPlatformHoldsOnlyItsOwn(t *testing.T) {
	h := newFetchHarness(t, nil)
	slow := hanging{release: make(chan struct{})}
	conn := &channels.Connection{Channel: "douyin", Name: "slow", API: &channels.API{BaseURL: "http://slow.test"}}
	h.fetcher.conns["douyin/slow"] = &FetchConnection{Conn: conn, Adapter: channels.Adapters["douyin"], API: slow}
	h.fetcher.sems["douyin/slow"] = make(chan struct{}, 1)
	ctx := context.Background()
	if _, err := h.fetcher.Queue(ctx, "douyin", "slow", []channels.Notice{{OrderID: "5001"}, {OrderID: "5002"}}); err != nil {
		t.Fatal(err)
	}
	h.queue(t, "5003")
	rounds := make(chan struct{})
	go func() { h.fetcher.Round(ctx); close(rounds) }()
	deadline := time.Now().Add(10 * time.Second)
	for h.fetches(t, FetchDone)["5003"] == nil {
		if time.Now().After(deadline) {
			t.Fatal("a hanging platform held another connection's fetch")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.fetcher.Round(ctx) // returns: the hanging fetches are in flight, not attempted again
	close(slow.release)
	<-rounds
	pending := h.fetches(t, FetchPending)
	// One attempt of the first; the second waited for a later round (the
	// connection's bound is 1).
	if pending["5001"].GetAttempts() != 1 || pending["5002"].GetAttempts() != 0 {
		t.Fatalf("hanging fetches after release: %+v", pending)
	}
}

// limitedPlatform is a platform whose windows are at most 30 minutes and
// end 3 minutes behind now (Pinduoduo's), failing its first listing.
type limitedPlatform struct {
	*platform
	failFirst bool
}

func (limitedPlatform) WindowLimits() (time.Duration, time.Duration) {
	return 30 * time.Minute, 3 * time.Minute
}

func (p *limitedPlatform) ChangedOrders(ctx context.Context, from, to time.Time, page string) ([]string, string, error) {
	if p.failFirst {
		p.failFirst = false
		return nil, "", errors.New("system busy")
	}
	return p.platform.ChangedOrders(ctx, from, to, page)
}

// A connector's windows keep to the platform's limits (overlap included),
// and a first pull that fails leaves the cursor at its start, not at zero.
func TestConnectorKeepsPlatformLimitsAndAFailedStart(t *testing.T) {
	h := newFetchHarness(t, &channels.Pull{OverlapMs: 5 * 60_000, StartLookbackMs: int64(time.Hour / time.Millisecond), WindowMaxMs: int64(time.Hour / time.Millisecond)})
	lp := &limitedPlatform{platform: h.platform, failFirst: true}
	h.fetcher.conns["douyin/flagship"].API = lp
	ctx := context.Background()
	start := h.now
	if err := h.fetcher.Pull(ctx, "douyin", "flagship"); err == nil {
		t.Fatal("a failing listing did not fail the pull")
	}
	cursors, err := h.fetcher.Cursors()
	if err != nil || len(cursors) != 1 || cursors[0].CursorUnixNano != start.Add(-3*time.Minute-time.Hour).UnixNano() || cursors[0].LastError == "" {
		t.Fatalf("cursor after a failed first pull: %+v %v", cursors, err)
	}
	if err := h.fetcher.Pull(ctx, "douyin", "flagship"); err != nil {
		t.Fatal(err)
	}
	for _, w := range h.platform.lists {
		if span := w[1].Sub(w[0]); span > 30*time.Minute {
			t.Fatalf("window %v spans %s, more than the platform's 30 minutes", w, span)
		}
		if w[1].After(start.Add(-3 * time.Minute)) {
			t.Fatalf("window %v ends less than 3 minutes before now", w)
		}
	}
	if last := h.platform.lists[len(h.platform.lists)-1]; !last[1].Equal(start.Add(-3 * time.Minute)) {
		t.Fatalf("the last window ends at %s", last[1])
	}
}

// storingCreator answers a second creation of an order with another body
// as the grid does: IDEMPOTENCY_CONFLICT with the stored order.
type storingCreator struct {
	recordingCreator // its TransitionBatch
	mu               sync.Mutex
	hashes           map[string][]byte
}

func (c *storingCreator) CreateBatch(_ context.Context, orders []*gridpb.CreateOrderGrainRequest) []actors.BatchAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]actors.BatchAnswer, len(orders))
	for i, o := range orders {
		h := actors.RequestHash(o.Request)
		stored := &gridpb.OrderRecord{Id: o.OrderId, RequestHash: h}
		switch prev, ok := c.hashes[o.OrderId]; {
		case !ok:
			c.hashes[o.OrderId] = h
			out[i].Response = &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_OK, Order: stored}
		case string(prev) == string(h):
			out[i].Response = &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Order: stored}
		default:
			stored.RequestHash = prev
			out[i].Response = &gridpb.OrderGrainResponse{Outcome: gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: stored}
		}
	}
	return out
}

// An attempt that created the order and then failed is followed by one
// that reads the platform again: the order has moved on there (another
// status), so its body differs; the fetch is still done, as that order.
func TestFetchTakesTheOrderAnEarlierAttemptCreated(t *testing.T) {
	h := newFetchHarness(t, nil)
	grid := &channelGrid{purchases: map[string]*gridpb.PurchaseRecord{}, prices: map[string]*gridpb.ChannelPrice{}, failOn: "price"}
	h.fetcher.flow = NewChannelFlow(New(&storingCreator{hashes: map[string][]byte{}}, Options{}), grid, channelOptions())
	ctx := context.Background()
	h.queue(t, "6001")
	h.fetcher.Round(ctx)
	if f := h.fetches(t, FetchPending)["6001"]; f == nil || f.Attempts != 1 || !strings.Contains(f.LastError, "leader lost") {
		t.Fatalf("after a failed step: %+v", f)
	}
	grid.mu.Lock()
	grid.failOn = ""
	grid.mu.Unlock()
	h.platform.mu.Lock()
	h.platform.order = bytes.Replace(h.platform.order, []byte(`"order_status": 2`), []byte(`"order_status": 3`), 1)
	h.platform.mu.Unlock()
	h.now = h.now.Add(10 * time.Second)
	h.fetcher.Round(ctx)
	if f := h.fetches(t, FetchDone)["6001"]; f == nil || f.GridOrderId != fetchOrderID("douyin", "6001") {
		t.Fatalf("the order an earlier attempt created: %+v", h.fetches(t, ""))
	}
}
