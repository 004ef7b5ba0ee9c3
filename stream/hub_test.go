package stream

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/stream/streamtest"
)

func created(order, channel string, warehouses ...string) ledger.Event {
	e := ledger.Event{Kind: ledger.KindOrder, Type: "created", Order: order, Seq: 1, Status: "pending_payment",
		Details: map[string]string{"channel": channel}}
	for _, w := range warehouses {
		e.Lines = append(e.Lines, ledger.Line{SKU: "SKU-1", Qty: 1, Warehouse: w})
	}
	return e
}

func moved(order, status string, seq uint64) ledger.Event {
	return ledger.Event{Kind: ledger.KindOrder, Type: status, Order: order, Seq: seq, Status: status}
}

func reserved(order, warehouse string) ledger.Event {
	return ledger.Event{Kind: ledger.KindStock, Type: "reserved", Order: order, SKU: "SKU-1", Warehouse: warehouse, Qty: 1}
}

// sampleTo appends three orders of two channels to l; o2's reservation is
// logged before its "created".
func sampleTo(l *streamtest.Log) *streamtest.Log {
	for _, e := range []ledger.Event{
		reserved("o1", "WH-A"), created("o1", "tmall", "WH-A"), // 0, 1
		reserved("o2", "WH-B"), created("o2", "douyin", "WH-B"), // 2, 3
		moved("o1", "paid", 2), moved("o2", "paid", 2), // 4, 5
		{Kind: ledger.KindStock, Type: "stock_set", SKU: "SKU-1", Warehouse: "WH-A", Qty: 10}, // 6
		created("o3", "tmall", "WH-B"), reserved("o3", "WH-B"), moved("o3", "cancelled", 2), // 7, 8, 9
	} {
		l.Append(e)
	}
	return l
}

func sample() *streamtest.Log { return sampleTo(streamtest.NewLog()) }

func startHub(t *testing.T, l Log, ring int) *Hub {
	t.Helper()
	h := NewHub(l, Options{PollInterval: time.Millisecond, RingEvents: ring})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for {
		if _, err := h.Head(); err == nil {
			return h
		}
		time.Sleep(time.Millisecond)
	}
}

