package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ordergrid/ordergrid/jsonshape"
)

// jsonIn reads one JSON document strictly and without reflection, for the
// request bodies on the hot path (new orders, batches, order events): the
// caller walks the document's known shape with begin/next/key and the
// scalar readers, and the first fault stops it with a problem that names
// the field by its full path ("orders[3].lines[0].qty"). Stricter than
// encoding/json on purpose: keys match exactly (not case-insensitively),
// a key may appear once per object, strings must be valid UTF-8 without
// lone surrogate escapes, and array elements may not be null.
type jsonIn struct {
	b   []byte
	i   int
	err *Problem
	// syntactic: err is malformed JSON (no value's end can be found after
	// it), not a value of the wrong shape.
	syntactic bool
	path      jsonshape.Path
	// scratch holds a string with escapes while it is decoded.
	scratch []byte
}

func (r *jsonIn) push(name string) { r.path.Member(name) }
func (r *jsonIn) pushIndex(i int)  { r.path.Element(i) }
func (r *jsonIn) pop()             { r.path.Pop() }

// field is the path of the value being read, "" at the top.
func (r *jsonIn) field() string { return r.path.String() }

// syntax fails the read with a syntax problem at the current byte.
func (r *jsonIn) syntax(what string) bool {
	if r.err == nil {
		r.syntactic = true
		if r.i >= len(r.b) {
			r.err = malformed(bodyField, "malformed JSON: the body ends early")
		} else {
			r.err = malformed(bodyField, fmt.Sprintf("malformed JSON at byte %d: %s", r.i+1, what))
		}
	}
	return false
}

// wrong fails the read: the value at the current path is of the wrong type.
func (r *jsonIn) wrong(want string) bool {
	if r.err == nil {
		f, name := r.field(), r.field()
		if f == "" {
			f, name = bodyField, "the body"
		}
		r.err = malformed(f, fmt.Sprintf("%s must be %s, got JSON %s", name, want, r.kind()))
	}
	return false
}

// bad fails the read with a detail about the value at the current path.
func (r *jsonIn) bad(detail string) bool {
	if r.err == nil {
		f := r.field()
		r.err = malformed(f, strings.TrimPrefix(f+": "+detail, ": "))
	}
	return false
}

// kind names the JSON type of the value at the current byte.
func (r *jsonIn) kind() string {
	if r.i >= len(r.b) {
		return "nothing"
	}
	switch c := r.b[r.i]; {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	default:
		return "text"
	}
}

func (r *jsonIn) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// literal consumes word (true, false, null) at the current byte.
func (r *jsonIn) literal(word string) bool {
	if len(r.b)-r.i < len(word) || string(r.b[r.i:r.i+len(word)]) != word {
		return r.syntax("invalid literal")
	}
	r.i += len(word)
	return true
}

// peek is the next byte after whitespace, 0 at the end.
func (r *jsonIn) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// begin opens an object ('{') or array ('['): ok false on a fault, isNull
// when the value is null (nothing to read).
func (r *jsonIn) begin(open byte) (isNull, ok bool) {
	r.ws()
	if r.i >= len(r.b) {
		return false, r.syntax("")
	}
	switch r.b[r.i] {
	case open:
		r.i++
		return false, true
	case 'n':
		return true, r.literal("null")
	}
	if open == '{' {
		return false, r.wrong("an object")
	}
	return false, r.wrong("an array")
}

// next reports whether the open object or array (closed by close) has
// another member or element, consuming the comma before it.
func (r *jsonIn) next(close byte, first bool) bool {
	r.ws()
	if r.i >= len(r.b) {
		return r.syntax("")
	}
	if r.b[r.i] == close {
		r.i++
		return false
	}
	if !first {
		if r.b[r.i] != ',' {
			return r.syntax(fmt.Sprintf("expected ',' or '%c'", close))
		}
		r.i++
		r.ws()
		if r.i < len(r.b) && r.b[r.i] == close {
			return r.syntax("a trailing comma")
		}
	}
	return true
}

