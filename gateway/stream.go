package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/stream"
)

// EventStream is the audit log's committed events, live (stream.Hub in a
// node).
type EventStream interface {
	// Head is the number of events the node's log holds.
	Head() (uint64, error)
	// NewReader reads the events f selects from index from on.
	NewReader(from uint64, f stream.Filter) (*stream.Reader, error)
}

// Bounds of the event stream.
const (
	// DefaultStreamReadersMax is the most streams a node serves at once
	// (SSE and gRPC together) when Options.StreamReadersMax is 0.
	DefaultStreamReadersMax = 1024
	// DefaultStreamWriteTimeout is how long one write to a stream reader may
	// block (its socket buffer full) before the reader is cut, when
	// Options.StreamWriteTimeout is 0. The reader resumes from its last id.
	DefaultStreamWriteTimeout = 10 * time.Second
	// streamBufferBytes is a stream's write buffer: with the socket's, all
	// that a stalled reader can hold up.
	streamBufferBytes = 64 << 10
	// streamEventsPerRead bounds the events one read of the log hands a stream.
	streamEventsPerRead = 256
	// streamKeepalive is how often an idle stream gets a comment (SSE) so
	// proxies and clients see it alive.
	streamKeepalive = 15 * time.Second
	// streamProgressEvery is how often a filtered stream that skipped events
	// moves its reader's resume point (an SSE id with no data).
	streamProgressEvery = time.Second
	// streamStartWait is how long a start index a little beyond this node's
	// log (a follower behind the node the reader came from) is waited for.
	streamStartWait = 2 * time.Second
	// streamStartWaitMax bounds that wait while the node's log grows (a
	// node just restarted, catching up).
	streamStartWaitMax = 10 * time.Second
)

type streamMetrics struct {
	sent *prometheus.CounterVec
	cut  *prometheus.CounterVec
}

func newStreamMetrics(reg prometheus.Registerer) *streamMetrics {
	m := &streamMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_stream_events_sent_total",
			Help: "Events sent to stream readers, by transport (sse, grpc; track: tracking pages)."}, []string{"via"}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_stream_cut_total",
			Help: "Stream readers cut by the node, by reason (stalled: a write blocked past the write timeout; error: the log could not be read)."},
			[]string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.cut)
	}
	return m
}

// openStream checks the caller and the request of a stream and opens its
// reader. from is the first index wanted (nil: what comes next), field the
// name it came by (for the problem). The stream runs in the context it
// returns, which ends with ctx or when the node stops its streams
// (StopStreams); done releases the reader and its slot.
func (s *Service) openStream(ctx context.Context, from *uint64, field string, q map[string][]string) (r *stream.Reader, streamCtx context.Context, done func(), p *Problem) {
	if p := allow(ctx, "reading the event stream", RoleOps, RolePartner, RoleCompliance); p != nil {
		return nil, nil, nil, p
	}
	if s.events == nil {
		return nil, nil, nil, unavailable("this node serves no event stream (no audit log)")
	}
	f, err := stream.ParseFilter(q)
	if err != nil {
		var fe *stream.FilterError
		if errors.As(err, &fe) {
			return nil, nil, nil, malformed(fe.Field, fe.Detail)
		}
		return nil, nil, nil, malformed("", err.Error())
	}
	if pr := PrincipalOf(ctx); pr.Role.channelBound() {
		f.Scope = slices.Clone(pr.Channels)
		for _, c := range f.Channels {
			if p := allowChannel(ctx, c, "channel"); p != nil {
				return nil, nil, nil, p
			}
		}
	}
	select {
	case s.streamSlots <- struct{}{}:
	default:
		s.metrics.rejects.WithLabelValues("overloaded").Inc()
		return nil, nil, nil, &Problem{Status: http.StatusTooManyRequests, Name: "overloaded", Title: "Too many streams",
			Detail: fmt.Sprintf("the node serves %d streams, its limit; retry after the given seconds", cap(s.streamSlots)), RetryAfterSec: 5}
	}
	release := func() { <-s.streamSlots }
	r, p = s.newReader(ctx, from, field, f)
	if p != nil {
		release()
		return nil, nil, nil, p
	}
	streamCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.streamsStopped, cancel)
	return r, streamCtx, func() { stop(); cancel(); r.Close(); release() }, nil
}

