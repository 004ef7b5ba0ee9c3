package statemachine

import (
	"slices"
	"testing"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

func TestFetchesQueueOnceRetryAndSettle(t *testing.T) {
	h := newHarness(t)
	r := cluster.LocalReader{R: h.db}
	queue := func(at int64, ids ...string) *Result {
		t.Helper()
		var fs []*gridpb.ChannelFetchRecord
		for _, id := range ids {
			fs = append(fs, &gridpb.ChannelFetchRecord{Channel: "douyin", Connection: "shop", OrderId: id, Tag: "100"})
		}
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_QueueFetches{QueueFetches: &gridpb.QueueFetchesCommand{Fetches: fs}}})
	}
	outcome := func(at int64, id string, attempts uint32, o *gridpb.FetchOutcomeCommand) *Result {
		t.Helper()
		o.Channel, o.Connection, o.OrderId, o.Attempts = "douyin", "shop", id, attempts
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_FetchOutcome{FetchOutcome: o}})
	}
	due := func(now int64) []string {
		t.Helper()
		fs, err := DueFetches(r, h.prefix, now, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.OrderId)
		}
		return ids
	}
	res := queue(10, "1", "2")
	if res.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK || res.Results[1].Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("queue: %+v", res)
	}
	// A repeated notice is counted, not queued again.
	res = queue(11, "1")
	if res.Results[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED || res.Fetches[0].Notices != 2 || res.Fetches[0].Attempts != 0 {
		t.Fatalf("repeat: %+v", res)
	}
	if got := due(9); len(got) != 0 {
		t.Fatalf("due before queued: %v", got)
	}
	if got := due(20); len(got) != 2 {
		t.Fatalf("due: %v", got)
	}
	// Attempt 1 of order 1 fails: due again at 100, not before.
	if res := outcome(20, "1", 0, &gridpb.FetchOutcomeCommand{Error: "throttled", NextUnixNano: 100}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("retry: %+v", res)
	}
	if got := due(50); len(got) != 1 || got[0] != "2" {
		t.Fatalf("due at 50: %v", got)
	}
	// A stale worker's outcome for attempt 0 is refused.
	if res := outcome(30, "1", 0, &gridpb.FetchOutcomeCommand{Done: true}); res.Outcome != gridpb.Outcome_OUTCOME_STALE {
		t.Fatalf("stale outcome applied: %+v", res)
	}
	if res := outcome(100, "1", 1, &gridpb.FetchOutcomeCommand{Done: true, GridOrderId: "ord_1"}); res.Outcome != gridpb.Outcome_OUTCOME_OK ||
		res.Fetches[0].DoneUnixNano != 100 || res.Fetches[0].GridOrderId != "ord_1" {
		t.Fatalf("done: %+v", res)
	}
	if res := outcome(100, "2", 0, &gridpb.FetchOutcomeCommand{Failed: true, Error: "unknown order"}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("failed: %+v", res)
	}
	if got := due(1 << 40); len(got) != 0 {
		t.Fatalf("settled fetches due: %v", got)
	}
	// A notice for an order whose fetch failed for good revives it.
	if res := queue(150, "3"); res.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("queue 3: %+v", res)
	}
	if res := outcome(150, "3", 0, &gridpb.FetchOutcomeCommand{Failed: true, Error: "unknown order"}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("failed: %+v", res)
	}
	if res := queue(160, "3"); res.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK || res.Fetches[0].Failed || res.Fetches[0].Attempts != 0 ||
		res.Fetches[0].Notices != 2 {
		t.Fatalf("revived: %+v", res)
	}
	if got := due(160); len(got) != 1 || got[0] != "3" {
		t.Fatalf("due after revival: %v", got)
	}
	// A push's notice with a tag new to a done fetch fetches it again (the
	// order moved on at the platform); the same push again does not.
	refresh := func(at int64, id, tag string) *Result {
		t.Helper()
		return h.apply(at, &gridpb.Command{Kind: &gridpb.Command_QueueFetches{QueueFetches: &gridpb.QueueFetchesCommand{Fetches: []*gridpb.ChannelFetchRecord{
			{Channel: "douyin", Connection: "shop", OrderId: id, Tag: tag, Refresh: true}}}}})
	}
	if res := refresh(120, "1", "100"); res.Results[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED {
		t.Fatalf("the same push again: %+v", res)
	}
	if res := refresh(121, "1", "101"); res.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK || res.Fetches[0].DoneUnixNano != 0 ||
		!slices.Equal(res.Fetches[0].Tags, []string{"100", "101"}) {
		t.Fatalf("a new push about a taken order: %+v", res)
	}
	if got := due(121); !slices.Contains(got, "1") {
		t.Fatalf("refreshed fetch not due: %v", got)
	}
	if res := outcome(122, "1", 0, &gridpb.FetchOutcomeCommand{Done: true, GridOrderId: "ord_1"}); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("done again: %+v", res)
	}
	// A notice for a settled order is answered from the record, not fetched.
	if res := queue(200, "1"); res.Results[0].Outcome != gridpb.Outcome_OUTCOME_REPLAYED || res.Fetches[0].DoneUnixNano == 0 {
		t.Fatalf("notice after done: %+v", res)
	}
	// Purge removes settled fetches settled before the time, then a notice queues anew.
	if res := h.apply(300, &gridpb.Command{Kind: &gridpb.Command_PurgeFetches{PurgeFetches: &gridpb.PurgeFetchesCommand{SettledBeforeUnixNano: 150, Limit: 10}}}); res.Purged != 2 {
		t.Fatalf("purged %+v", res)
	}
	if _, ok, _ := ReadFetch(r, h.prefix, "douyin", "shop", "1"); ok {
		t.Fatal("purged fetch still there")
	}
	if res := queue(400, "1"); res.Results[0].Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("queue after purge: %+v", res)
	}
	if all, err := Fetches(r, h.prefix, 10); err != nil || len(all) != 2 {
		t.Fatalf("fetches: %v %v", all, err)
	}
}

func TestCursorMovesFromWhereItWasRead(t *testing.T) {
	h := newHarness(t)
	set := func(expect, to int64) *Result {
		return h.apply(to, &gridpb.Command{Kind: &gridpb.Command_SetCursor{SetCursor: &gridpb.SetCursorCommand{ExpectCursorUnixNano: expect,
			Cursor: &gridpb.ConnectorCursorRecord{Channel: "tmall", Connection: "shop", CursorUnixNano: to}}}})
	}
	if res := set(0, 100); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("%+v", res)
	}
	if res := set(0, 200); res.Outcome != gridpb.Outcome_OUTCOME_STALE || res.Cursor.CursorUnixNano != 100 {
		t.Fatalf("a second puller moved the cursor: %+v", res)
	}
	if res := set(100, 200); res.Outcome != gridpb.Outcome_OUTCOME_OK {
		t.Fatalf("%+v", res)
	}
	c, ok, err := ReadCursor(cluster.LocalReader{R: h.db}, h.prefix, "tmall", "shop")
	if err != nil || !ok || c.CursorUnixNano != 200 {
		t.Fatalf("read %v %v %v", c, ok, err)
	}
}
