package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/actors/memgrid"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/stream"
	"github.com/ordergrid/ordergrid/stream/streamtest"
)

// appendOrders appends n orders' "created" events of a channel to l,
// numbered from first.
func appendOrders(l *streamtest.Log, channel string, first, n int) {
	for i := first; i < first+n; i++ {
		l.Append(ledger.Event{Kind: ledger.KindOrder, Type: "created", Order: fmt.Sprintf("o%d", i), Seq: 1, Status: "pending_payment",
			Details: map[string]string{"channel": channel}})
	}
}

type harness struct {
	t    *testing.T
	grid *memgrid.Grid
	log  *streamtest.Log
	hub  *stream.Hub
	opts Options
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	grid, err := memgrid.New(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = grid.Close() })
	l := streamtest.NewLog()
	hub := stream.NewHub(l, stream.Options{PollInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for {
		if _, err := hub.Head(); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return &harness{t: t, grid: grid, log: l, hub: hub, opts: Options{SecretKey: make([]byte, 32), Self: []string{"127.0.0.1:7070", "[::]:7071"},
		PollInterval: 20 * time.Millisecond, AttemptsMax: 3, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		AttemptTimeout: 300 * time.Millisecond}}
}

// start runs a service until the returned stop (or the test's end).
func (h *harness) start() (*Service, func()) {
	h.t.Helper()
	s, err := New(h.grid, h.hub, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	h.t.Cleanup(stop)
	return s, stop
}

// receiver is a real HTTP receiver on loopback that checks signatures.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret []byte
	// answer decides each request's status (nil: 200).
	answer     func(n int) int
	requests   int
	deliveries []string
	indexes    []uint64
	orders     []string
	badSig     int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests++
		if rc.answer != nil {
			if code := rc.answer(rc.requests); code != http.StatusOK {
				w.WriteHeader(code)
				return
			}
		}
		if err := Verify(rc.secret, r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil ||
			r.Header.Get("Content-Type") != "application/json" {
			rc.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var got struct {
			Webhook string `json:"webhook"`
			Events  []struct {
				Index uint64       `json:"index"`
				Event ledger.Event `json:"event"`
			} `json:"events"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Webhook != r.Header.Get(HeaderWebhook) {
			t.Errorf("body %s: %v", body, err)
		}
		rc.deliveries = append(rc.deliveries, r.Header.Get(HeaderDelivery))
		for _, e := range got.Events {
			rc.indexes = append(rc.indexes, e.Index)
			rc.orders = append(rc.orders, e.Event.Order)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) snapshot() (indexes []uint64, deliveries []string, requests int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.indexes), slices.Clone(rc.deliveries), rc.requests
}

func (rc *receiver) waitFor(n int, within time.Duration) []uint64 {
	rc.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, _, _ := rc.snapshot()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("received %d events, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func create(t *testing.T, s *Service, rc *receiver, f stream.Filter) *Created {
	t.Helper()
	c, err := s.Create(context.Background(), Spec{URL: rc.srv.URL + "/hook", Filter: f, Owner: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = []byte(c.Secret)
	rc.mu.Unlock()
	return c
}

func TestDeliversInLogOrderSignedAndResumesFromTheStoredCursor(t *testing.T) {
	h := newHarness(t)
	appendOrders(h.log, "tmall", 0, 3) // before the webhook: not delivered
	for head, _ := h.hub.Head(); head < 3; head, _ = h.hub.Head() {
		time.Sleep(time.Millisecond)
	}
	s, stop := h.start()
	rc := newReceiver(t)
	c := create(t, s, rc, stream.Filter{Channels: []string{"tmall"}})
	if !strings.HasPrefix(c.Secret, SecretPrefix) || c.Cursor != 3 {
		t.Fatalf("created %+v", c)
	}
	appendOrders(h.log, "tmall", 3, 150)
	appendOrders(h.log, "douyin", 153, 10) // filtered out
	appendOrders(h.log, "tmall", 163, 100)
	got := rc.waitFor(250, 10*time.Second)
	if !slices.IsSorted(got) || len(got) != 250 || got[0] != 3 {
		t.Fatalf("indexes %v", got)
	}
	_, deliveries, _ := rc.snapshot()
	if len(deliveries) < 3 || !strings.HasPrefix(deliveries[0], c.ID+":3-") {
		t.Fatalf("deliveries %v", deliveries)
	}
	if rc.badSig != 0 {
		t.Fatalf("%d bad signatures", rc.badSig)
	}
	// The cursor reaches the head (the filtered tail moved over too).
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, err := s.Get(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w.Cursor == 263 && w.LagEvents == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d lag %d", w.Cursor, w.LagEvents)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A node stopped (or a partition's leader gone): the next one starts
	// from the stored cursor, nothing lost.
	stop()
	appendOrders(h.log, "tmall", 263, 20)
	h.start()
	got = rc.waitFor(270, 10*time.Second)
	for i, idx := range got {
		want := uint64(i + 3)
		if i >= 150 {
			want = uint64(i + 13) // past the 10 douyin orders
		}
		if idx != want {
			t.Fatalf("event %d has index %d: %v", i, idx, got)
		}
	}
}

func TestFailingReceiverDeadLettersThenTheNextBatchGoesAndReplayDelivers(t *testing.T) {
	h := newHarness(t)
	h.opts.BatchEventsMax = 5
	s, _ := h.start()
	rc := newReceiver(t)
	failing := true
	rc.answer = func(int) int {
		if failing {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	c := create(t, s, rc, stream.Filter{})
	appendOrders(h.log, "tmall", 0, 5)
	// Three attempts at [0,5), then a dead letter.
	deadline := time.Now().Add(5 * time.Second)
	for {
		dls, err := s.DeadLetters(c.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) == 1 {
			if d := dls[0]; d.From != 0 || d.To != 5 || d.Attempts != 3 || d.LastError != "HTTP 500" || d.State != "dead" {
				t.Fatalf("dead letter %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, n := rc.snapshot(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	rc.mu.Lock()
	failing = false
	rc.mu.Unlock()
	appendOrders(h.log, "tmall", 5, 5)
	if got := rc.waitFor(5, 5*time.Second); got[0] != 5 {
		t.Fatalf("the next batch: %v", got)
	}
	if n, err := s.Replay(context.Background(), c.ID, nil, "admin"); err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	got := rc.waitFor(10, 5*time.Second)
	if !slices.Equal(got[5:], []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("replayed %v", got)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		dls, _ := s.DeadLetters(c.ID, 10)
		if dls[0].State == "replayed" && dls[0].ReplayedAt != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letter %+v", dls[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Replay(context.Background(), c.ID, new(uint64(7)), "admin"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replay of no dead letter: %v", err)
	}
}

func TestBackoffGrowsWithFullJitterUpToItsCap(t *testing.T) {
	s := &Service{opts: Options{BackoffBase: time.Second, BackoffMax: 5 * time.Minute}}
	for attempt, bound := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: 5 * time.Minute, 80: 5 * time.Minute} {
		var most time.Duration
		for range 2000 {
			d := s.backoff(attempt)
			if d < 0 || d > bound {
				t.Fatalf("attempt %d: %s beyond [0, %s]", attempt, d, bound)
			}
			most = max(most, d)
		}
		if most < bound/2 {
			t.Fatalf("attempt %d: at most %s of %s: no jitter over the range", attempt, most, bound)
		}
	}
}

func TestHangingReceiverDoesNotHoldBackAnotherWebhook(t *testing.T) {
	h := newHarness(t)
	// An attempt on the hanging receiver lasts a minute: a webhook held
	// back by it would get nothing for that long.
	h.opts.AttemptTimeout = time.Minute
	s, _ := h.start()
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	if _, err := s.Create(context.Background(), Spec{URL: hanging.URL, Owner: "admin"}); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	create(t, s, rc, stream.Filter{})
	for i := range 5 {
		appendOrders(h.log, "tmall", i*10, 10)
		time.Sleep(20 * time.Millisecond)
	}
	rc.waitFor(50, 20*time.Second)
}

func TestCreateRefusesBadInputNamingTheField(t *testing.T) {
	h := newHarness(t)
	h.opts.WebhooksMax = 1
	s, _ := h.start()
	for _, c := range []struct {
		spec  Spec
		field string
	}{
		{Spec{URL: "ftp://example.com/x"}, "url"},
		{Spec{URL: "/relative"}, "url"},
		{Spec{URL: "http://user:pw@example.com/"}, "url"},
		{Spec{URL: "http://" + strings.Repeat("a", URLBytesMax) + ".com/"}, "url"},
		{Spec{URL: "http://127.0.0.1:7070/hook"}, "url"},
		{Spec{URL: "http://localhost:7070/hook"}, "url"},
		{Spec{URL: "http://[::1]:7071/"}, "url"},
		{Spec{URL: "http://0.0.0.0:7071/"}, "url"},
		{Spec{URL: "http://127.0.0.1:9/", Filter: stream.Filter{Kinds: []string{"bogus"}}}, "filter.kind"},
		{Spec{URL: "http://127.0.0.1:9/", Filter: stream.Filter{Statuses: []string{"nope"}}}, "filter.status"},
		{Spec{URL: "http://127.0.0.1:9/", Description: strings.Repeat("x", DescriptionBytesMax+1)}, "description"},
		{Spec{URL: "http://127.0.0.1:9/", Secret: "short"}, "secret"},
	} {
		_, err := s.Create(context.Background(), c.spec)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a problem naming %s", c.spec, err, c.field)
		}
	}
	if ws, err := s.List(); err != nil || len(ws) != 0 {
		t.Fatalf("created %v %v", ws, err)
	}
	// Loopback on another port is a receiver like any.
	if _, err := s.Create(context.Background(), Spec{URL: "http://127.0.0.1:7072/hook", Secret: "a-secret-of-enough-bytes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(context.Background(), Spec{URL: "http://127.0.0.1:7072/hook"}); !errors.Is(err, ErrLimit) {
		t.Fatalf("beyond the limit: %v", err)
	}
	ws, _ := s.List()
	if err := s.Delete(context.Background(), ws[0].ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ws[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
}

func TestSignatureVerifies(t *testing.T) {
	secret, body, now := []byte("whsec_x"), []byte(`{"webhook":"wh_1","events":[]}`), time.Unix(1_800_000_000, 0)
	sig := Sign(secret, now, body)
	if !strings.HasPrefix(sig, "t=1800000000,v1=") {
		t.Fatal(sig)
	}
	if err := Verify(secret, sig, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func() error{
		func() error { return Verify([]byte("other"), sig, body, now, time.Minute) },
		func() error { return Verify(secret, sig, append(body, ' '), now, time.Minute) },
		func() error { return Verify(secret, sig, body, now.Add(time.Hour), time.Minute) },
		func() error { return Verify(secret, "v1=00", body, now, time.Minute) },
	} {
		if bad() == nil {
			t.Fatal("a bad signature verified")
		}
	}
}

func TestScopedWebhookSeesOnlyItsChannels(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start()
	rc := newReceiver(t)
	c, err := s.Create(context.Background(), Spec{URL: rc.srv.URL, Owner: "partner", Scope: []string{"douyin"}})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = []byte(c.Secret)
	rc.mu.Unlock()
	appendOrders(h.log, "tmall", 0, 5)
	appendOrders(h.log, "douyin", 5, 3)
	got := rc.waitFor(3, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !slices.Equal(got, []uint64{5, 6, 7}) || len(rc.indexes) != 3 || !slices.Equal(rc.orders, []string{"o5", "o6", "o7"}) {
		t.Fatalf("scoped delivery: %v %v", rc.indexes, rc.orders)
	}
}