// newReader opens a reader of the events f selects from index from on
// (nil: what comes next). A start a little beyond this node's log (a reader
// moving from a node ahead to one a little behind) is waited for while the
// log grows, up to streamStartWaitMax, or streamStartWait with no growth;
// one still beyond it is a bad request naming field.
func (s *Service) newReader(ctx context.Context, from *uint64, field string, f stream.Filter) (*stream.Reader, *Problem) {
	var start uint64
	var err error
	if from == nil {
		if start, err = s.events.Head(); err != nil {
			return nil, unavailable(err.Error())
		}
	} else {
		start = *from
		var last uint64
		stalled := time.Now()
		for deadline := time.Now().Add(streamStartWaitMax); ; {
			head, err := s.events.Head()
			if err == nil && head >= start || time.Now().After(deadline) {
				break
			}
			if head > last {
				last, stalled = head, time.Now() // catching up: worth waiting for
			} else if time.Since(stalled) > streamStartWait {
				break
			}
			select {
			case <-ctx.Done():
				return nil, unavailable(ctx.Err().Error())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	r, err := s.events.NewReader(start, f)
	if err != nil {
		if errors.Is(err, stream.ErrBeyond) {
			return nil, malformed(field, fmt.Sprintf("%s %d is beyond the end of the log (%v)", field, start, err))
		}
		return nil, unavailable(err.Error())
	}
	return r, nil
}

// StopStreams ends every open stream (at shutdown: http.Server.Shutdown
// waits for requests, and a stream does not end by itself). Readers
// reconnect to another node and resume.
func (s *Service) StopStreams() { s.stopStreams() }

// getStream serves GET /v1/stream: committed events as Server-Sent Events.
func (g *Gateway) getStream(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "reading the event stream", RoleOps, RolePartner, RoleCompliance); p != nil {
		return p
	}
	q := r.URL.Query()
	from, field, p := resumePoint(r)
	if p != nil {
		return p
	}
	q.Del("from")
	reader, ctx, done, p := g.openStream(r.Context(), from, field, q)
	if p != nil {
		return p
	}
	defer done()
	g.serveSSE(ctx, w, reader, "sse", func(it *stream.Item) []byte { return it.Leaf })
	return nil
}

// resumePoint is where an SSE request starts: after its Last-Event-ID
// header (a reconnecting EventSource), else at its from parameter, else
// nil (what comes next); field names the one it came by.
func resumePoint(r *http.Request) (from *uint64, field string, p *Problem) {
	field = "from"
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, "", malformed("from", fmt.Sprintf("from %q is not a log index", v))
		}
		from = &n
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil || n == ^uint64(0) {
			return nil, "", malformed("Last-Event-ID", fmt.Sprintf("Last-Event-ID %q is not a log index", v))
		}
		n++ // the last one seen: resume after it
		from, field = &n, "Last-Event-ID"
	}
	return from, field, nil
}

