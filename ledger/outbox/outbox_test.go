package outbox_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// event is an outbox.Event whose leaf names its place.
type event struct{ order string }

func (e event) Place(p outbox.Place) (string, []byte) {
	return e.order, fmt.Appendf(nil, "%d/%d/%d@%d", p.Partition, p.RaftIndex, p.N, p.AtUnixNano)
}

func open(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// write commits one command's events at Raft index.
func write(t *testing.T, db *pebble.DB, prefix []byte, index uint64, orders ...string) {
	t.Helper()
	b := db.NewBatch()
	w := outbox.NewWriter(b, 3, prefix, index, int64(index)*1000)
	for _, o := range orders {
		w.Add(event{o})
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// Events come back in commit order, placed, from any cursor, within the
// bounds; a trim drops what is below its index and nothing else; another
// partition's outbox is not read.
func TestWriteReadTrim(t *testing.T) {
	db := open(t)
	prefix, other := []byte("p/3/"), []byte("p/4/")
	write(t, db, prefix, 5, "a", "", "b")
	write(t, db, prefix, 7, "c")
	write(t, db, other, 6, "x")
	r := cluster.LocalReader{R: db}

	got, next, err := outbox.Read(r, prefix, outbox.Cursor{}, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a 3/5/0@5000", " 3/5/1@5000", "b 3/5/2@5000", "c 3/7/0@7000"}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i, e := range got {
		if s := e.Order + " " + string(e.Leaf); s != want[i] || e.AtUnixNano != int64(e.At.Index)*1000 {
			t.Fatalf("event %d is %q at %d, want %q", i, s, e.AtUnixNano, want[i])
		}
	}
	if next != (outbox.Cursor{Index: 7, N: 1}) {
		t.Fatalf("next cursor %+v", next)
	}

	got, next, err = outbox.Read(r, prefix, outbox.Cursor{Index: 5, N: 1}, 2, 1<<20)
	if err != nil || len(got) != 2 || got[0].At != (outbox.Cursor{Index: 5, N: 1}) || next != (outbox.Cursor{Index: 5, N: 3}) {
		t.Fatalf("bounded read: %d events, next %+v, %v", len(got), next, err)
	}
	got, _, err = outbox.Read(r, prefix, outbox.Cursor{}, 10, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("a read of 1 byte got %d events, %v (want the first)", len(got), err)
	}

	b := db.NewBatch()
	if err := outbox.Trim(b, prefix, 7); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	got, _, err = outbox.Read(r, prefix, outbox.Cursor{}, 10, 1<<20)
	if err != nil || len(got) != 1 || got[0].Order != "c" {
		t.Fatalf("after the trim: %d events, %v", len(got), err)
	}
	got, _, err = outbox.Read(r, other, outbox.Cursor{}, 10, 1<<20)
	if err != nil || len(got) != 1 || got[0].Order != "x" {
		t.Fatalf("the other partition: %d events, %v", len(got), err)
	}
}

// An entry the outbox did not write is an error, not an event.
func TestReadMalformed(t *testing.T) {
	db := open(t)
	prefix := []byte("p/1/")
	if err := db.Set(append([]byte("p/1/"+outbox.Space), 1, 2, 3), []byte("short"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	_, next, err := outbox.Read(cluster.LocalReader{R: db}, prefix, outbox.Cursor{}, 10, 1<<20)
	if !errors.Is(err, outbox.ErrMalformed) || next != (outbox.Cursor{}) {
		t.Fatalf("malformed entry: next %+v, %v", next, err)
	}
}
