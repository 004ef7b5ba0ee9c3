package statemachine

import (
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Platform fetches and connector cursors: a push that names an order
// rather than carrying it, or a connector's pull, queues a fetch of the
// order from the platform's order-detail API (spaceFetch, in the partition
// of the grid order it becomes); workers on the partition's leader take
// the due ones (spaceFetchIndex P, by due time), and each attempt's outcome
// is a command, so a fetch is neither lost by a crash nor taken by two
// workers' stale outcomes. A settled fetch (done or failed) stays to
// answer repeated notices until purged (spaceFetchIndex S, by settle
// time). A connector's cursor (spaceCursor) moves only from where its
// proposer read it.

// Bounds of the fetch commands.
const (
	// FetchesPerCommandMax bounds the fetches one queue_fetches command holds.
	FetchesPerCommandMax = 1024
	// fetchErrorBytesMax bounds a fetch's last error as kept.
	fetchErrorBytesMax = 1024
	// fetchTagsMax bounds the notice tags a fetch remembers.
	fetchTagsMax = 16
	// purgeFetchesMax bounds the fetches one purge removes.
	purgeFetchesMax = 4096
)

// FetchKey names a fetch: {channel}\x00{connection}\x00{platform order id}.
func FetchKey(channel, connection, orderID string) string {
	return channel + "\x00" + connection + "\x00" + orderID
}

func fetchKey(prefix []byte, f string) []byte { return key(prefix, spaceFetch, f) }

func fetchIndexKey(prefix []byte, kind byte, at int64, f string) []byte {
	k := append(key(prefix, spaceFetchIndex), kind)
	k = binary.BigEndian.AppendUint64(k, uint64(max(at, 0)))
	return append(k, f...)
}

const (
	fetchDue     byte = 'P'
	fetchSettled byte = 'S'
)

func cursorKey(prefix []byte, channel, connection string) []byte {
	return key(prefix, spaceCursor, channel, connection)
}

func settled(f *gridpb.ChannelFetchRecord) int64 {
	if f.Failed {
		return f.NextUnixNano
	}
	return f.DoneUnixNano
}

// queueFetches queues each fetch not queued before; one named before
// counts the notice and answers as stored (REPLAYED), unless it had failed
// for good, or it is done and the notice is a push's (refresh) with a tag
// it has not seen (the order moved on at the platform; the same push sent
// again is only counted): then it is due again, its attempts from zero (OK).
func (t *txn) queueFetches(c *gridpb.QueueFetchesCommand) *Result {
	if len(c.Fetches) > FetchesPerCommandMax {
		return &Result{Detail: fmt.Sprintf("queue_fetches: %d fetches, at most %d", len(c.Fetches), FetchesPerCommandMax)}
	}
	out := &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Results: make([]*Result, len(c.Fetches)), Fetches: make([]*gridpb.ChannelFetchRecord, len(c.Fetches))}
	for i, in := range c.Fetches {
		if in.GetChannel() == "" || in.OrderId == "" {
			out.Results[i] = &Result{Detail: "a fetch needs a channel and an order id"}
			out.Fetches[i] = in
			continue
		}
		name := FetchKey(in.Channel, in.Connection, in.OrderId)
		k := fetchKey(t.m.prefix, name)
		var f gridpb.ChannelFetchRecord
		if t.get(k, &f) {
			f.Notices++
			if f.Failed {
				// A new notice revives a fetch that gave up: the platform
				// names the order again, so it may answer now.
				t.del(fetchIndexKey(t.m.prefix, fetchSettled, f.NextUnixNano, name))
				f.Failed, f.Attempts, f.NextUnixNano = false, 0, t.at
				t.setEmpty(fetchIndexKey(t.m.prefix, fetchDue, f.NextUnixNano, name))
				t.put(k, &f)
				out.Results[i] = &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
				out.Fetches[i] = &f
				continue
			}
			newTag := in.Tag != "" && !slices.Contains(f.Tags, in.Tag) && len(f.Tags) < fetchTagsMax
			if newTag {
				f.Tags = append(f.Tags, in.Tag)
			}
			if f.DoneUnixNano != 0 && in.Refresh && newTag {
				// A push about a taken order: fetch it again, so what
				// changed at the platform (a payment) reaches the grid.
				t.del(fetchIndexKey(t.m.prefix, fetchSettled, f.DoneUnixNano, name))
				f.DoneUnixNano, f.Attempts, f.NextUnixNano, f.Tag = 0, 0, t.at, in.Tag
				t.setEmpty(fetchIndexKey(t.m.prefix, fetchDue, f.NextUnixNano, name))
				t.put(k, &f)
				out.Results[i] = &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
				out.Fetches[i] = &f
				continue
			}
			t.put(k, &f)
			out.Results[i] = &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED}
			out.Fetches[i] = &f
			continue
		}
		f = gridpb.ChannelFetchRecord{Channel: in.Channel, Connection: in.Connection, OrderId: in.OrderId, Tag: in.Tag,
			QueuedUnixNano: t.at, NextUnixNano: t.at, Notices: 1}
		if in.Tag != "" {
			f.Tags = []string{in.Tag}
		}
		t.put(k, &f)
		t.setEmpty(fetchIndexKey(t.m.prefix, fetchDue, f.NextUnixNano, name))
		out.Results[i] = &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
		out.Fetches[i] = &f
	}
	return out
}