// key reads a member's name and its colon. The bytes alias the input or
// the scratch buffer: valid until the next string is read.
func (r *jsonIn) key() ([]byte, bool) {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, r.syntax("expected a member name")
	}
	k, ok := r.raw()
	if !ok {
		return nil, false
	}
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != ':' {
		return nil, r.syntax("expected ':'")
	}
	r.i++
	return k, true
}

// str reads a string value (null reads as "").
func (r *jsonIn) str(dst *string) bool {
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == '"' {
		s, ok := r.raw()
		if ok {
			*dst = string(s)
		}
		return ok
	}
	if r.i < len(r.b) && r.b[r.i] == 'n' {
		return r.literal("null")
	}
	return r.wrong("a string")
}

// boolean reads true or false (null reads as false).
func (r *jsonIn) boolean(dst *bool) bool {
	r.ws()
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case 't':
			*dst = true
			return r.literal("true")
		case 'f':
			*dst = false
			return r.literal("false")
		case 'n':
			return r.literal("null")
		}
	}
	return r.wrong("a boolean")
}

// int64 reads an integer (null reads as 0): a number with a fraction or
// an exponent, or out of range, is of the wrong type.
func (r *jsonIn) int64(dst *int64) bool {
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == 'n' {
		return r.literal("null")
	}
	if r.i >= len(r.b) || (r.b[r.i] != '-' && (r.b[r.i] < '0' || r.b[r.i] > '9')) {
		return r.wrong("an integer")
	}
	start := r.i
	neg := r.b[r.i] == '-'
	if neg {
		r.i++
	}
	digits := r.i
	switch {
	case r.i < len(r.b) && r.b[r.i] == '0':
		r.i++
	case r.i < len(r.b) && r.b[r.i] >= '1' && r.b[r.i] <= '9':
		for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
			r.i++
		}
	default:
		return r.syntax("a number without digits")
	}
	end := r.i
	integral := true
	if r.i < len(r.b) && r.b[r.i] == '.' {
		integral = false
		r.i++
		if !r.digits() {
			return false
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		integral = false
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if !r.digits() {
			return false
		}
	}
	var v uint64
	for _, c := range r.b[digits:end] {
		if v > (1<<63)/10 {
			integral = false
			break
		}
		v = v*10 + uint64(c-'0')
	}
	if integral && (v > 1<<63 || (!neg && v == 1<<63)) {
		integral = false
	}
	if !integral {
		r.i = start
		f := r.field()
		r.err = malformed(f, fmt.Sprintf("%s must be an integer, got JSON number %s", f, r.numberText(start)))
		return false
	}
	if neg {
		*dst = -int64(v)
	} else {
		*dst = int64(v)
	}
	return true
}

// int32 reads an integer as int64 does, refusing one beyond int32.
func (r *jsonIn) int32(dst *int32) bool {
	start := r.i
	var v int64
	if !r.int64(&v) {
		return false
	}
	if v < -1<<31 || v > 1<<31-1 {
		r.i = start
		r.ws()
		f := r.field()
		r.err = malformed(f, fmt.Sprintf("%s must be a 32-bit integer, got JSON number %s", f, r.numberText(r.i)))
		return false
	}
	*dst = int32(v)
	return true
}

// digits consumes one or more decimal digits.
func (r *jsonIn) digits() bool {
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	if r.i == start {
		return r.syntax("expected a digit")
	}
	return true
}

// numberText is the number literal at start, shortened for a message.
func (r *jsonIn) numberText(start int) string {
	end := start
	for end < len(r.b) && strings.IndexByte("+-.0123456789eE", r.b[end]) >= 0 {
		end++
	}
	if end-start > 32 {
		return string(r.b[start:start+32]) + "…"
	}
	return string(r.b[start:end])
}

