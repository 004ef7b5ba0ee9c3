package stream

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

func sampleLeaves() [][]byte {
	var out [][]byte
	for _, e := range []ledger.Event{
		created("o_1", "douyin", "WH-A", "WH-B"),
		moved("o_1", "paid", 2),
		reserved("o_1", "WH-A"),
		{Kind: ledger.KindOrder, Type: "shipped", Order: "o_\u4e2d\"x\\", Status: "shipped", Principal: "ops <1>",
			Details: map[string]string{"carrier": "SF", "tracking_number": "SF123\n", "note": "é"}},
		{Kind: ledger.KindStock, Type: "stock_set", SKU: "S", Warehouse: "W", Qty: -3},
		{Kind: ledger.KindOrder, Type: "created", Order: "o_2", Lines: []ledger.Line{{SKU: "S", Qty: 1, UnitPrice: "9.99"}}},
	} {
		_, leaf := e.Place(outbox.Place{Partition: 7, RaftIndex: 99, N: 2, AtUnixNano: 1_764_000_000_123_456_789})
		out = append(out, leaf)
	}
	return out
}

// decodeEvent gives encoding/json's answer, leaf or not.
func FuzzDecodeEvent(f *testing.F) {
	for _, l := range sampleLeaves() {
		f.Add(l)
	}
	f.Add([]byte(`{"v":01}`))
	f.Add([]byte(`{"kind":null,"lines":[]}`))
	f.Add([]byte(`{"Kind":"order","details":{}}`))
	f.Fuzz(func(t *testing.T, leaf []byte) {
		var fast, slow ledger.Event
		errFast := decodeEvent(leaf, &fast)
		errSlow := json.Unmarshal(leaf, &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%q: fast %v, encoding/json %v", leaf, errFast, errSlow)
		}
		if errSlow == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %+v\njson %+v", leaf, fast, slow)
		}
	})
}

func TestDecodeEventIsFastOnLeaves(t *testing.T) {
	for _, l := range sampleLeaves() {
		var e ledger.Event
		d := leafReader{b: l}
		if err := d.event(&e); err != nil || d.i != len(l) {
			t.Errorf("the fast reader refuses a leaf: %v %s", err, l)
		}
	}
}

// ParseFilter never panics, and refuses with a FilterError naming a field.
func FuzzParseFilter(f *testing.F) {
	f.Add("channel", "douyin,tmall")
	f.Add("status", "paid")
	f.Add("kind", "order,stock")
	f.Add("chanel", "x")
	f.Fuzz(func(t *testing.T, name, value string) {
		_, err := ParseFilter(map[string][]string{name: {value}})
		var fe *FilterError
		if err != nil && (!errors.As(err, &fe) || fe.Field == "") {
			t.Fatalf("%q=%q: %v is not a FilterError naming a field", name, value, err)
		}
	})
}
