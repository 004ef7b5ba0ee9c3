package statemachine

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Webhooks: a subscription (spaceWebhook) keeps its cursor, the log index
// of the next event to deliver, in the grid, so a restart or a failover
// resumes delivery where the last acknowledged batch ended. The cursor
// moves only from where its proposer read it (advance_webhook), so a
// stale worker (a former leader) never moves it twice. A range of the log
// given up after its attempts is a dead letter (spaceDeadLetter), kept
// until the webhook is deleted, replayable.

// Dead-letter states.
const (
	DeadLetterDead      = "dead"
	DeadLetterReplaying = "replaying"
	DeadLetterReplayed  = "replayed"
)

// Bounds of the webhook commands.
const (
	// webhookErrorBytesMax bounds a dead letter's last error as kept.
	webhookErrorBytesMax = 1024
	// deadLettersDeletedMax bounds the dead letters one delete removes
	// (DeadLettersMax per webhook are listed; older ones stay as garbage
	// no read sees once the webhook is gone).
	deadLettersDeletedMax = 100_000
)

func webhookKey(prefix []byte, id string) []byte { return key(prefix, spaceWebhook, id) }

func deadLetterKey(prefix []byte, id string, from uint64) []byte {
	k := append(key(prefix, spaceDeadLetter, id), 0)
	return binary.BigEndian.AppendUint64(k, from)
}

func deadLettersStart(prefix []byte, id string) []byte {
	return append(key(prefix, spaceDeadLetter, id), 0)
}

// putWebhook creates a webhook; an id taken is REPLAYED, the stored one
// answered.
func (t *txn) putWebhook(c *gridpb.PutWebhookCommand) *Result {
	in := c.Webhook
	if in.GetId() == "" || in.Url == "" {
		return &Result{Detail: "a webhook needs an id and a url"}
	}
	k := webhookKey(t.m.prefix, in.Id)
	var cur gridpb.WebhookRecord
	if t.get(k, &cur) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, Webhook: &cur}
	}
	w := proto.Clone(in).(*gridpb.WebhookRecord)
	w.CreatedUnixNano = t.at
	w.AdvancedUnixNano = t.at
	t.put(k, w)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Webhook: w}
}

// deleteWebhook removes a webhook and its dead letters.
func (t *txn) deleteWebhook(c *gridpb.DeleteWebhookCommand) *Result {
	k := webhookKey(t.m.prefix, c.Id)
	var cur gridpb.WebhookRecord
	if c.Id == "" || !t.get(k, &cur) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	t.del(k)
	lo := deadLettersStart(t.m.prefix, c.Id)
	var keys [][]byte
	err := cluster.LocalReader{R: t.b}.Scan(lo, prefixEnd(lo), deadLettersDeletedMax, func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("statemachine: scan dead letters: %v", err))
	}
	for _, dk := range keys {
		t.del(dk)
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Webhook: &cur}
}

// advanceWebhook moves a webhook's cursor from c.From to c.To, only when
// it is at c.From; with a dead letter, records it.
func (t *txn) advanceWebhook(c *gridpb.AdvanceWebhookCommand) *Result {
	k := webhookKey(t.m.prefix, c.Id)
	var w gridpb.WebhookRecord
	if c.Id == "" || !t.get(k, &w) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	if c.To <= c.From {
		return &Result{Detail: fmt.Sprintf("advance_webhook: to %d is not after from %d", c.To, c.From)}
	}
	if w.Cursor != c.From {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_STALE, Webhook: &w,
			Detail: fmt.Sprintf("cursor at %d, not %d", w.Cursor, c.From)}
	}
	w.Cursor, w.AdvancedUnixNano = c.To, t.at
	if c.Delivered {
		w.BatchesDelivered++
	}
	if dl := c.DeadLetter; dl != nil {
		d := &gridpb.WebhookDeadLetterRecord{Webhook: c.Id, From: c.From, To: c.To, Attempts: dl.Attempts,
			LastError: truncate(dl.LastError, webhookErrorBytesMax), AtUnixNano: t.at, State: DeadLetterDead}
		t.put(deadLetterKey(t.m.prefix, c.Id, c.From), d)
		w.DeadLettered++
	}
	t.put(k, &w)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Webhook: &w}
}

// markDeadLetter sets a dead letter's state.
func (t *txn) markDeadLetter(c *gridpb.MarkDeadLetterCommand) *Result {
	switch c.State {
	case DeadLetterDead, DeadLetterReplaying, DeadLetterReplayed:
	default:
		return &Result{Detail: fmt.Sprintf("mark_dead_letter: state %q is not one of dead, replaying, replayed", c.State)}
	}
	k := deadLetterKey(t.m.prefix, c.Webhook, c.From)
	var d gridpb.WebhookDeadLetterRecord
	if !t.get(k, &d) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	d.State = c.State
	switch c.State {
	case DeadLetterReplayed:
		d.ReplayedUnixNano = t.at
	case DeadLetterDead:
		d.LastError, d.Attempts, d.AtUnixNano = truncate(c.LastError, webhookErrorBytesMax), c.Attempts, t.at
	}
	t.put(k, &d)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, DeadLetter: &d}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ReadWebhook returns one webhook.
func ReadWebhook(r Reader, prefix []byte, id string) (*gridpb.WebhookRecord, bool, error) {
	w := &gridpb.WebhookRecord{}
	ok, err := getProto(r, webhookKey(prefix, id), w)
	return w, ok, err
}

// Webhooks lists a partition's webhooks in id order, at most limit.
func Webhooks(r Reader, prefix []byte, limit int) ([]*gridpb.WebhookRecord, error) {
	space := spaceStart(prefix, spaceWebhook)
	var out []*gridpb.WebhookRecord
	err := r.Scan(space, prefixEnd(space), limit, func(_, v []byte) error {
		w := &gridpb.WebhookRecord{}
		if err := proto.Unmarshal(v, w); err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	return out, err
}

// DeadLetters lists a webhook's dead letters, oldest range first, at most
// limit.
func DeadLetters(r Reader, prefix []byte, id string, limit int) ([]*gridpb.WebhookDeadLetterRecord, error) {
	return DeadLettersFrom(r, prefix, id, 0, limit)
}

// DeadLettersFrom reads up to limit of a webhook's dead letters whose range
// starts at from or later, oldest first: a page of them.
func DeadLettersFrom(r Reader, prefix []byte, id string, from uint64, limit int) ([]*gridpb.WebhookDeadLetterRecord, error) {
	lo := deadLettersStart(prefix, id)
	var out []*gridpb.WebhookDeadLetterRecord
	err := r.Scan(deadLetterKey(prefix, id, from), prefixEnd(lo), limit, func(_, v []byte) error {
		d := &gridpb.WebhookDeadLetterRecord{}
		if err := proto.Unmarshal(v, d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}
