package harness

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Limits of the load generator.
const (
	// sendersMax bounds the goroutines sending in an open-loop run: beyond
	// it the generator counts intended sends as dropped rather than pile up.
	sendersMax = 4096
	// tickOpenLoop is how often the open-loop scheduler releases the sends
	// that are due.
	tickOpenLoop = time.Millisecond
	// requestTimeout bounds one request.
	requestTimeout = 30 * time.Second
)

// Work is what a run sends: Next makes the i-th order (or batch), After
// runs what follows an accepted order (the lifecycle's transitions).
type Work struct {
	Next  func(i int64) []*pb.CreateOrderRequest
	After func(ctx context.Context, req *pb.CreateOrderRequest, o Outcome)
}

// send sends one unit of work and records it.
// The end of a run stops new sends; a send in flight gets requestTimeout to
// finish, so the last second is not a wall of cancelled requests.
func send(ctx context.Context, t Transport, w Work, rec *Recorder, i int64, intended time.Time, track func(*pb.CreateOrderRequest, Outcome)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	reqs := w.Next(i)
	rec.Sent(time.Now(), len(reqs))
	var outs []Outcome
	if len(reqs) == 1 {
		outs = []Outcome{t.Create(ctx, reqs[0])}
	} else {
		outs = t.CreateBatch(ctx, reqs)
	}
	done := time.Now()
	for k, o := range outs {
		rec.Record(intended, done, o)
		track(reqs[k], o)
		if w.After != nil && (o.Class == Created) {
			w.After(ctx, reqs[k], o)
		}
	}
}

// closedLoop runs concurrency senders, each sending as soon as its last
// answer came, until ctx ends.
func closedLoop(ctx context.Context, ts []Transport, concurrency int, w Work, rec *Recorder, track func(*pb.CreateOrderRequest, Outcome)) {
	var seq atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < concurrency; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			t := ts[c%len(ts)]
			for ctx.Err() == nil {
				send(ctx, t, w, rec, seq.Add(1), time.Now(), track)
			}
		}(c)
	}
	wg.Wait()
}

// Rate is an arrival rate (sends per second) at an offset into the run.
type Rate func(at time.Duration) float64

// openLoop sends at the rate's intended times, whatever the answers do,
// with at most sendersMax in flight, until ctx ends.
func openLoop(ctx context.Context, ts []Transport, rate Rate, w Work, rec *Recorder, track func(*pb.CreateOrderRequest, Outcome)) {
	start := rec.start
	due := make(chan time.Time, sendersMax)
	var seq atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < sendersMax; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			t := ts[c%len(ts)]
			for intended := range due {
				send(ctx, t, w, rec, seq.Add(1), intended, track)
			}
		}(c)
	}
	tick := time.NewTicker(tickOpenLoop)
	defer tick.Stop()
	owed := 0.0 // sends due, in fractions, integrated over the rate
	last := start
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case now := <-tick.C:
			// Each due send gets its own intended time, spread over the tick.
			dt := now.Sub(last)
			r := rate(now.Sub(start))
			n := owed + r*dt.Seconds()
			whole := math.Floor(n)
			owed = n - whole
			for k := 0; k < int(whole); k++ {
				intended := last.Add(time.Duration(float64(dt) * (float64(k) + 1) / whole))
				select {
				case due <- intended:
				default:
					rec.Dropped(int64(whole) - int64(k))
					k = int(whole)
				}
			}
			last = now
		}
	}
	close(due)
	wg.Wait()
}
