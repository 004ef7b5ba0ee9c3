package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamFollower reads GET /v1/stream as a client that must miss nothing
// would: from index 0, and when its node goes away (restarted, killed) it
// reconnects to the next node with Last-Event-ID, as a browser's
// EventSource does. It records every index it was sent.
type streamFollower struct {
	urls   []string
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	ids        []uint64
	reconnects int
	nodes      map[string]int // events read per node
}

func followStream(t *testing.T, urls []string) *streamFollower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &streamFollower{urls: urls, cancel: cancel, done: make(chan struct{}), nodes: map[string]int{}}
	go func() {
		defer close(f.done)
		for i := 0; ctx.Err() == nil; i++ {
			f.readFrom(ctx, urls[i%len(urls)])
			if ctx.Err() == nil {
				f.mu.Lock()
				f.reconnects++
				f.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(f.stop)
	return f
}

// readFrom reads url's stream until it ends, resuming after the last id.
func (f *streamFollower) readFrom(ctx context.Context, url string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	f.mu.Lock()
	if n := len(f.ids); n > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(f.ids[n-1], 10))
	} else {
		req.URL.RawQuery = "from=0"
	}
	f.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var id string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			n, err := strconv.ParseUint(id, 10, 64)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.ids = append(f.ids, n)
			f.nodes[url]++
			f.mu.Unlock()
		}
	}
}

func (f *streamFollower) stop() {
	f.cancel()
	<-f.done
}

// check waits until the follower has read every event of a log of size
// events, stops it, and fails unless it read each index once, in order.
func (f *streamFollower) check(t *testing.T, size uint64, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; {
		f.mu.Lock()
		n := uint64(len(f.ids))
		f.mu.Unlock()
		if n >= size || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, id := range f.ids {
		if id != uint64(i) {
			lo := max(0, i-3)
			t.Fatalf("stream: event %d has index %d (%v ...): a gap or a repeat", i, id, f.ids[lo:min(len(f.ids), i+3)])
		}
	}
	if uint64(len(f.ids)) < size {
		t.Fatalf("stream: %d of the log's %d events read within %s", len(f.ids), size, within)
	}
	t.Logf("stream: %d events, each once and in order, over %d reconnects (events per node: %v)", len(f.ids), f.reconnects, f.nodes)
}

// ledgerSize is the number of events in a node's log.
func ledgerSize(t *testing.T, n *node) uint64 {
	t.Helper()
	var lg struct {
		Size uint64 `json:"size"`
	}
	n.must("GET", "/v1/ledger", nil, 200).json(t, &lg)
	return lg.Size
}

// waitLedgerStill waits until the node's log stops growing (the sequencer
// caught up with what was committed) and returns its size.
func waitLedgerStill(t *testing.T, n *node) uint64 {
	t.Helper()
	last := ledgerSize(t, n)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now := ledgerSize(t, n)
		if now == last {
			return now
		}
		last = now
	}
	t.Fatalf("the log still grows after 30s (%d events)", last)
	return 0
}
