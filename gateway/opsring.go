package gateway

import (
	"math"
	"sort"
	"sync"
	"time"
)

// The gateway's own observations for the ops summary: per second, the
// orders it accepted, its 429 answers and the latency of the API requests
// it admitted, over the last opsWindowSeconds, in a fixed ring (no growth,
// no goroutine: a second is closed by the first observation or read after
// it).

const (
	// opsWindowSeconds is how far back the ring reaches: ten minutes.
	opsWindowSeconds = 600
	// latencyBucketsCount and the bounds below bound the latency histogram
	// of the current second: upper bounds from latencyBucketFirst, each
	// latencyBucketGrowth times the one before (about 10.7 s at the last
	// finite one); a percentile is its bucket's upper bound, so it is
	// at most 25% high.
	latencyBucketsCount = 56
	latencyBucketFirst  = 50 * time.Microsecond
	latencyBucketGrowth = 1.25
)

// latencyBounds are the histogram's upper bounds; the last bucket is
// everything above the one before it.
var latencyBounds = func() (b [latencyBucketsCount]time.Duration) {
	for i := range b {
		b[i] = time.Duration(float64(latencyBucketFirst) * math.Pow(latencyBucketGrowth, float64(i)))
	}
	b[latencyBucketsCount-1] = time.Duration(math.MaxInt64)
	return b
}()

// opsSecond is one second of observations.
type opsSecond struct {
	unix int64 // the second, unix seconds
	// accepted are orders accepted (created), tooMany the 429 answers,
	// requests the API requests admitted.
	accepted, tooMany, requests uint32
	// p50 and p99 are the requests' latency percentiles (0: no request).
	p50, p99 time.Duration
}

// intakeRing is the ring of the last opsWindowSeconds seconds and the
// second being observed. Safe for concurrent use.
type intakeRing struct {
	mu  sync.Mutex
	now func() time.Time
	// cur is the second being observed; its counts and histogram follow.
	cur                         int64
	accepted, tooMany, requests uint32
	hist                        [latencyBucketsCount]uint32
	// ring holds closed seconds at their unix second modulo its length.
	ring [opsWindowSeconds]opsSecond
}

func newIntakeRing(now func() time.Time) *intakeRing {
	return &intakeRing{now: now, cur: now().Unix()}
}

// roll closes the observed second when now is past it; r.mu is held.
func (r *intakeRing) roll(now int64) {
	if now <= r.cur {
		return
	}
	closed := opsSecond{unix: r.cur, accepted: r.accepted, tooMany: r.tooMany, requests: r.requests,
		p50: r.percentile(0.50), p99: r.percentile(0.99)}
	r.ring[r.cur%opsWindowSeconds] = closed
	// Seconds with no observation are left as they are: series tells them
	// by their stale unix second.
	r.cur, r.accepted, r.tooMany, r.requests = now, 0, 0, 0
	r.hist = [latencyBucketsCount]uint32{}
}

// percentile is the upper bound of the bucket that holds the q-quantile
// of the current second's requests; r.mu is held.
func (r *intakeRing) percentile(q float64) time.Duration {
	if r.requests == 0 {
		return 0
	}
	rank := uint32(math.Ceil(q * float64(r.requests)))
	var seen uint32
	for i, n := range r.hist {
		if seen += n; seen >= max(rank, 1) {
			if i == latencyBucketsCount-1 {
				return latencyBounds[i-1]
			}
			return latencyBounds[i]
		}
	}
	return latencyBounds[latencyBucketsCount-2]
}

// ordersAccepted counts n orders accepted now.
func (r *intakeRing) ordersAccepted(n int) {
	r.mu.Lock()
	r.roll(r.now().Unix())
	r.accepted += uint32(n)
	r.mu.Unlock()
}

// answered observes an API answer: its status code and, for a request
// that was admitted, its latency (timed false: not admitted).
func (r *intakeRing) answered(code int, latency time.Duration, timed bool) {
	i := 0
	if timed {
		i = sort.Search(latencyBucketsCount, func(i int) bool { return latency <= latencyBounds[i] })
	}
	r.mu.Lock()
	r.roll(r.now().Unix())
	if code == 429 {
		r.tooMany++
	}
	if timed {
		r.requests++
		r.hist[i]++
	}
	r.mu.Unlock()
}

// series is the last opsWindowSeconds closed seconds, oldest first, and
// the first one's unix second; a second with no observation reads as zero.
func (r *intakeRing) series() (from int64, out []opsSecond) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().Unix()
	r.roll(now)
	from = now - opsWindowSeconds
	out = make([]opsSecond, 0, opsWindowSeconds)
	for s := from; s < now; s++ {
		e := r.ring[((s%opsWindowSeconds)+opsWindowSeconds)%opsWindowSeconds]
		if e.unix != s {
			e = opsSecond{unix: s}
		}
		out = append(out, e)
	}
	return from, out
}
