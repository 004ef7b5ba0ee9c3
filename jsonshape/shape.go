// Package jsonshape checks that a JSON document has the shape of the Go
// value it is about to be decoded into, and names the first value that
// does not by its full path with indexes ("rates[1].cost",
// "candidate.share_percent"), in words a client understands ("must be a
// string, got JSON number"), never in Go's ("cannot unmarshal number into
// Go struct field Rate.rates.cost of type string").
//
// encoding/json's own errors cannot do that: an UnmarshalTypeError's Field
// joins struct field names with dots and leaves array indexes out
// ("rates.cost"), an unknown field is named without its parents, and both
// carry Go type names. Check walks the document's tokens and the type side
// by side instead, so after it accepts a document, json.Unmarshal into the
// same type fails on nothing but a value's content (a malformed base64
// string, an Unmarshaler's own refusal).
//
// Check is stricter than encoding/json in one way, on purpose: a member
// name must match the field's JSON name exactly ("State" is not "state").
package jsonshape

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// DepthMax bounds the nesting Check follows: deeper documents are refused.
const DepthMax = 64

// numberTextMax bounds how much of a number a message quotes.
const numberTextMax = 32

// Error is the first place a document does not fit its type.
type Error struct {
	// Path names the value by its full path: member names joined by dots,
	// array indexes in brackets ("orders[3].lines[0].qty"); "" is the
	// document itself.
	Path string
	// Detail says what is wrong, without the path: "must be a string, got
	// JSON number", "unknown field", "malformed JSON at byte 17".
	Detail string
	// Unknown: the value is a member the object's type does not have.
	Unknown bool
	// Syntax: the document is not JSON (or has data after its value).
	Syntax bool
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Detail
	}
	return e.Path + ": " + e.Detail
}

// Check reports whether data, one JSON value, fits v (a pointer to the
// value it will be decoded into, or any value of that type): every member
// a field of its object's type, every value of the JSON kind its Go type
// takes (an integer within the type's range for integer types), and
// nothing after the value. null fits anything, as encoding/json lets it.
// The error, when there is one, is an *Error.
func Check(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	c := checker{dec: json.NewDecoder(bytes.NewReader(data))}
	c.dec.UseNumber()
	if err := c.value(t, 0); err != nil {
		return err
	}
	if _, err := c.dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Detail: "unexpected data after the JSON value", Syntax: true}
	}
	return nil
}

// checker walks one document.
type checker struct {
	dec  *json.Decoder
	path Path
}

// Path is where a value sits in a JSON document, built step by step as a
// reader descends into it, and named the way problems name fields:
// `orders[3].lines[0].qty`. The zero Path is the document itself ("").
type Path struct{ steps []step }

// step is one step of a path: a member name, or an index when isIndex.
type step struct {
	name    string
	index   int
	isIndex bool
}

// Member descends into the object member name.
func (p *Path) Member(name string) { p.steps = append(p.steps, step{name: name}) }

// Element descends into the array element i.
func (p *Path) Element(i int) { p.steps = append(p.steps, step{index: i, isIndex: true}) }

// Pop goes back up one step.
func (p *Path) Pop() { p.steps = p.steps[:len(p.steps)-1] }

// Depth is the number of steps from the document.
func (p Path) Depth() int { return len(p.steps) }

// Truncate goes back up to depth steps from the document.
func (p *Path) Truncate(depth int) { p.steps = p.steps[:depth] }

// String renders the path: members joined by dots, indexes in brackets.
func (p Path) String() string {
	var sb strings.Builder
	for _, s := range p.steps {
		if s.isIndex {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.index))
			sb.WriteByte(']')
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(s.name)
	}
	return sb.String()
}

// where is the path of the value being read.
func (c *checker) where() string { return c.path.String() }

func (c *checker) fail(detail string) *Error { return &Error{Path: c.where(), Detail: detail} }

// syntax turns a tokenizer error into one that names the byte, not Go's text.
func (c *checker) syntax(err error) *Error {
	var se *json.SyntaxError
	detail := "malformed JSON: the document ends early"
	switch {
	case errors.As(err, &se):
		detail = fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		detail = fmt.Sprintf("malformed JSON near byte %d", c.dec.InputOffset())
	}
	return &Error{Path: c.where(), Detail: detail, Syntax: true}
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// implements reports whether t or *t implements iface.
func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface))
}