// fetchOutcome records one attempt: done, failed for good, or due again
// at next. An outcome for an attempt count the record has moved past (a
// stale worker), or for a settled fetch, is refused as a conflict.
func (t *txn) fetchOutcome(c *gridpb.FetchOutcomeCommand) *Result {
	name := FetchKey(c.Channel, c.Connection, c.OrderId)
	k := fetchKey(t.m.prefix, name)
	var f gridpb.ChannelFetchRecord
	if !t.get(k, &f) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND}
	}
	if f.DoneUnixNano != 0 || f.Failed || f.Attempts != c.Attempts {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_STALE, Fetches: []*gridpb.ChannelFetchRecord{&f},
			Detail: fmt.Sprintf("fetch at attempt %d (settled: %t), outcome for attempt %d", f.Attempts, f.DoneUnixNano != 0 || f.Failed, c.Attempts)}
	}
	t.del(fetchIndexKey(t.m.prefix, fetchDue, f.NextUnixNano, name))
	f.Attempts++
	f.LastError = c.Error
	if len(f.LastError) > fetchErrorBytesMax {
		f.LastError = f.LastError[:fetchErrorBytesMax]
	}
	switch {
	case c.Done:
		f.DoneUnixNano, f.GridOrderId = t.at, c.GridOrderId
		t.setEmpty(fetchIndexKey(t.m.prefix, fetchSettled, f.DoneUnixNano, name))
	case c.Failed:
		f.Failed, f.NextUnixNano = true, t.at
		t.setEmpty(fetchIndexKey(t.m.prefix, fetchSettled, f.NextUnixNano, name))
	default:
		f.NextUnixNano = max(c.NextUnixNano, t.at)
		t.setEmpty(fetchIndexKey(t.m.prefix, fetchDue, f.NextUnixNano, name))
	}
	t.put(k, &f)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Fetches: []*gridpb.ChannelFetchRecord{&f}}
}

// purgeFetches removes settled fetches settled before a time, oldest first,
// at most the command's limit.
func (t *txn) purgeFetches(c *gridpb.PurgeFetchesCommand) *Result {
	limit := int(min(max(c.Limit, 1), purgeFetchesMax))
	lo := fetchIndexKey(t.m.prefix, fetchSettled, 0, "")
	hi := fetchIndexKey(t.m.prefix, fetchSettled, c.SettledBeforeUnixNano, "")
	var names []string
	base := len(lo) - 8 // the keys after {P|S}: {at u64}{fetch key}
	err := cluster.LocalReader{R: t.b}.Scan(lo, hi, limit, func(k, _ []byte) error {
		names = append(names, string(k[base:]))
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("statemachine: scan settled fetches: %v", err))
	}
	for _, rest := range names {
		name := rest[8:]
		var f gridpb.ChannelFetchRecord
		if t.get(fetchKey(t.m.prefix, name), &f) && settled(&f) == int64(binary.BigEndian.Uint64([]byte(rest[:8]))) {
			t.del(fetchKey(t.m.prefix, name))
		}
		t.del(append(append([]byte{}, lo[:base]...), rest...))
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Purged: uint32(len(names))}
}

// setCursor moves a connector's cursor from where the proposer read it.
func (t *txn) setCursor(c *gridpb.SetCursorCommand) *Result {
	in := c.Cursor
	if in.GetChannel() == "" {
		return &Result{Detail: "a cursor needs a channel"}
	}
	k := cursorKey(t.m.prefix, in.Channel, in.Connection)
	var cur gridpb.ConnectorCursorRecord
	t.get(k, &cur)
	if cur.CursorUnixNano != c.ExpectCursorUnixNano {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_STALE, Cursor: &cur,
			Detail: fmt.Sprintf("cursor at %d, not %d", cur.CursorUnixNano, c.ExpectCursorUnixNano)}
	}
	next := proto.Clone(in).(*gridpb.ConnectorCursorRecord)
	next.UpdatedUnixNano = t.at
	if len(next.LastError) > fetchErrorBytesMax {
		next.LastError = next.LastError[:fetchErrorBytesMax]
	}
	t.put(k, next)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Cursor: next}
}

func (t *txn) setEmpty(k []byte) {
	if err := t.b.Set(k, nil, nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
}

// DueFetches returns a partition's fetches due at or before now, soonest
// first, at most limit.
func DueFetches(r Reader, prefix []byte, now int64, limit int) ([]*gridpb.ChannelFetchRecord, error) {
	lo := fetchIndexKey(prefix, fetchDue, 0, "")
	hi := fetchIndexKey(prefix, fetchDue, now+1, "")
	var names []string
	err := r.Scan(lo, hi, limit, func(k, _ []byte) error {
		names = append(names, string(k[len(lo):])) // lo ends with 8 bytes of time
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*gridpb.ChannelFetchRecord, 0, len(names))
	for _, name := range names {
		f := &gridpb.ChannelFetchRecord{}
		ok, err := getProto(r, fetchKey(prefix, name), f)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// ReadFetch returns one fetch.
func ReadFetch(r Reader, prefix []byte, channel, connection, orderID string) (*gridpb.ChannelFetchRecord, bool, error) {
	f := &gridpb.ChannelFetchRecord{}
	ok, err := getProto(r, fetchKey(prefix, FetchKey(channel, connection, orderID)), f)
	return f, ok, err
}

// Fetches lists a partition's fetches (pending, done and failed), in key
// order, at most limit.
func Fetches(r Reader, prefix []byte, limit int) ([]*gridpb.ChannelFetchRecord, error) {
	space := spaceStart(prefix, spaceFetch)
	var out []*gridpb.ChannelFetchRecord
	err := r.Scan(space, prefixEnd(space), limit, func(_, v []byte) error {
		f := &gridpb.ChannelFetchRecord{}
		if err := proto.Unmarshal(v, f); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// ReadCursor returns a connector's cursor.
func ReadCursor(r Reader, prefix []byte, channel, connection string) (*gridpb.ConnectorCursorRecord, bool, error) {
	c := &gridpb.ConnectorCursorRecord{}
	ok, err := getProto(r, cursorKey(prefix, channel, connection), c)
	return c, ok, err
}
