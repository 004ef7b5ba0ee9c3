package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/ledgerpb"
)

// exportLog builds a log of n canonical events (orders o0..o(n/2-1), two
// events each, one second apart per 1,000 events) with a signed checkpoint
// of all of them.
func exportLog(tb testing.TB, n int) (*Log, *checkpoint.Verifier) {
	tb.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	prefix := []byte("p/x/")
	m := NewMachine(0, prefix).(*Machine)
	apply := func(c *ledgerpb.LedgerCommand) {
		data, _ := proto.Marshal(c)
		b := db.NewIndexedBatch()
		var res ledgerpb.LedgerResult
		_ = proto.Unmarshal(m.Apply(b, 0, data), &res)
		if res.Error != "" {
			tb.Fatal(res.Error)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			tb.Fatal(err)
		}
	}
	sk, vk, err := checkpoint.GenerateKey("export.test/log")
	if err != nil {
		tb.Fatal(err)
	}
	apply(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Key{Key: &ledgerpb.LedgerKey{VerifierKey: vk, SignerKey: sk}}})
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	const batch = 4096
	for from := 0; from < n; from += batch {
		a := &ledgerpb.LedgerAppend{FromIndex: uint64(from / batch), NextIndex: uint64(from/batch + 1)}
		for i := from; i < min(n, from+batch); i++ {
			order := fmt.Sprintf("o%d", i/2)
			e := &Event{V: EncodingVersion, Partition: 0, RaftIndex: uint64(i), At: FormatTime(base.Add(time.Duration(i/1000) * time.Second).UnixNano()),
				Kind: KindOrder, Type: "created", Order: order, Seq: 1, Status: "pending_payment", Principal: "shop"}
			if i%2 == 1 {
				e.Kind, e.Type, e.Seq, e.Status, e.SKU, e.Warehouse, e.Qty = KindStock, "reserved", 0, "", "SKU-1", "WH-1", 1
			}
			a.Leaves = append(a.Leaves, &ledgerpb.LedgerLeaf{Leaf: e.Encode(), Order: order})
		}
		apply(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Append{Append: a}})
	}
	l := NewLog(db, prefix)
	root, err := l.Root(uint64(n))
	if err != nil {
		tb.Fatal(err)
	}
	signer, _ := checkpoint.NewSigner(sk)
	signed, err := signer.Sign(checkpoint.Checkpoint{Origin: signer.Origin(), Size: uint64(n), Root: root})
	if err != nil {
		tb.Fatal(err)
	}
	apply(&ledgerpb.LedgerCommand{Kind: &ledgerpb.LedgerCommand_Checkpoint{Checkpoint: &ledgerpb.LedgerCheckpoint{Signed: signed}}})
	v, _ := checkpoint.NewVerifier(vk)
	return l, v
}

func TestExportFiltersAndVerifies(t *testing.T) {
	l, v := exportLog(t, 10_000)
	ctx := context.Background()
	export := func(f ExportFilter, csv bool) (*bytes.Buffer, uint64) {
		t.Helper()
		var buf bytes.Buffer
		var w ExportWriter = NewJSONLinesExport(&buf)
		if csv {
			w = NewCSVExport(&buf)
		}
		n, err := l.Export(ctx, f, w)
		if err != nil {
			t.Fatal(err)
		}
		return &buf, n
	}
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for name, c := range map[string]struct {
		f    ExportFilter
		want uint64
	}{
		"all":       {ExportFilter{}, 10_000},
		"orders":    {ExportFilter{Orders: []string{"o7", "o4999", "missing"}, Describe: map[string]string{"subject": "s-1"}}, 4},
		"no orders": {ExportFilter{Orders: []string{}, Describe: map[string]string{"subject": "nobody"}}, 0},
		"time": {ExportFilter{From: base.Add(2 * time.Second), To: base.Add(4 * time.Second), Describe: map[string]string{
			"from": base.Add(2 * time.Second).Format(time.RFC3339Nano), "to": base.Add(4 * time.Second).Format(time.RFC3339Nano)}}, 2000},
		"channel": {ExportFilter{Channel: "douyin", Describe: map[string]string{"channel": "douyin"}, ChannelOf: func(o string) (string, error) {
			if strings.HasSuffix(o, "0") {
				return "douyin", nil
			}
			return "tmall", nil
		}}, 1000},
	} {
		for _, csv := range []bool{false, true} {
			buf, n := export(c.f, csv)
			if n != c.want {
				t.Fatalf("%s (csv %v): %d events, want %d", name, csv, n, c.want)
			}
			raw := buf.Bytes()
			got, m, err := VerifyExport(bytes.NewReader(raw), v, 10)
			if err != nil || m != n || got.Checkpoint.Size != 10_000 {
				t.Fatalf("%s (csv %v): verify: %d events, %v", name, csv, m, err)
			}
			if n == 0 {
				continue
			}
			// One byte changed anywhere in an entry: refused.
			for _, at := range []int{len(raw) - 10, len(raw) / 2} {
				bad := bytes.Clone(raw)
				if bad[at] == '\n' || bad[at] == ',' {
					at--
				}
				bad[at] ^= 1
				if _, _, err := VerifyExport(bytes.NewReader(bad), v, 0); !errors.Is(err, ErrExport) {
					t.Fatalf("%s (csv %v): byte %d changed: %v", name, csv, at, err)
				}
			}
		}
	}
}