// value reads one value, which must fit t.
func (c *checker) value(t reflect.Type, depth int) error {
	tok, err := c.dec.Token()
	if err != nil {
		return c.syntax(err)
	}
	if tok == nil {
		return nil // null leaves any value as it is
	}
	for t.Kind() == reflect.Pointer && !implements(t, unmarshalerType) && !implements(t, textUnmarshalerType) {
		t = t.Elem()
	}
	switch {
	case implements(t, unmarshalerType) || t.Kind() == reflect.Interface:
		return c.skip(tok) // the type reads any JSON itself
	case implements(t, textUnmarshalerType):
		if _, ok := tok.(string); !ok {
			return c.wrong("a string", tok)
		}
		return nil
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= DepthMax {
			return c.fail("nested too deeply")
		}
		switch {
		case v == '{' && t.Kind() == reflect.Struct:
			return c.object(fieldsOf(t), nil, depth)
		case v == '{' && t.Kind() == reflect.Map:
			return c.object(nil, t, depth)
		case v == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && !isBytes(t):
			return c.array(t.Elem(), depth)
		}
		return c.wrong(want(t), tok)
	case string:
		if t.Kind() == reflect.String || isBytes(t) {
			return nil
		}
	case bool:
		if t.Kind() == reflect.Bool {
			return nil
		}
	case json.Number:
		return c.number(t, v)
	}
	return c.wrong(want(t), tok)
}

// object reads the members of an object: of a struct (fields) or a map (m).
func (c *checker) object(fields map[string]reflect.Type, m reflect.Type, depth int) error {
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return c.syntax(err)
		}
		name, _ := tok.(string) // the tokenizer gives a member name here or an error
		c.path.Member(name)
		var ft reflect.Type
		if m != nil {
			if err := c.mapKey(m.Key(), name); err != nil {
				return err
			}
			ft = m.Elem()
		} else if ft = fields[name]; ft == nil {
			return &Error{Path: c.where(), Detail: "unknown field", Unknown: true}
		}
		if err := c.value(ft, depth+1); err != nil {
			return err
		}
		c.path.Pop()
	}
	if _, err := c.dec.Token(); err != nil { // '}'
		return c.syntax(err)
	}
	return nil
}

// mapKey checks a member name against the map's key type.
func (c *checker) mapKey(k reflect.Type, name string) error {
	if implements(k, textUnmarshalerType) {
		return nil
	}
	var err error
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(name, 10, k.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(name, 10, k.Bits())
	}
	if err != nil {
		lo, hi := intRange(k)
		return c.fail(fmt.Sprintf("the key must be an integer from %s to %s", lo, hi))
	}
	return nil
}

// array reads the elements of an array.
func (c *checker) array(elem reflect.Type, depth int) error {
	for i := 0; c.dec.More(); i++ {
		c.path.Element(i)
		if err := c.value(elem, depth+1); err != nil {
			return err
		}
		c.path.Pop()
	}
	if _, err := c.dec.Token(); err != nil { // ']'
		return c.syntax(err)
	}
	return nil
}

// number checks a number against a numeric type and its range.
func (c *checker) number(t reflect.Type, n json.Number) error {
	s := n.String()
	var err error
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 10, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(s, 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(s, t.Bits()); err != nil {
			return c.fail("must be a number of a size a double can hold, got " + shorten(s))
		}
		return nil
	default:
		return c.wrong(want(t), n)
	}
	if err == nil {
		return nil
	}
	if strings.ContainsAny(s, ".eE") {
		return c.fail("must be an integer, got JSON number " + shorten(s))
	}
	lo, hi := intRange(t)
	return c.fail(fmt.Sprintf("must be an integer from %s to %s, got %s", lo, hi, shorten(s)))
}

// intRange is the range of an integer type, as decimal text.
func intRange(t reflect.Type) (string, string) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "0", strconv.FormatUint(1<<t.Bits()-1, 10)
	}
	return strconv.FormatInt(-1<<(t.Bits()-1), 10), strconv.FormatInt(1<<(t.Bits()-1)-1, 10)
}

func shorten(s string) string {
	if len(s) > numberTextMax {
		return s[:numberTextMax] + "…"
	}
	return s
}

// wrong fails on a value of the wrong JSON kind.
func (c *checker) wrong(want string, tok json.Token) error {
	return c.fail(fmt.Sprintf("must be %s, got JSON %s", want, kindOf(tok)))
}

// skip reads past the rest of a value whose first token was tok.
func (c *checker) skip(tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || d == '}' || d == ']' {
		return nil
	}
	for open := 1; open > 0; {
		tok, err := c.dec.Token()
		if err != nil {
			return c.syntax(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			open++
		case json.Delim('}'), json.Delim(']'):
			open--
		}
	}
	return nil
}

// kindOf names the JSON kind of a value by its first token.
func kindOf(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "object"
		}
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	}
	return "null"
}

func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !implements(t.Elem(), unmarshalerType) &&
		!implements(t.Elem(), textUnmarshalerType)
}

// want names the JSON a Go type takes, never the Go type's own name.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		if isBytes(t) {
			return "a base64 string"
		}
		return "an array"
	case reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON value"
}

// fieldCache holds each struct type's members by JSON name.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf returns the members of a struct type by their JSON names, as
// encoding/json finds them: tag names, else field names; "-" left out;
// the fields of embedded structs promoted unless the outer type has the
// name.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		m[cmp.Or(name, f.Name)] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range fieldsOf(et) {
			if _, ok := m[name]; !ok {
				m[name] = ft
			}
		}
	}
	fieldCache.Store(t, m)
	return m
}
