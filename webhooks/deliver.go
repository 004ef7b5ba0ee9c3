package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
	"github.com/ordergrid/ordergrid/stream"
)

// Headers of a delivery.
const (
	HeaderWebhook   = "Ordergrid-Webhook"
	HeaderDelivery  = "Ordergrid-Delivery"
	HeaderSignature = "Ordergrid-Signature"
)

// principal is the principal of the commands the workers propose.
const principal = "system:webhooks"

// worker delivers one webhook's events on the leader of its partition.
type worker struct {
	s      *Service
	id     string
	p      actors.Partition
	cancel context.CancelFunc
	done   chan struct{}
}

// Run delivers the webhooks of the partitions this node leads until ctx
// ends: every PollInterval it starts a worker for each such webhook that
// has none, and stops those whose webhook is gone or whose partition this
// node no longer leads.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			ws := make([]*worker, 0, len(s.running))
			for _, w := range s.running {
				w.cancel()
				ws = append(ws, w)
			}
			s.mu.Unlock()
			for _, w := range ws {
				<-w.done
			}
			return
		case <-t.C:
		}
	}
}

func (s *Service) reconcile(ctx context.Context) {
	want := map[string]actors.Partition{}
	for _, p := range s.grid.Partitions() {
		if !p.IsLeader() {
			continue
		}
		ws, err := statemachine.Webhooks(p.Reader(), p.Prefix(), ListedMax)
		if err != nil {
			s.opts.Logger.Warn("webhooks: listing a partition's webhooks", slog.Uint64("partition", uint64(p.ID())), slog.Any("error", err))
			continue
		}
		for _, w := range ws {
			want[w.Id] = p
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.running {
		if _, ok := want[id]; !ok {
			w.cancel()
			if w.p.IsLeader() {
				// Its partition is still led here and the webhook is not
				// listed: deleted. Its series go too (webhooks made and
				// deleted in a loop must not grow the registry).
				s.m.deliveries.DeletePartialMatch(prometheus.Labels{"webhook": id})
			}
		}
	}
	for id, p := range want {
		if s.running[id] != nil {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{s: s, id: id, p: p, cancel: cancel, done: make(chan struct{})}
		s.running[id] = w
		s.status[id] = &Status{Delivering: true}
		go w.run(wctx)
	}
}

// run delivers until ctx ends, the webhook is deleted or this node no
// longer leads its partition.
func (w *worker) run(ctx context.Context) {
	s := w.s
	defer func() {
		w.cancel()
		s.mu.Lock()
		if s.running[w.id] == w {
			delete(s.running, w.id)
			delete(s.status, w.id)
		}
		s.mu.Unlock()
		s.m.lagEvents.DeleteLabelValues(w.id)
		s.m.lagSeconds.DeleteLabelValues(w.id)
		close(w.done)
	}()
	var (
		reader      *stream.Reader
		pending     []*stream.Item // read, not yet in a batch
		cursor      uint64
		lastAdvance = s.opts.Now()
		lastReplay  time.Time
	)
	defer func() {
		if reader != nil {
			reader.Close()
		}
	}()
	for ctx.Err() == nil {
		if !w.p.IsLeader() {
			return
		}
		rec, ok, err := statemachine.ReadWebhook(w.p.Reader(), w.p.Prefix(), w.id)
		if err != nil {
			s.opts.Logger.Warn("webhooks: reading a webhook", slog.String("webhook", w.id), slog.Any("error", err))
			if !sleep(ctx, s.opts.PollInterval) {
				return
			}
			continue
		}
		if !ok {
			return
		}
		secret, err := s.open(rec)
		if err != nil {
			s.opts.Logger.Error("webhooks: cannot sign deliveries", slog.String("webhook", w.id), slog.Any("error", err))
			w.setError(0, err)
			if !sleep(ctx, 30*s.opts.PollInterval) {
				return
			}
			continue
		}
		if reader == nil || rec.Cursor != cursor {
			if reader != nil {
				reader.Close()
			}
			if reader, err = s.events.NewReader(rec.Cursor, filterOf(rec)); err != nil {
				reader = nil
				// The node's copy of the log behind the cursor (a new leader
				// catching up): wait for it.
				if !sleep(ctx, s.opts.PollInterval) {
					return
				}
				continue
			}
			pending, cursor = nil, rec.Cursor
		}
		if s.opts.Now().Sub(lastReplay) >= s.opts.PollInterval {
			lastReplay = s.opts.Now()
			if !w.replays(ctx, rec, secret) {
				return
			}
		}
		if head, err := s.events.Head(); err == nil && head >= cursor {
			s.m.lagEvents.WithLabelValues(w.id).Set(float64(head - cursor))
		}
		if len(pending) == 0 {
			got, err := reader.Read(ctx, s.opts.BatchEventsMax, s.opts.PollInterval)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.opts.Logger.Warn("webhooks: reading the log", slog.String("webhook", w.id), slog.Any("error", err))
				reader.Close()
				reader = nil
				if !sleep(ctx, s.opts.PollInterval) {
					return
				}
				continue
			}
			pending = got
		}
		batch, to := w.cut(pending, reader.Next())
		pending = pending[len(batch):]
		if len(batch) == 0 {
			// Only events the filter skips: move over them now and then.
			s.setPending(w.id, 0)
			s.m.lagSeconds.WithLabelValues(w.id).Set(0)
			if to > cursor && s.opts.Now().Sub(lastAdvance) >= s.opts.PollInterval {
				if !w.advance(ctx, &cursor, to, false, nil, &reader) {
					return
				}
				lastAdvance = s.opts.Now()
			}
			continue
		}
		oldest := eventTime(batch[0])
		s.setPending(w.id, oldest)
		attempts, err := w.deliver(ctx, rec.Url, secret, cursor, to, batch, oldest)
		if ctx.Err() != nil {
			return
		}
		var dl *gridpb.WebhookDeadLetterRecord
		if err != nil {
			dl = &gridpb.WebhookDeadLetterRecord{Attempts: uint32(attempts), LastError: err.Error()}
			s.m.deliveries.WithLabelValues(w.id, "dead_lettered").Inc()
			s.opts.Logger.Warn("webhooks: batch dead-lettered", slog.String("webhook", w.id), slog.Uint64("from", cursor), slog.Uint64("to", to),
				slog.Int("attempts", attempts), slog.Any("error", err))
		}
		s.setPending(w.id, 0)
		s.m.lagSeconds.WithLabelValues(w.id).Set(0)
		if !w.advance(ctx, &cursor, to, err == nil, dl, &reader) {
			return
		}
		lastAdvance = s.opts.Now()
	}
}

// cut takes the first batch of pending (bounded by events and bytes) and
// the log index its range ends at: next (the reader's) when it takes all.
func (w *worker) cut(pending []*stream.Item, next uint64) ([]*stream.Item, uint64) {
	n, size := 0, 0
	for n < len(pending) && n < w.s.opts.BatchEventsMax {
		sz := len(pending[n].Leaf) + 40
		if n > 0 && size+sz > w.s.opts.BatchBytesMax {
			break
		}
		size += sz
		n++
	}
	if n < len(pending) {
		return pending[:n], pending[n].Index
	}
	return pending, next
}

// advance proposes the cursor's move from *cursor to to; false when the
// worker must stop (the webhook is gone, ctx ended). On a refusal (another
// proposer moved it) the reader is dropped, to start again from the
// stored cursor.
func (w *worker) advance(ctx context.Context, cursor *uint64, to uint64, delivered bool, dl *gridpb.WebhookDeadLetterRecord, reader **stream.Reader) bool {
	res, err := w.p.Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_AdvanceWebhook{AdvanceWebhook: &gridpb.AdvanceWebhookCommand{
		Id: w.id, From: *cursor, To: to, Delivered: delivered, DeadLetter: dl}}})
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return false
		}
		w.s.opts.Logger.Warn("webhooks: moving the cursor", slog.String("webhook", w.id), slog.Any("error", err))
	case res.Outcome == gridpb.Outcome_OUTCOME_NOT_FOUND:
		return false
	case res.Outcome == gridpb.Outcome_OUTCOME_OK:
		*cursor = to
		return true
	}
	// Not moved (a failure, or moved by another): read the stored cursor again.
	(*reader).Close()
	*reader = nil
	return sleep(ctx, w.s.opts.PollInterval/4)
}