// readAll reads everything f selects from from to the end of what the log holds.
func readAll(t *testing.T, h *Hub, from uint64, f Filter) []uint64 {
	t.Helper()
	r, err := h.NewReader(from, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []uint64
	for {
		items, err := r.Read(context.Background(), 3, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			out = append(out, it.Index)
		}
		if len(items) == 0 {
			head, _ := h.Head()
			if r.Next() == head {
				return out
			}
		}
	}
}

func TestFiltersAreTheSameFromTheRingAndFromTheLog(t *testing.T) {
	for _, c := range []struct {
		query string
		want  []uint64
	}{
		{"", []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"channel=tmall", []uint64{1, 4, 7, 8, 9}}, // 0 is before o1's created
		{"channel=douyin,tmall&kind=order", []uint64{1, 3, 4, 5, 7, 9}},
		{"warehouse=WH-B", []uint64{2, 3, 5, 7, 8, 9}},
		{"warehouse=WH-A&kind=stock", []uint64{0, 6}},
		{"status=paid", []uint64{4, 5}},
		{"order=o3&type=cancelled", []uint64{9}},
		{"type=created&order=o1,o2", []uint64{1, 3}},
	} {
		q, _ := url.ParseQuery(c.query)
		f, err := ParseFilter(q)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		// From the log (no reader while the events came), then live from the ring.
		l := sample()
		h := startHub(t, l, 4)
		if got := readAll(t, h, 0, f); !slices.Equal(got, c.want) {
			t.Errorf("%q from the log: %v, want %v", c.query, got, c.want)
		}
		live := streamtest.NewLog()
		h = startHub(t, live, 64)
		r, err := h.NewReader(0, f)
		if err != nil {
			t.Fatal(err)
		}
		sampleTo(live)
		var got []uint64
		for deadline := time.Now().Add(5 * time.Second); r.Next() < 10 && time.Now().Before(deadline); {
			items, err := r.Read(context.Background(), 100, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				got = append(got, it.Index)
			}
		}
		r.Close()
		if !slices.Equal(got, c.want) {
			t.Errorf("%q live: %v, want %v", c.query, got, c.want)
		}
	}
}

func TestScopeSeesOnlyItsChannelsOrders(t *testing.T) {
	h := startHub(t, sample(), 64)
	got := readAll(t, h, 0, Filter{Scope: []string{"douyin"}})
	if want := []uint64{3, 5}; !slices.Equal(got, want) {
		t.Fatalf("douyin scope: %v, want %v", got, want)
	}
	if got := readAll(t, h, 0, Filter{Scope: []string{}}); len(got) != 0 {
		t.Fatalf("empty scope sees %v", got)
	}
}

func TestResumeHasNoGapAndNoRepeat(t *testing.T) {
	l := streamtest.NewLog()
	h := startHub(t, l, 8) // smaller than the log: resumes read the log
	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			l.Append(created(fmt.Sprintf("o%d", i), "tmall", "WH-A"))
			if i%17 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var got []uint64
	next := uint64(0)
	for len(got) < n {
		r, err := h.NewReader(next, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		items, err := r.Read(context.Background(), 7, time.Second) // then the reader is cut
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			got = append(got, it.Index)
		}
		next = r.Next()
		r.Close()
	}
	wg.Wait()
	for i, idx := range got {
		if idx != uint64(i) {
			t.Fatalf("event %d has index %d: %v", i, idx, got)
		}
	}
}

func TestBeyondTheLog(t *testing.T) {
	h := startHub(t, sample(), 64)
	if _, err := h.NewReader(11, Filter{}); !errors.Is(err, ErrBeyond) {
		t.Fatalf("from 11 of 10: %v", err)
	}
	r, err := h.NewReader(10, Filter{})
	if err != nil {
		t.Fatalf("from the end: %v", err)
	}
	r.Close()
}

func TestParseFilterRefusesWhatItDoesNotKnow(t *testing.T) {
	for q, field := range map[string]string{
		"chanel=tmall":                       "chanel",
		"status=lost":                        "status",
		"kind=orders":                        "kind",
		"order=" + string(make([]byte, 129)): "order",
		"status=paid&warehous=1":             "warehous",
	} {
		v, err := url.ParseQuery(q)
		if err != nil {
			v = url.Values{"order": {string(make([]byte, 129))}}
		}
		_, err = ParseFilter(v)
		var fe *FilterError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%.30q: %v, want an error naming %s", q, err, field)
		}
	}
	many := url.Values{"order": {}}
	for i := 0; i <= FilterValuesMax; i++ {
		many["order"] = append(many["order"], fmt.Sprint(i))
	}
	if _, err := ParseFilter(many); err == nil {
		t.Fatal("101 orders accepted")
	}
}

// An order's facts are found however many reservations come before its
// "created" (one per line, up to the configured lines).
func TestFactsOfALargeOrderFromTheLog(t *testing.T) {
	l := streamtest.NewLog()
	for i := 0; i < 300; i++ {
		l.Append(reserved("big", fmt.Sprintf("WH-%d", i%3)))
	}
	l.Append(created("big", "jd", "WH-0", "WH-1", "WH-2"))
	l.Append(moved("big", "paid", 2))
	h := startHub(t, l, 4) // cold: nothing in memory
	got := readAll(t, h, 0, Filter{Channels: []string{"jd"}, Kinds: []string{ledger.KindOrder}})
	if want := []uint64{300, 301}; !slices.Equal(got, want) {
		t.Fatalf("jd's order events: %v, want %v", got, want)
	}
}

// The ring holds at most RingBytesMax of events: large ones keep fewer, and
// readers read the rest from the log, the same events.
func TestRingIsBoundedByBytes(t *testing.T) {
	l := streamtest.NewLog()
	h := NewHub(l, Options{PollInterval: time.Millisecond, RingEvents: 1024, RingBytesMax: 64 << 10})
	if err := h.poll(); err != nil {
		t.Fatal(err)
	}
	r, err := h.NewReader(0, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 100; i++ {
		e := moved(fmt.Sprintf("o%d", i), "paid", 2)
		e.Details = map[string]string{"note": strings.Repeat("x", 4<<10)}
		l.Append(e)
	}
	if err := h.poll(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	held, bytes := h.head-h.ringLo, h.ringBytes
	h.mu.Unlock()
	if bytes > 64<<10 || held == 0 || held >= 100 {
		t.Fatalf("ring holds %d events, %d bytes", held, bytes)
	}
	got := readAll(t, h, 0, Filter{})
	if len(got) != 100 || got[0] != 0 || got[99] != 99 {
		t.Fatalf("read %d events", len(got))
	}
}
