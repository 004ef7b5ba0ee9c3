package stream

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/ordergrid/ordergrid/ledger"
)

// errNotFast is a leaf the fast decoder does not read (unknown field, an
// unexpected shape): encoding/json reads it.
var errNotFast = errors.New("stream: not in the fast form")

// decodeEvent decodes a leaf into e. Leaves are canonical JSON with known
// fields (ledger/doc.go), so a small reader of exactly that form does in a
// fraction of encoding/json's time what the hub does for every event; any
// leaf it does not expect goes to encoding/json, so the result is always
// encoding/json's (a fuzz test compares them).
func decodeEvent(leaf []byte, e *ledger.Event) error {
	*e = ledger.Event{}
	d := leafReader{b: leaf}
	if err := d.event(e); err == nil && d.i == len(d.b) {
		return nil
	}
	*e = ledger.Event{}
	return json.Unmarshal(leaf, e)
}

// leafReader reads canonical JSON: no whitespace, strings with escapes
// only where encoding/json writes them.
type leafReader struct {
	b []byte
	i int
}

func (d *leafReader) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a JSON string.
func (d *leafReader) str() (string, error) {
	if !d.byte('"') {
		return "", errNotFast
	}
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			// Escapes and non-ASCII (which encoding/json checks and may
			// replace): leave them to encoding/json.
			return d.slowStr(start - 1)
		}
		d.i++
	}
	return "", errNotFast
}

// slowStr reads the string starting at its quote with encoding/json.
func (d *leafReader) slowStr(quote int) (string, error) {
	end := quote + 1
	for end < len(d.b) {
		if d.b[end] == '\\' {
			end += 2
			continue
		}
		if d.b[end] == '"' {
			break
		}
		end++
	}
	if end >= len(d.b) {
		return "", errNotFast
	}
	var s string
	if err := json.Unmarshal(d.b[quote:end+1], &s); err != nil {
		return "", errNotFast
	}
	d.i = end + 1
	return s, nil
}

// int reads a JSON integer.
func (d *leafReader) int() (int64, error) {
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i-digits > 1 && d.b[digits] == '0' {
		return 0, errNotFast // a leading zero is not JSON
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return 0, errNotFast
	}
	return n, nil
}

func (d *leafReader) uint() (uint64, error) {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i-start > 1 && d.b[start] == '0' {
		return 0, errNotFast // a leading zero is not JSON
	}
	n, err := strconv.ParseUint(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return 0, errNotFast
	}
	return n, nil
}

// object reads {"k":v,...}, calling field for each key with the reader at
// its value.
func (d *leafReader) object(field func(key string) error) error {
	if !d.byte('{') {
		return errNotFast
	}
	if d.byte('}') {
		return nil
	}
	for {
		k, err := d.str()
		if err != nil || !d.byte(':') {
			return errNotFast
		}
		if err := field(k); err != nil {
			return err
		}
		if d.byte('}') {
			return nil
		}
		if !d.byte(',') {
			return errNotFast
		}
	}
}

func (d *leafReader) event(e *ledger.Event) error {
	return d.object(func(k string) error {
		var err error
		var n uint64
		switch k {
		case "v":
			n, err = d.uint()
			e.V = int(n)
		case "partition":
			n, err = d.uint()
			if n > 1<<32-1 {
				return errNotFast
			}
			e.Partition = uint32(n)
		case "raft_index":
			e.RaftIndex, err = d.uint()
		case "n":
			n, err = d.uint()
			if n > 1<<32-1 {
				return errNotFast
			}
			e.N = uint32(n)
		case "at":
			e.At, err = d.str()
		case "kind":
			e.Kind, err = d.str()
		case "type":
			e.Type, err = d.str()
		case "order":
			e.Order, err = d.str()
		case "seq":
			e.Seq, err = d.uint()
		case "status":
			e.Status, err = d.str()
		case "sku":
			e.SKU, err = d.str()
		case "warehouse":
			e.Warehouse, err = d.str()
		case "qty":
			e.Qty, err = d.int()
		case "principal":
			e.Principal, err = d.str()
		case "lines":
			err = d.lines(e)
		case "details":
			e.Details = map[string]string{}
			err = d.object(func(k string) error {
				v, err := d.str()
				e.Details[k] = v
				return err
			})
		default:
			return errNotFast
		}
		return err
	})
}

func (d *leafReader) lines(e *ledger.Event) error {
	if !d.byte('[') {
		return errNotFast
	}
	if d.byte(']') {
		e.Lines = []ledger.Line{}
		return nil
	}
	for {
		var l ledger.Line
		err := d.object(func(k string) error {
			var err error
			switch k {
			case "sku":
				l.SKU, err = d.str()
			case "qty":
				l.Qty, err = d.int()
			case "unit_price":
				l.UnitPrice, err = d.str()
			case "warehouse":
				l.Warehouse, err = d.str()
			default:
				return errNotFast
			}
			return err
		})
		if err != nil {
			return err
		}
		e.Lines = append(e.Lines, l)
		if d.byte(']') {
			return nil
		}
		if !d.byte(',') {
			return errNotFast
		}
	}
}
