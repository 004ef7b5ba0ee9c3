package statemachine

import (
	"testing"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

func TestWebhookCursorMovesOnlyFromWhereItWasRead(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	put := func(id string) *Result {
		return h.apply(10, &gridpb.Command{Kind: &gridpb.Command_PutWebhook{PutWebhook: &gridpb.PutWebhookCommand{
			Webhook: &gridpb.WebhookRecord{Id: id, Url: "http://127.0.0.1:9/hook", Owner: "p", SealedSecret: []byte("s")}}}})
	}
	advance := func(from, to uint64, dl *gridpb.WebhookDeadLetterRecord) *Result {
		return h.apply(20, &gridpb.Command{Kind: &gridpb.Command_AdvanceWebhook{AdvanceWebhook: &gridpb.AdvanceWebhookCommand{
			Id: "wh1", From: from, To: to, Delivered: dl == nil, DeadLetter: dl}}})
	}
	if res := put("wh1"); res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Webhook.CreatedUnixNano != 10 {
		t.Fatalf("put: %+v", res)
	}
	if res := put("wh1"); res.Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("a second put of the same id: %+v", res)
	}
	if res := advance(0, 5, nil); res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Webhook.Cursor != 5 {
		t.Fatalf("advance: %+v", res)
	}
	// The same advance again (a retried proposal, a former leader): nothing moves.
	if res := advance(0, 5, nil); res.Outcome != gridpb.Outcome_OUTCOME_STALE || res.Webhook.Cursor != 5 {
		t.Fatalf("stale advance: %+v", res)
	}
	if res := advance(0, 9, &gridpb.WebhookDeadLetterRecord{Attempts: 3, LastError: "x"}); res.Outcome != gridpb.Outcome_OUTCOME_STALE {
		t.Fatalf("stale dead letter: %+v", res)
	}
	if res := advance(5, 5, nil); res.Outcome == gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("an empty advance: %+v", res)
	}
	if res := advance(5, 9, &gridpb.WebhookDeadLetterRecord{Attempts: 8, LastError: "HTTP 500"}); res.Outcome != gridpb.Outcome_OUTCOME_OK ||
		res.Webhook.Cursor != 9 || res.Webhook.DeadLettered != 1 || res.Webhook.BatchesDelivered != 1 {
		t.Fatalf("dead letter: %+v", res)
	}
	dls, err := DeadLetters(r, h.prefix, "wh1", 10)
	if err != nil || len(dls) != 1 || dls[0].From != 5 || dls[0].To != 9 || dls[0].State != DeadLetterDead || dls[0].LastError != "HTTP 500" {
		t.Fatalf("dead letters: %v %v", dls, err)
	}
	mark := func(state string) *Result {
		return h.apply(30, &gridpb.Command{Kind: &gridpb.Command_MarkDeadLetter{MarkDeadLetter: &gridpb.MarkDeadLetterCommand{Webhook: "wh1", From: 5, State: state}}})
	}
	if res := mark("bogus"); res.Outcome == gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("a bad state: %+v", res)
	}
	if res := mark(DeadLetterReplaying); res.Outcome != gridpb.Outcome_OUTCOME_OK || res.DeadLetter.State != DeadLetterReplaying {
		t.Fatalf("replaying: %+v", res)
	}
	if res := mark(DeadLetterReplayed); res.Outcome != gridpb.Outcome_OUTCOME_OK || res.DeadLetter.ReplayedUnixNano != 30 {
		t.Fatalf("replayed: %+v", res)
	}
	put("wh2")
	if ws, err := Webhooks(r, h.prefix, 10); err != nil || len(ws) != 2 || ws[0].Id != "wh1" || ws[1].Id != "wh2" {
		t.Fatalf("webhooks: %v %v", ws, err)
	}
	if res := h.apply(40, &gridpb.Command{Kind: &gridpb.Command_DeleteWebhook{DeleteWebhook: &gridpb.DeleteWebhookCommand{Id: "wh1"}}}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("delete: %+v", res)
	}
	if _, ok, _ := ReadWebhook(r, h.prefix, "wh1"); ok {
		t.Fatal("deleted webhook still read")
	}
	if dls, _ := DeadLetters(r, h.prefix, "wh1", 10); len(dls) != 0 {
		t.Fatalf("dead letters of a deleted webhook: %v", dls)
	}
	if res := advance(9, 12, nil); res.Outcome != gridpb.Outcome_OUTCOME_NOT_FOUND {
		t.Fatalf("advance of a deleted webhook: %+v", res)
	}
	if w, ok, _ := ReadWebhook(r, h.prefix, "wh2"); !ok || w.Cursor != 0 {
		t.Fatalf("the other webhook: %v %v", w, ok)
	}
}

// Dead letters are read a page at a time from any start: none is out of reach.
func TestDeadLettersPageFromAnyStart(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	h.apply(10, &gridpb.Command{Kind: &gridpb.Command_PutWebhook{PutWebhook: &gridpb.PutWebhookCommand{
		Webhook: &gridpb.WebhookRecord{Id: "wh1", Url: "http://127.0.0.1:9/hook", Owner: "p", SealedSecret: []byte("s")}}}})
	for i := uint64(0); i < 30; i++ {
		res := h.apply(20, &gridpb.Command{Kind: &gridpb.Command_AdvanceWebhook{AdvanceWebhook: &gridpb.AdvanceWebhookCommand{
			Id: "wh1", From: i * 2, To: i*2 + 2, DeadLetter: &gridpb.WebhookDeadLetterRecord{Attempts: 1, LastError: "x"}}}})
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("dead letter %d: %+v", i, res)
		}
	}
	var froms []uint64
	for next, pages := uint64(0), 0; pages < 20; pages++ {
		dls, err := DeadLettersFrom(r, h.prefix, "wh1", next, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dls {
			froms = append(froms, d.From)
			next = d.From + 1
		}
		if len(dls) < 7 {
			break
		}
	}
	if len(froms) != 30 || froms[0] != 0 || froms[29] != 58 {
		t.Fatalf("paged dead letters: %v", froms)
	}
	if dls, _ := DeadLettersFrom(r, h.prefix, "wh1", 41, 1); len(dls) != 1 || dls[0].From != 42 {
		t.Fatalf("from 41: %v", dls)
	}
}