// serveSSE writes the events reader reads as Server-Sent Events (id = log
// index, data = what data makes of the event: one line) until ctx ends,
// the log cannot be read, or a write blocks past the write timeout. via
// labels the sent-events metric.
func (g *Gateway) serveSSE(ctx context.Context, w http.ResponseWriter, reader *stream.Reader, via string, data func(*stream.Item) []byte) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ew := &firstErrorWriter{w: w}
	bw := bufio.NewWriterSize(ew, streamBufferBytes)
	defer func() {
		// A write that hit its deadline: the reader stalled, and is cut.
		// (The server then cancels the request, so any later step may be
		// the one that returns.)
		if errors.Is(ew.err, os.ErrDeadlineExceeded) {
			g.streamMetrics.cut.WithLabelValues("stalled").Inc()
		}
	}()
	// Every write may block for the write timeout, no longer: the deadline
	// moves on before each event (the buffer writes through when full) and
	// before each flush.
	deadline := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(g.opts.StreamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	flush := func() error {
		if err := deadline(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	fmt.Fprintf(bw, "retry: 1000\n: ordergrid events from %d\n\n", reader.Next())
	if err := flush(); err != nil {
		return
	}
	sentTo := reader.Next() // the resume point the client holds
	lastWrite := time.Now()
	for {
		items, err := reader.Read(ctx, streamEventsPerRead, streamProgressEvery)
		if err != nil {
			if ctx.Err() == nil {
				g.streamMetrics.cut.WithLabelValues("error").Inc()
				g.logger.Warn("stream: reading the log", "error", err)
			}
			return
		}
		for _, it := range items {
			d := data(it)
			if bw.Available() < len(d)+32 {
				if err := deadline(); err != nil {
					return
				}
			}
			bw.WriteString("id: ")
			bw.WriteString(strconv.FormatUint(it.Index, 10))
			bw.WriteString("\ndata: ")
			bw.Write(d) // one line: JSON escapes every newline
			bw.WriteString("\n\n")
		}
		switch {
		case len(items) > 0:
			sentTo = reader.Next()
		case reader.Next() > sentTo && time.Since(lastWrite) >= streamProgressEvery:
			// Events skipped by the filter: move the client's resume point
			// (an id with no data dispatches nothing but sets it).
			fmt.Fprintf(bw, "id: %d\n\n", reader.Next()-1)
			sentTo = reader.Next()
		case time.Since(lastWrite) >= streamKeepalive:
			bw.WriteString(": keepalive\n\n")
		default:
			continue
		}
		if err := flush(); err != nil {
			return
		}
		lastWrite = time.Now()
		g.streamMetrics.sent.WithLabelValues(via).Add(float64(len(items)))
	}
}

// firstErrorWriter remembers the first error of its writer.
type firstErrorWriter struct {
	w   io.Writer
	err error
}

func (f *firstErrorWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

// streaming serves a long-lived route: authenticated like every API route,
// but outside admission control (a stream would hold an in-flight slot
// for its whole life and skew the latency the limit adapts to); streams
// have their own bound (Options.StreamReadersMax).
func (g *Gateway) streaming(route string, h func(w http.ResponseWriter, r *http.Request) *Problem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, err := g.authenticate(r.Header.Get("Authorization"))
		if err != nil {
			g.metrics.rejects.WithLabelValues("unauthenticated").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="ordergrid"`)
			writeProblem(w, unauthenticated(err))
			g.metrics.requests.WithLabelValues(route, "401").Inc()
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		if p := h(sw, r.WithContext(WithPrincipal(r.Context(), principal))); p != nil {
			writeProblem(sw, p)
		}
		g.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		g.metrics.observed.answered(sw.code, 0, false)
	})
}

// StreamEvents implements pb.EventServiceServer.
func (s *Service) StreamEvents(req *pb.StreamEventsRequest, ss grpc.ServerStreamingServer[pb.LogEvent]) error {
	q := map[string][]string{}
	for name, vals := range map[string][]string{"order": req.Order, "channel": req.Channel, "warehouse": req.Warehouse,
		"status": req.Status, "kind": req.Kind, "type": req.Type} {
		if len(vals) > 0 {
			q[name] = vals
		}
	}
	reader, ctx, done, p := s.openStream(ss.Context(), req.From, "from", q)
	if p != nil {
		return grpcErr(p)
	}
	defer done()
	// Send blocks while the client's flow-control window is full; a reader
	// that stops reading is cut when one Send takes longer than the write
	// timeout (returning ends the call, which unblocks the Send).
	var sendingSince atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for {
			items, err := reader.Read(ctx, streamEventsPerRead, streamKeepalive)
			if err != nil {
				errc <- err
				return
			}
			for _, it := range items {
				e := &it.Event
				sendingSince.Store(time.Now().UnixNano())
				err := ss.Send(&pb.LogEvent{Index: it.Index, Leaf: it.Leaf, Kind: e.Kind, Type: e.Type, Order: e.Order, Status: e.Status, At: e.At})
				sendingSince.Store(0)
				if err != nil {
					errc <- err
					return
				}
			}
			s.streamMetrics.sent.WithLabelValues("grpc").Add(float64(len(items)))
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			if ss.Context().Err() != nil {
				return ss.Context().Err()
			}
			if ctx.Err() != nil {
				return grpcErr(unavailable("the node is stopping; resume on another node from the last index seen + 1"))
			}
			s.streamMetrics.cut.WithLabelValues("error").Inc()
			return grpcErr(unavailable(err.Error()))
		case <-tick.C:
			if at := sendingSince.Load(); at != 0 && time.Since(time.Unix(0, at)) > s.streamWriteTimeout {
				s.streamMetrics.cut.WithLabelValues("stalled").Inc()
				return grpcErr(&Problem{Status: http.StatusTooManyRequests, Name: "stream-stalled", Title: "Reader too slow",
					Detail:        fmt.Sprintf("the stream was cut: a send blocked over %s; resume from the last index seen + 1", s.streamWriteTimeout),
					RetryAfterSec: 1})
			}
		}
	}
}

var _ pb.EventServiceServer = (*Service)(nil)