// deliver posts one batch covering [from, to) until it goes through or
// AttemptsMax attempts failed; it answers the attempts made and the last
// error (nil: delivered).
func (w *worker) deliver(ctx context.Context, target string, secret []byte, from, to uint64, batch []*stream.Item, oldest int64) (int, error) {
	s := w.s
	body := Body(w.id, batch)
	var err error
	for attempt := 1; ; attempt++ {
		if err = s.post(ctx, w.id, target, secret, from, to, body); err == nil {
			s.m.deliveries.WithLabelValues(w.id, "delivered").Inc()
			w.setError(0, nil)
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, err
		}
		s.m.deliveries.WithLabelValues(w.id, "failed").Inc()
		w.setError(attempt, err)
		if oldest != 0 {
			s.m.lagSeconds.WithLabelValues(w.id).Set(max(s.opts.Now().Sub(time.Unix(0, oldest)).Seconds(), 0))
		}
		if attempt >= s.opts.AttemptsMax {
			return attempt, err
		}
		if !sleep(ctx, s.backoff(attempt)) {
			return attempt, ctx.Err()
		}
	}
}

// backoff is the wait after the attempt-th failure: uniform in
// [0, min(max, base·2^(attempt-1))] (full jitter).
func (s *Service) backoff(attempt int) time.Duration {
	d := s.opts.BackoffMax
	if attempt-1 < 30 {
		d = min(s.opts.BackoffBase<<(attempt-1), s.opts.BackoffMax)
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// Body is the JSON a delivery POSTs: {"webhook":id,"events":[{"index":N,
// "event":<the log's leaf, verbatim>}...]}.
func Body(id string, batch []*stream.Item) []byte {
	var b bytes.Buffer
	b.WriteString(`{"webhook":`)
	b.WriteString(strconv.Quote(id)) // ids are [a-z0-9_]: JSON and Go quoting agree
	b.WriteString(`,"events":[`)
	for i, it := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"index":`)
		b.WriteString(strconv.FormatUint(it.Index, 10))
		b.WriteString(`,"event":`)
		b.Write(it.Leaf)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes()
}

// post makes one attempt at a batch.
func (s *Service) post(ctx context.Context, id, target string, secret []byte, from, to uint64, body []byte) error {
	actx, cancel := context.WithTimeout(ctx, s.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ordergrid-webhooks/1")
	req.Header.Set(HeaderWebhook, id)
	req.Header.Set(HeaderDelivery, fmt.Sprintf("%s:%d-%d", id, from, to))
	req.Header.Set(HeaderSignature, Sign(secret, s.opts.Now(), body))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("no answer within %s", s.opts.AttemptTimeout)
		}
		return fmt.Errorf("POST: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, responseBytesMax))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// replays delivers the dead letters asked for again, oldest first; false
// when the worker must stop.
func (w *worker) replays(ctx context.Context, rec *gridpb.WebhookRecord, secret []byte) bool {
	s := w.s
	goOn := true
	err := eachDeadLetter(w.p, w.id, nil, func(d *gridpb.WebhookDeadLetterRecord) (bool, error) {
		if d.State != statemachine.DeadLetterReplaying {
			return true, nil
		}
		attempts, err := w.replay(ctx, rec, secret, d)
		if ctx.Err() != nil {
			goOn = false
			return false, nil
		}
		mark := &gridpb.MarkDeadLetterCommand{Webhook: w.id, From: d.From, State: statemachine.DeadLetterReplayed}
		if err != nil {
			mark.State, mark.LastError, mark.Attempts = statemachine.DeadLetterDead, "replay: "+err.Error(), uint32(attempts)
		}
		if _, perr := w.p.Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_MarkDeadLetter{MarkDeadLetter: mark}}); perr != nil {
			s.opts.Logger.Warn("webhooks: marking a dead letter", slog.String("webhook", w.id), slog.Any("error", perr))
			goOn = ctx.Err() == nil
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		s.opts.Logger.Warn("webhooks: reading dead letters", slog.String("webhook", w.id), slog.Any("error", err))
	}
	return goOn
}

// replay delivers the events of one dead letter's range again, in batches.
func (w *worker) replay(ctx context.Context, rec *gridpb.WebhookRecord, secret []byte, d *gridpb.WebhookDeadLetterRecord) (int, error) {
	r, err := w.s.events.NewReader(d.From, filterOf(rec))
	if err != nil {
		return 0, err
	}
	defer r.Close()
	from := d.From
	var pending []*stream.Item
	for from < d.To {
		if len(pending) == 0 {
			got, err := r.Read(ctx, w.s.opts.BatchEventsMax, w.s.opts.PollInterval)
			if err != nil {
				return 0, err
			}
			for _, it := range got {
				if it.Index < d.To {
					pending = append(pending, it)
				}
			}
		}
		batch, to := w.cut(pending, min(r.Next(), d.To))
		pending = pending[len(batch):]
		if len(batch) > 0 {
			if attempts, err := w.deliver(ctx, rec.Url, secret, from, to, batch, 0); err != nil {
				return attempts, err
			}
		}
		from = to
	}
	return 0, nil
}

// eventTime is an event's time (0 when it has none).
func eventTime(it *stream.Item) int64 {
	t, err := time.Parse(time.RFC3339Nano, it.Event.At)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

func (w *worker) setError(attempts int, err error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status[w.id]
	if st == nil {
		return
	}
	st.Attempts = attempts
	if err == nil {
		st.LastError = ""
		return
	}
	st.LastError = truncate(err.Error(), errorBytesMax)
	st.LastErrorAt = s.opts.Now().UTC().Format(time.RFC3339Nano)
}

func (s *Service) setPending(id string, oldest int64) {
	s.mu.Lock()
	if st := s.status[id]; st != nil {
		st.OldestPendingUnixNano = oldest
	}
	s.mu.Unlock()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
