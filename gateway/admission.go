package gateway

import (
	"sync"
	"time"
)

// admissionWindow is how often the adaptive limit is adjusted.
const admissionWindow = 100 * time.Millisecond

// admission bounds the requests a node serves at once. The bound is
// in_flight_max; with a latency target it adapts below that, as TCP Vegas
// or Netflix's concurrency limits do: while the average latency of a window
// exceeds the target the limit shrinks by a fifth, and while it is met and
// the limit is in use it grows by a tenth. A request over the limit is
// answered 429 at once: under a surge the node keeps serving what it can at
// the target latency and sheds the rest fast, instead of queueing everyone.
type admission struct {
	mu       sync.Mutex
	inFlight int
	limit    float64
	max      int
	min      int
	target   time.Duration

	windowStart time.Time
	n           int
	sum         time.Duration
	peak        int // most in flight during the window
}

// admissionMin is the smallest adaptive limit: enough to keep the batching
// of the grains and the log fed.
const admissionMin = 32

func newAdmission(max int, target time.Duration) *admission {
	return &admission{limit: float64(max), max: max, min: min(admissionMin, max), target: target, windowStart: time.Now()}
}

// acquire takes a place, or reports that the node is at its limit.
func (a *admission) acquire() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inFlight >= int(a.limit) {
		return false
	}
	a.inFlight++
	a.peak = max(a.peak, a.inFlight)
	return true
}

// release gives a place back, with how long the request took.
func (a *admission) release(took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight--
	if a.target <= 0 {
		return
	}
	a.n++
	a.sum += took
	now := time.Now()
	if now.Sub(a.windowStart) < admissionWindow {
		return
	}
	avg := a.sum / time.Duration(a.n)
	switch {
	case avg > a.target:
		a.limit = max(float64(a.min), a.limit*0.8)
	case float64(a.peak) >= a.limit*0.8:
		a.limit = min(float64(a.max), a.limit*1.1+1)
	}
	a.windowStart, a.n, a.sum, a.peak = now, 0, 0, a.inFlight
}

// current is the limit now.
func (a *admission) current() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(a.limit)
}