// An export streams in bounded memory. ORDERGRID_EXPORT_EVENTS sets the
// log's size (default 100,000, 20,000 under the race detector, to keep CI
// short; the README's number is from 1,000,000).
func TestExportStreamsInBoundedMemory(t *testing.T) {
	n := 100_000
	if raceEnabled {
		n = 20_000
	}
	if s := os.Getenv("ORDERGRID_EXPORT_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 2 {
			t.Fatalf("ORDERGRID_EXPORT_EVENTS=%q", s)
		}
	}
	l, v := exportLog(t, n)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc
	var peak uint64
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var verified uint64
	go func() {
		_, m, err := VerifyExport(pr, v, 0)
		verified = m
		done <- err
	}()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	}()
	start := time.Now()
	exported, err := l.Export(context.Background(), ExportFilter{}, NewJSONLinesExport(pw))
	pw.CloseWithError(err)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	t.Logf("exported and verified %d events in %s; heap peak %d MiB over %d MiB before",
		exported, time.Since(start).Round(time.Millisecond), peak>>20, baseHeap>>20)
	if exported != uint64(n) || verified != uint64(n) {
		t.Fatalf("exported %d, verified %d", exported, verified)
	}
	if peak > baseHeap+256<<20 {
		t.Fatalf("heap grew by %d MiB exporting: not bounded", (peak-baseHeap)>>20)
	}
}

