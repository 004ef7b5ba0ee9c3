package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Bounds of the live-stream reader.
const (
	// streamDelaySamplesMax bounds the delays kept for the quantiles; past
	// it, every other delay is kept (a uniform sample of the rest).
	streamDelaySamplesMax = 1 << 22
	// streamCatchUpMax bounds the wait, after the load, for the stream to
	// deliver everything the log holds.
	streamCatchUpMax = 30 * time.Second
	// streamLineBytesMax bounds one SSE line (an event's JSON).
	streamLineBytesMax = 8 << 20
)

// StreamStats is what a live reader of GET /v1/stream saw during the run:
// the time from each event's commit (its "at") to its arrival on the open
// stream, and whether the stream had every index once, in order.
type StreamStats struct {
	Events     int64   `json:"events"`
	DelayP50Ms float64 `json:"commit_to_stream_p50_ms"`
	DelayP99Ms float64 `json:"commit_to_stream_p99_ms"`
	DelayMaxMs float64 `json:"commit_to_stream_max_ms"`
	// Gaps and Repeats count indexes missing from, or seen twice on, the
	// unfiltered stream: both must be 0.
	Gaps     int64  `json:"gaps"`
	Repeats  int64  `json:"repeats"`
	CaughtUp bool   `json:"caught_up"`
	Error    string `json:"error,omitempty"`
}

// streamWatch reads a node's event stream from the moment it opens.
type streamWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	delays  []float64 // ms
	seen    int64
	next    int64 // the index expected next; -1 before the first
	gaps    int64
	repeats int64
	err     error
}

// watchStream opens GET /v1/stream on url (what comes next, unfiltered)
// and reads it until stop.
func watchStream(client *http.Client, url, token string) (*streamWatch, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/v1/stream", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET /v1/stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /v1/stream: %s", resp.Status)
	}
	w := &streamWatch{cancel: cancel, done: make(chan struct{}), next: -1}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), streamLineBytesMax)
		var id int64 = -1
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case bytes.HasPrefix(line, []byte("id: ")):
				id, _ = strconv.ParseInt(string(line[4:]), 10, 64)
			case bytes.HasPrefix(line, []byte("data: ")):
				w.event(id, line[6:], time.Now())
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// event records one event: its delay from its commit time, and its index
// against the one expected.
func (w *streamWatch) event(id int64, data []byte, now time.Time) {
	var delay float64 = -1
	if i := bytes.Index(data, []byte(`"at":"`)); i >= 0 {
		rest := data[i+6:]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if at, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				delay = float64(now.Sub(at).Microseconds()) / 1000
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.next < 0 || id == w.next:
	case id > w.next:
		w.gaps += id - w.next
	default:
		w.repeats++
	}
	if id >= w.next {
		w.next = id + 1
	}
	w.seen++
	if delay >= 0 && (len(w.delays) < streamDelaySamplesMax || w.seen%2 == 0) {
		if len(w.delays) < streamDelaySamplesMax {
			w.delays = append(w.delays, delay)
		} else {
			w.delays[w.seen%streamDelaySamplesMax] = delay
		}
	}
}

// stop waits until the stream has delivered the log's first size events
// (bounded by streamCatchUpMax), closes it and returns what it saw.
func (w *streamWatch) stop(size int64) *StreamStats {
	st := &StreamStats{}
	for deadline := time.Now().Add(streamCatchUpMax); ; {
		w.mu.Lock()
		next := w.next
		w.mu.Unlock()
		if size > 0 && next >= size {
			st.CaughtUp = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	st.Events, st.Gaps, st.Repeats = w.seen, w.gaps, w.repeats
	if w.err != nil {
		st.Error = w.err.Error()
	}
	if len(w.delays) > 0 {
		d := slices.Clone(w.delays)
		slices.Sort(d)
		st.DelayP50Ms = d[len(d)/2]
		st.DelayP99Ms = d[min(len(d)-1, len(d)*99/100)]
		st.DelayMaxMs = d[len(d)-1]
	}
	return st
}
