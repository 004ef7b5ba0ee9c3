package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/stream"
	"github.com/ordergrid/ordergrid/stream/streamtest"
)

// appendBig appends n large events (64 KiB each) to l.
func appendBig(l *streamtest.Log, n int) {
	for i := 0; i < n; i++ {
		l.Append(ledger.Event{Kind: ledger.KindOrder, Type: "paid", Order: fmt.Sprintf("o_%d", i), Status: "paid",
			Details: map[string]string{"note": strings.Repeat("x", 64<<10)}})
	}
}

// A reader that stops reading is cut once a write has blocked for the
// write timeout; a reader beside it gets every event meanwhile.
func TestStalledStreamReaderIsCut(t *testing.T) {
	log := streamtest.NewLog()
	hub := stream.NewHub(log, stream.Options{PollInterval: 2 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	tok, entry, err := NewToken("ops", RoleOps, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := NewTokens([]TokenEntry{entry})
	reg := prometheus.NewRegistry()
	gw := New(Backend{}, Options{Tokens: tokens, Events: hub, StreamWriteTimeout: 300 * time.Millisecond, Registerer: reg})
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	for {
		if _, err := hub.Head(); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}

	// The stalled reader: sends its request, never reads.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(conn, "GET /v1/stream?from=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", tok)
	// The good reader.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/stream?from=0", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				if n++; n == 400 {
					got <- n
					return
				}
			}
		}
		got <- n
	}()
	const events = 400 // 26 MB: more than any socket buffer holds
	for i := 0; i < events; i += 20 {
		appendBig(log, 20)
	}
	cut := testutil.ToFloat64(gw.streamMetrics.cut.WithLabelValues("stalled"))
	for deadline := time.Now().Add(20 * time.Second); cut < 1 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		cut = testutil.ToFloat64(gw.streamMetrics.cut.WithLabelValues("stalled"))
	}
	if cut != 1 {
		t.Fatalf("stalled reader not cut: ordergrid_stream_cut_total{reason=stalled} = %v", cut)
	}
	select {
	case n := <-got:
		if n != events {
			t.Fatalf("the reading reader got %d of %d events", n, events)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reading reader was held up")
	}
}
