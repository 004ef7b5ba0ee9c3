package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/stream/streamtest"
)

// appendOrders appends orders (a reservation, a created, a payment each)
// until l holds at least n events.
func appendOrders(l *streamtest.Log, n int) {
	for i := 0; ; i++ {
		if size, _ := l.Size(); size >= uint64(n) {
			return
		}
		o := fmt.Sprintf("o_%016x", i)
		l.Append(reserved(o, "WH-A"))
		l.Append(created(o, "douyin", "WH-A"))
		l.Append(moved(o, "paid", 2))
	}
}

// startedHub is a hub over l that started at its (empty) head and has a
// reader: it decodes what comes next.
func startedHub(b *testing.B, l *streamtest.Log, opts Options) *Hub {
	h := NewHub(l, opts)
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
	h.readers = 1
	return h
}

// BenchmarkHubPoll is the hub's cost per event: read the leaf, decode it,
// put it in the ring (what every node pays while anyone reads the stream).
func BenchmarkHubPoll(b *testing.B) {
	l := streamtest.NewLog()
	h := startedHub(b, l, Options{})
	appendOrders(l, b.N)
	b.ResetTimer()
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReaderChannelFilter is one reader's cost per event read from
// the ring with a channel filter (each order's facts from its created).
func BenchmarkReaderChannelFilter(b *testing.B) {
	l := streamtest.NewLog()
	h := startedHub(b, l, Options{RingEvents: 1 << 22, RingBytesMax: 1 << 40})
	appendOrders(l, b.N)
	if err := h.poll(); err != nil {
		b.Fatal(err)
	}
	r, err := h.NewReader(0, Filter{Channels: []string{"douyin"}})
	if err != nil {
		b.Fatal(err)
	}
	size, _ := l.Size()
	b.ResetTimer()
	for r.Next() < size {
		if _, err := r.Read(context.Background(), 256, time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}
