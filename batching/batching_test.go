package batching

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Items submitted while a lane's batch is in flight go out together as the
// next batch; a lone item goes out alone, at once; lanes do not wait for
// each other.
func TestCoalescesWhileInFlight(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	c := New(func(_ context.Context, lane uint32, batch []int) ([]int, error) {
		mu.Lock()
		batches = append(batches, append([]int(nil), batch...))
		n := len(batches)
		mu.Unlock()
		if lane == 0 && n == 1 {
			<-release // hold the first batch of lane 0 in flight
		}
		out := make([]int, len(batch))
		for i, v := range batch {
			out[i] = v * 10
		}
		return out, nil
	}, Options{BatchItemsMax: 3})
	first, err := c.Submit(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 })
	var queued []*Pending[int, int]
	for v := 2; v <= 6; v++ {
		p, err := c.Submit(0, v)
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, p)
	}
	if got := c.Queued(); got != 5 {
		t.Fatalf("queued %d, want 5", got)
	}
	// Another lane is not held up by lane 0's batch in flight.
	other, _ := c.Submit(7, 70)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := other.Wait(ctx); err != nil || v != 700 {
		t.Fatalf("other lane: %d %v", v, err)
	}
	close(release)
	if v, err := first.Wait(ctx); err != nil || v != 10 {
		t.Fatalf("first: %d %v", v, err)
	}
	for i, p := range queued {
		if v, err := p.Wait(ctx); err != nil || v != (i+2)*10 {
			t.Fatalf("item %d: %d %v", i+2, v, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// [1], [70], then the five queued in batches of at most 3: [2 3 4] [5 6].
	var lane0 [][]int
	for _, b := range batches {
		if b[0] != 70 {
			lane0 = append(lane0, b)
		}
	}
	if len(lane0) != 3 || len(lane0[1]) != 3 || len(lane0[2]) != 2 || lane0[1][0] != 2 || lane0[2][1] != 6 {
		t.Fatalf("lane 0 batches %v", lane0)
	}
}

// A failed batch fails each of its items with the error; a full queue
// refuses; a caller whose context ends stops waiting.
func TestErrorsAndLimits(t *testing.T) {
	boom := errors.New("boom")
	release := make(chan struct{})
	c := New(func(_ context.Context, _ uint32, batch []int) ([]int, error) {
		<-release
		return nil, boom
	}, Options{QueuedItemsMax: 2})
	a, _ := c.Submit(0, 1)
	waitFor(t, func() bool { return c.Queued() == 0 }) // a is in flight
	b, _ := c.Submit(0, 2)
	if _, err := c.Submit(0, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(0, 4); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a third queued item: %v, want ErrQueueFull", err)
	}
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := b.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past the deadline: %v", err)
	}
	close(release)
	ctx := context.Background()
	for _, p := range []*Pending[int, int]{a, b} {
		if _, err := p.Wait(ctx); !errors.Is(err, boom) {
			t.Fatalf("item of a failed batch: %v", err)
		}
	}
}

// A Run that answers the wrong number of results fails its batch rather
// than answering items with others' results.
func TestWrongResultCount(t *testing.T) {
	c := New(func(_ context.Context, _ uint32, batch []int) ([]int, error) { return []int{1, 2, 3}, nil }, Options{})
	p, _ := c.Submit(0, 1)
	if _, err := p.Wait(context.Background()); err == nil {
		t.Fatal("a batch of 1 answered with 3 results succeeded")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("condition never held")
}