// raw reads the string at the current byte (its opening quote) and returns
// its decoded bytes, aliasing the input when it has no escapes.
func (r *jsonIn) raw() ([]byte, bool) {
	r.i++ // the opening quote
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return r.b[start : r.i-1], true
		case c == '\\':
			r.scratch = append(r.scratch[:0], r.b[start:r.i]...)
			return r.escaped()
		case c < 0x20:
			return nil, r.syntax("a control character in a string")
		case c < utf8.RuneSelf:
			r.i++
		default:
			rn, size := utf8.DecodeRune(r.b[r.i:])
			if rn == utf8.RuneError && size == 1 {
				return nil, r.bad("not valid UTF-8")
			}
			r.i += size
		}
	}
	return nil, r.syntax("")
}

// escaped reads the rest of a string that has escapes into scratch.
func (r *jsonIn) escaped() ([]byte, bool) {
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return r.scratch, true
		case c == '\\':
			if r.i+1 >= len(r.b) {
				return nil, r.syntax("")
			}
			r.i += 2
			switch r.b[r.i-1] {
			case '"', '\\', '/':
				r.scratch = append(r.scratch, r.b[r.i-1])
			case 'b':
				r.scratch = append(r.scratch, '\b')
			case 'f':
				r.scratch = append(r.scratch, '\f')
			case 'n':
				r.scratch = append(r.scratch, '\n')
			case 'r':
				r.scratch = append(r.scratch, '\r')
			case 't':
				r.scratch = append(r.scratch, '\t')
			case 'u':
				rn, ok := r.hex4()
				if !ok {
					return nil, false
				}
				if utf16.IsSurrogate(rn) {
					lo := rune(-1)
					if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
						r.i += 2
						if lo, ok = r.hex4(); !ok {
							return nil, false
						}
					}
					if rn = utf16.DecodeRune(rn, lo); rn == utf8.RuneError {
						return nil, r.bad("a lone surrogate escape (not valid UTF-16)")
					}
				}
				r.scratch = utf8.AppendRune(r.scratch, rn)
			default:
				r.i--
				return nil, r.syntax("an invalid escape")
			}
		case c < 0x20:
			return nil, r.syntax("a control character in a string")
		case c < utf8.RuneSelf:
			r.scratch = append(r.scratch, c)
			r.i++
		default:
			rn, size := utf8.DecodeRune(r.b[r.i:])
			if rn == utf8.RuneError && size == 1 {
				return nil, r.bad("not valid UTF-8")
			}
			r.scratch = append(r.scratch, r.b[r.i:r.i+size]...)
			r.i += size
		}
	}
	return nil, r.syntax("")
}

// hex4 reads the four hex digits of a \u escape.
func (r *jsonIn) hex4() (rune, bool) {
	if len(r.b)-r.i < 4 {
		r.i = len(r.b)
		return 0, r.syntax("")
	}
	var v rune
	for _, c := range r.b[r.i : r.i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, r.syntax("an invalid \\u escape")
		}
	}
	r.i += 4
	return v, true
}

// end checks that only whitespace follows the document.
func (r *jsonIn) end() bool {
	r.ws()
	if r.i < len(r.b) {
		return r.syntax("unexpected data after the JSON value")
	}
	return true
}

// seen marks member bit of an object as read; a second time is a
// duplicate key, refused (encoding/json would let the last one win).
func (r *jsonIn) seen(mask *uint32, bit uint32, name string) bool {
	if *mask&bit != 0 {
		r.push(name)
		defer r.pop()
		return r.bad("a duplicate key")
	}
	*mask |= bit
	return true
}

// unknown fails the read on a member the object does not have.
func (r *jsonIn) unknown(name []byte) bool {
	if r.err == nil {
		r.push(string(name))
		f := r.field()
		r.pop()
		r.err = malformed(f, "unknown field "+strconv.Quote(f))
	}
	return false
}

