package cluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkPropose measures committed proposals per second through one
// partition with 64 concurrent proposers (real Pebble on disk, fsync).
//
//	go test ./cluster -run '^$' -bench Propose -benchtime 20000x
func BenchmarkPropose(b *testing.B) {
	for _, parts := range []int{1, 8} {
		b.Run(map[int]string{1: "partitions=1", 8: "partitions=8"}[parts], func(b *testing.B) {
			h, err := Open(Options{DataDir: b.TempDir(), RaftAddr: freeAddr(b), Partitions: parts, Logger: testLogger(),
				HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond},
				func(_ uint32, prefix []byte) StateMachine { return &counter{prefix: prefix} })
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			ctx := context.Background()
			if err := h.WaitReady(ctx); err != nil {
				b.Fatal(err)
			}
			const proposers = 64
			work := make(chan int, proposers)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < proposers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						p := h.Partitions()[i%parts]
						if _, err := p.Propose(ctx, []byte("k")); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			for i := 0; i < b.N; i++ {
				work <- i
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
		})
	}
}
