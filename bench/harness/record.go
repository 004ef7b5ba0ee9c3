package harness

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 5 minutes, with 3
// significant digits.
const (
	latencyMinUs  = 1
	latencyMaxUs  = 5 * 60 * 1_000_000
	latencyDigits = 3
	// secondsMax bounds the per-second series (and so a run's length).
	secondsMax = 3600
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyMinUs, latencyMaxUs, latencyDigits)
}

// second is one second of a run.
type second struct {
	counts [classes]int64
	hist   *hdrhistogram.Histogram // latency of accepted orders (created, replayed)
	sent   int64
}

// Recorder collects outcomes: one HDR histogram for the run and one per
// second, and counts per class.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	total   *hdrhistogram.Histogram
	rejects *hdrhistogram.Histogram // latency of admission rejects
	counts  [classes]int64
	seconds []*second
	dropped int64 // intended sends the generator could not make (all senders busy)
	details map[Class]string
}

// NewRecorder starts the clock of a run.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, total: newHist(), rejects: newHist(), details: map[Class]string{}}
}

func (r *Recorder) sec(t time.Time) *second {
	i := int(t.Sub(r.start) / time.Second)
	i = max(0, min(i, secondsMax-1))
	for len(r.seconds) <= i {
		r.seconds = append(r.seconds, &second{hist: newHist()})
	}
	return r.seconds[i]
}

// Record one outcome of an order meant to be sent at intended and answered
// at done: latency counts from the intended time, so a stalled server is
// not hidden by a generator that waited for it (no coordinated omission).
func (r *Recorder) Record(intended, done time.Time, o Outcome) {
	us := max(latencyMinUs, min(done.Sub(intended).Microseconds(), latencyMaxUs))
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sec(done)
	s.counts[o.Class]++
	r.counts[o.Class]++
	switch o.Class {
	case Created, Replayed:
		_ = r.total.RecordValue(us)
		_ = s.hist.RecordValue(us)
	case Admission:
		_ = r.rejects.RecordValue(us)
	}
	if o.Class >= Conflict && r.details[o.Class] == "" {
		r.details[o.Class] = o.Detail
	}
}

// Sent counts an order sent at t.
func (r *Recorder) Sent(t time.Time, n int) {
	r.mu.Lock()
	r.sec(t).sent += int64(n)
	r.mu.Unlock()
}

// Dropped counts intended sends the generator could not make.
func (r *Recorder) Dropped(n int64) {
	r.mu.Lock()
	r.dropped += n
	r.mu.Unlock()
}

// Accepted is the number of orders answered 201 or 200 so far.
func (r *Recorder) Accepted() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[Created] + r.counts[Replayed]
}

// Snapshot returns a copy of the counts.
func (r *Recorder) Snapshot() [classes]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}
