package stream

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchLog is a log of n orders: a reservation, a created, a payment each.
func benchLog(n int) *memLog {
	l := newMemLog()
	for i := 0; i < n; i++ {
		o := fmt.Sprintf("o_%016x", i)
		l.add(reserved(o, "WH-A"))
		l.add(created(o, "douyin", "WH-A"))
		l.add(moved(o, "paid", 2))
	}
	return l
}

// BenchmarkHubPoll is the hub's cost per event: read the leaf, decode it,
// put it in the ring (what every node pays while anyone reads the stream).
func BenchmarkHubPoll(b *testing.B) {
	src := benchLog(max(1, b.N/3+1))
	l := newMemLog()
	h := NewHub(l, Options{})
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
	h.readers = 1
	l.leaves, l.orders = src.leaves[:b.N], src.orders
	b.ResetTimer()
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReaderChannelFilter is one reader's cost per event read from
// the ring with a channel filter (each order's facts from its created).
func BenchmarkReaderChannelFilter(b *testing.B) {
	src := benchLog(max(1, b.N/3+1))
	l := newMemLog()
	h := NewHub(l, Options{RingEvents: 1 << 22})
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
	h.readers = 1
	l.leaves, l.orders = src.leaves[:b.N], src.orders
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
	r, err := h.NewReader(0, Filter{Channels: []string{"douyin"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for r.Next() < uint64(b.N) {
		if _, err := r.Read(context.Background(), 256, time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}
