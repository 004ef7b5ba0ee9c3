package ledger

import (
	"bytes"
	"testing"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

// FuzzDecodeLeaf: DecodeLeaf never panics, and what it accepts encodes back
// to the same bytes (one event, one leaf).
func FuzzDecodeLeaf(f *testing.F) {
	f.Add((&Event{V: 1, At: FormatTime(1), Kind: KindOrder, Type: "created", Order: "o_1", Seq: 1,
		Lines: []Line{{SKU: "A", Qty: 1}}, Details: map[string]string{"channel": "tmall"}}).Encode())
	f.Add([]byte(`{"v":1,"partition":0,"raft_index":0,"n":0,"at":"1970-01-01T00:00:00Z","kind":"stock","type":"reserved"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := DecodeLeaf(leaf)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), leaf) {
			t.Fatalf("accepted %q, which encodes as %q", leaf, e.Encode())
		}
	})
}

// FuzzVerifyBundle: a bundle of any bytes never panics the verifier and is
// never accepted without a signature of the log's key.
func FuzzVerifyBundle(f *testing.F) {
	_, vkey, _ := checkpoint.GenerateKey("ordergrid.fuzz/ledger")
	v, _ := checkpoint.NewVerifier(vkey)
	f.Add([]byte(`{"order":"o","checkpoint":"ordergrid.fuzz/ledger\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— ordergrid.fuzz/ledger AAAA\n","entries":[{"index":0,"leaf":"","proof":[],"event":{}}],"anchor":null}`))
	f.Add([]byte(`{"entries":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := VerifyBundle(data, v); err == nil {
			t.Fatalf("verified a bundle no key signed: %q", data)
		}
	})
}
