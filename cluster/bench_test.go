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

// BenchmarkRead measures one partition read on a single-node leader: the
// state alone (local), and linearizable (a read index first), each from 1
// and 64 concurrent readers.
//
//	go test ./cluster -run '^$' -bench Read -benchtime 20000x
func BenchmarkRead(b *testing.B) {
	h, err := Open(Options{DataDir: b.TempDir(), RaftAddr: freeAddr(b), Partitions: 1, Logger: testLogger(),
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
	p := h.Partitions()[0]
	if _, err := p.Propose(ctx, []byte("k")); err != nil {
		b.Fatal(err)
	}
	key := append(append([]byte{}, p.Prefix...), 'k')
	for _, readers := range []int{1, 64} {
		for _, mode := range []string{"local", "linearizable"} {
			b.Run(mode+"/readers="+map[int]string{1: "1", 64: "64"}[readers], func(b *testing.B) {
				read := func() error {
					if mode == "local" {
						_, _, err := LocalReader{h.DB()}.Get(key)
						return err
					}
					_, _, err := p.Get(ctx, key)
					return err
				}
				work := make(chan struct{}, readers)
				var wg sync.WaitGroup
				b.ResetTimer()
				for w := 0; w < readers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range work {
							if err := read(); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				for i := 0; i < b.N; i++ {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
			})
		}
	}
}