// An export proves it is complete: a removed, repeated or reordered line
// or a cut tail fails, naming the first missing leaf where the format lets
// the verifier know it; the intact export passes.
func TestExportCompleteness(t *testing.T) {
	l, v := exportLog(t, 300)
	ctx := context.Background()
	export := func(f ExportFilter, csv bool) []string {
		var buf bytes.Buffer
		var w ExportWriter = NewJSONLinesExport(&buf)
		if csv {
			w = NewCSVExport(&buf)
		}
		if _, err := l.Export(ctx, f, w); err != nil {
			t.Fatal(err)
		}
		return strings.SplitAfter(buf.String(), "\n")
	}
	verify := func(lines []string) (*VerifiedExport, uint64, error) {
		return VerifyExport(strings.NewReader(strings.Join(lines, "")), v, 0)
	}
	without := func(lines []string, drop ...int) []string {
		var out []string
		for i, s := range lines {
			if !slices.Contains(drop, i) {
				out = append(out, s)
			}
		}
		return out
	}
	order := ExportFilter{Orders: []string{"o7"}, Describe: map[string]string{"order": "o7"}}
	for _, csv := range []bool{false, true} {
		first := 1 // the line of leaf 0: after the header (and CSV's column row)
		if csv {
			first = 2
		}
		all := export(ExportFilter{}, csv) // header, 300 entries, seal, "" after the last newline
		seal := len(all) - 2
		got, n, err := verify(all)
		if err != nil || n != 300 || got.Complete != "checkpoint" {
			t.Fatalf("csv %v: intact export: %d events, %q, %v", csv, n, got.Complete, err)
		}
		swapped := slices.Clone(all)
		swapped[first+5], swapped[first+6] = swapped[first+6], swapped[first+5]
		repeated := slices.Insert(slices.Clone(all), first+5, all[first+5])
		for name, c := range map[string]struct {
			lines []string
			want  string
		}{
			"line removed":         {without(all, first+5), "leaf 5 is missing"},
			"first line removed":   {without(all, first), "leaf 0 is missing"},
			"line repeated":        {repeated, "leaf 5 after leaf 5"},
			"lines reordered":      {swapped, "leaf 5 after leaf 6"},
			"tail cut":             {all[:seal-1], "leaf 299 is missing"},
			"last entry removed":   {without(all, seal-1), "leaf 299 is missing"},
			"every entry removed":  {append(slices.Clone(all[:first]), all[seal:]...), "leaf 0 is missing"},
			"entry after the seal": {append(slices.Clone(all[:seal+1]), all[first]), "after the seal"},
		} {
			_, _, err := verify(c.lines)
			if !errors.Is(err, ErrExport) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("csv %v: %s: %v, want an error saying %q", csv, name, err, c.want)
			}
		}
		// Unfiltered and complete, the seal is not needed: the checkpoint
		// proves it (so exports from before seals still verify).
		if _, n, err := verify(without(all, seal)); err != nil || n != 300 {
			t.Errorf("csv %v: complete unfiltered export without its seal: %d, %v", csv, n, err)
		}

		// Filtered (order o7: leaves 14 and 15): the seal states them.
		one := export(order, csv)
		seal = len(one) - 2
		if got, n, err := verify(one); err != nil || n != 2 || got.Complete != "seal" || got.Filters["order"] != "o7" {
			t.Fatalf("csv %v: intact filtered export: %d, %v", csv, n, err)
		}
		byTime := ExportFilter{From: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Describe: map[string]string{"from": "2026-11-22T00:00:00Z"}}
		for name, c := range map[string]struct {
			lines []string
			want  string
		}{
			"last entry removed":  {without(one, seal-1), "leaf 15 is missing"},
			"first entry removed": {without(one, first), "holds 1 entries, the seal 2"},
			"seal removed":        {without(one, seal), "without its seal"},
			"tail cut":            {one[:seal-1], "without its seal"},
			"entry repeated":      {slices.Insert(slices.Clone(one), first, one[first]), "leaf 14 after leaf 14"},
			"seal of other filters": {append(slices.Clone(one[:seal]), export(byTime, csv)[len(all)-2:]...),
				"the seal is of the filters"},
		} {
			_, _, err := verify(c.lines)
			if !errors.Is(err, ErrExport) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("csv %v: filtered: %s: %v, want an error saying %q", csv, name, err, c.want)
			}
		}
	}
	// JSON Lines: a filtered export passed off as unfiltered (its filters
	// taken out of the header, its seal removed) is held to every leaf.
	one := export(order, false)
	one[0] = strings.Replace(one[0], `,"filters":{"order":"o7"}`, "", 1)
	if _, _, err := verify(without(one, len(one)-2)); !errors.Is(err, ErrExport) || !strings.Contains(err.Error(), "leaf 0 is missing") {
		t.Errorf("filters dropped from the header: %v", err)
	}
	// An entry outside the stated filter is refused.
	other := export(ExportFilter{Orders: []string{"o8"}, Describe: map[string]string{"order": "o8"}}, false)
	mixed := slices.Insert(slices.Clone(one), 1, other[2])
	mixed[0] = export(order, false)[0]
	if _, _, err := verify(mixed); !errors.Is(err, ErrExport) || !strings.Contains(err.Error(), `of order "o8"`) {
		t.Errorf("an entry of another order: %v", err)
	}
}

// VerifyExportEach hands every entry to its function with its line (JSON
// Lines) or row (CSV) and leaf, in order.
func TestVerifyExportEach(t *testing.T) {
	l, v := exportLog(t, 6)
	for _, csv := range []bool{false, true} {
		var buf bytes.Buffer
		var w ExportWriter = NewJSONLinesExport(&buf)
		first, word := 2, "line"
		if csv {
			w, first, word = NewCSVExport(&buf), 3, "row"
		}
		if _, err := l.Export(context.Background(), ExportFilter{}, w); err != nil {
			t.Fatal(err)
		}
		var got []string
		out, n, err := VerifyExportEach(&buf, v, func(where string, i uint64, ev *Event) {
			got = append(got, fmt.Sprintf("%s %d %s", where, i, ev.Order))
		})
		want := []string{}
		for i := range 6 {
			want = append(want, fmt.Sprintf("%s %d %d o%d", word, first+i, i, i/2))
		}
		if err != nil || n != 6 || out.Complete != "checkpoint" || len(out.Events) != 0 || !slices.Equal(got, want) {
			t.Fatalf("csv %v: %v, %d entries, %+v: %q, want %q", csv, err, n, out, got, want)
		}
	}
}