// stringList reads an array of strings.
func (r *jsonIn) stringList(dst *[]string) bool {
	isNull, ok := r.begin('[')
	if !ok || isNull {
		return ok
	}
	for first := true; r.next(']', first); first = false {
		r.pushIndex(len(*dst))
		if r.peek() == 'n' {
			return r.wrong("a string")
		}
		var s string
		if !r.str(&s) {
			return false
		}
		r.pop()
		*dst = append(*dst, s)
	}
	return r.err == nil
}

// stringMap reads an object of string values.
func (r *jsonIn) stringMap(dst *map[string]string) bool {
	isNull, ok := r.begin('{')
	if !ok || isNull {
		return ok
	}
	for first := true; r.next('}', first); first = false {
		k, ok := r.key()
		if !ok {
			return false
		}
		name := string(k)
		r.push(name)
		if _, dup := (*dst)[name]; dup {
			return r.bad("a duplicate key")
		}
		var v string
		if !r.str(&v) {
			return false
		}
		r.pop()
		if *dst == nil {
			*dst = map[string]string{}
		}
		(*dst)[name] = v
	}
	return r.err == nil
}

// skipDepthMax bounds the nesting skip follows.
const skipDepthMax = 64

// skip reads past one JSON value of any shape, checking its syntax: after
// a value of the wrong shape, the reader goes on after it.
func (r *jsonIn) skip(depth int) bool {
	r.ws()
	if r.i >= len(r.b) {
		return r.syntax("")
	}
	switch c := r.b[r.i]; {
	case c == '{' || c == '[':
		if depth >= skipDepthMax {
			return r.syntax("nested too deeply")
		}
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		r.i++
		for first := true; r.next(close, first); first = false {
			if close == '}' {
				if _, ok := r.key(); !ok {
					return false
				}
			}
			if !r.skip(depth + 1) {
				return false
			}
		}
		return r.err == nil
	case c == '"':
		_, ok := r.raw()
		return ok
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		if c == '-' {
			r.i++
		}
		switch {
		case r.i < len(r.b) && r.b[r.i] == '0':
			r.i++
		case !r.digits():
			return false
		}
		if r.i < len(r.b) && r.b[r.i] == '.' {
			r.i++
			if !r.digits() {
				return false
			}
		}
		if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
			r.i++
			if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
				r.i++
			}
			return r.digits()
		}
		return true
	default:
		return r.syntax("expected a JSON value")
	}
}

// strictJSON checks a body before encoding/json reads it: one JSON value
// and nothing after it, no key twice in an object (encoding/json would let
// the last one win), strings of valid UTF-8 (encoding/json would replace
// what is not). A fault is a 400 naming the field by its full path.
func strictJSON(raw []byte) *Problem {
	r := jsonIn{b: raw}
	if !r.check(0) || !r.end() {
		return r.err
	}
	return nil
}

// check reads past one JSON value as skip does, and refuses a key given
// twice in one object and a string that is not valid UTF-8.
func (r *jsonIn) check(depth int) bool {
	r.ws()
	if r.i >= len(r.b) {
		return r.syntax("")
	}
	switch r.b[r.i] {
	case '{':
		if depth >= skipDepthMax {
			return r.syntax("nested too deeply")
		}
		r.i++
		var seen map[string]struct{}
		for first := true; r.next('}', first); first = false {
			k, ok := r.key()
			if !ok {
				return false
			}
			name := string(k)
			r.push(name)
			if _, dup := seen[name]; dup {
				return r.bad("a duplicate key")
			}
			if seen == nil {
				seen = map[string]struct{}{}
			}
			seen[name] = struct{}{}
			if !r.check(depth + 1) {
				return false
			}
			r.pop()
		}
		return r.err == nil
	case '[':
		if depth >= skipDepthMax {
			return r.syntax("nested too deeply")
		}
		r.i++
		for i, first := 0, true; r.next(']', first); i, first = i+1, false {
			r.pushIndex(i)
			if !r.check(depth + 1) {
				return false
			}
			r.pop()
		}
		return r.err == nil
	default:
		return r.skip(depth)
	}
}
