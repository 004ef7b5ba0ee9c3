package jsonshape

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type rate struct {
	Region string `json:"region"`
	Cost   string `json:"cost"`
	Days   int    `json:"transit_days"`
}

type base struct {
	ID string `json:"id"`
}

type doc struct {
	base
	Rates   []rate                     `json:"rates"`
	Weights map[string]float64         `json:"weights"`
	Load    map[string]map[int32]int64 `json:"load"`
	Small   uint8                      `json:"small"`
	Arm     *struct {
		Share float64 `json:"share_percent"`
	} `json:"candidate"`
	Raw     json.RawMessage `json:"raw"`
	Any     any             `json:"any"`
	At      time.Time       `json:"at"`
	Blob    []byte          `json:"blob"`
	Skipped func()          `json:"-"`
}

// TestCheckNamesTheFullPath: every value of the wrong kind, every unknown
// member and every number out of range is named by its full path with
// indexes, in JSON's words, never Go's.
func TestCheckNamesTheFullPath(t *testing.T) {
	cases := []struct {
		doc, path, detail string
		unknown, syntax   bool
	}{
		{`{"rates":[{"region":"*","cost":"1"},{"region":"e","cost":1}]}`, "rates[1].cost", "must be a string, got JSON number", false, false},
		{`{"rates":[{"region":"*","colour":"red"}]}`, "rates[0].colour", "unknown field", true, false},
		{`{"rates":[{"Region":"*"}]}`, "rates[0].Region", "unknown field", true, false},
		{`{"rates":[{"transit_days":1.5}]}`, "rates[0].transit_days", "must be an integer, got JSON number 1.5", false, false},
		{`{"rates":[{"transit_days":99999999999999999999}]}`, "rates[0].transit_days", "must be an integer from -9223372036854775808 to 9223372036854775807, got 99999999999999999999", false, false},
		{`{"small":256}`, "small", "must be an integer from 0 to 255, got 256", false, false},
		{`{"small":-1}`, "small", "must be an integer from 0 to 255, got -1", false, false},
		{`{"weights":{"cost":"1"}}`, "weights.cost", "must be a number, got JSON string", false, false},
		{`{"weights":{"cost":1e999}}`, "weights.cost", "must be a number of a size a double can hold, got 1e999", false, false},
		{`{"load":{"wh":{"x":1}}}`, "load.wh.x", "the key must be an integer from -2147483648 to 2147483647", false, false},
		{`{"load":{"wh":{"20261111":"1"}}}`, "load.wh.20261111", "must be an integer, got JSON string", false, false},
		{`{"candidate":{"share_percent":true}}`, "candidate.share_percent", "must be a number, got JSON boolean", false, false},
		{`{"candidate":[]}`, "candidate", "must be an object, got JSON array", false, false},
		{`{"rates":{}}`, "rates", "must be an array, got JSON object", false, false},
		{`{"blob":[1]}`, "blob", "must be a base64 string, got JSON array", false, false},
		{`{"id":7}`, "id", "must be a string, got JSON number", false, false},
		{`[1]`, "", "must be an object, got JSON array", false, false},
		{`{"rates":[{"region":"*"}`, "rates", "malformed JSON: the document ends early", false, true},
		{`{"id":"a"} x`, "", "unexpected data after the JSON value", false, true},
		{`{"Skipped":1}`, "Skipped", "unknown field", true, false},
		{strings.Repeat(`{"any":`, 1) + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`, "", "", false, false},
		{`{"rates":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`, "rates[0]", "must be an object, got JSON array", false, false},
	}
	for _, c := range cases {
		var d doc
		err := Check([]byte(c.doc), &d)
		if c.detail == "" {
			if err != nil {
				t.Errorf("%s: %v", c.doc, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%.60s: got %v, want %s: %s", c.doc, err, c.path, c.detail)
			continue
		}
		if e.Path != c.path || e.Detail != c.detail || e.Unknown != c.unknown || e.Syntax != c.syntax {
			t.Errorf("%.60s: got %+v, want %s: %s", c.doc, e, c.path, c.detail)
		}
		for _, leak := range []string{"json:", "Go ", "int64", "float64", "struct", "unmarshal", "reflect", "uint8", "int32"} {
			if strings.Contains(e.Error(), leak) {
				t.Errorf("%s: %q leaks %q", c.doc, e.Error(), leak)
			}
		}
	}
}

// TestCheckAgreesWithUnmarshal: what Check accepts, encoding/json decodes
// into the same type; null fits anything.
func TestCheckAgreesWithUnmarshal(t *testing.T) {
	for _, s := range []string{
		`{"id":"a","rates":[{"region":"*","cost":"1","transit_days":2}],"weights":{"cost":1.5},"load":{"wh":{"20261111":3}},` +
			`"small":255,"candidate":{"share_percent":10},"raw":{"x":[1,{"y":null}]},"any":[1,"2",{"3":true}],` +
			`"at":"2026-11-11T00:00:00Z","blob":"AQI="}`,
		`null`, `{"rates":null,"candidate":null,"weights":{"cost":null}}`, ` { } `,
	} {
		var d doc
		if err := Check([]byte(s), &d); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			t.Fatalf("%s: encoding/json refuses what Check accepts: %v", s, err)
		}
	}
}

// FuzzCheck: Check never panics, and a document it accepts decodes.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"rates":[{"region":"*","cost":"1"}]}`, `{"load":{"a":{"1":2}}}`, `[`, `{"any":{"a":[{}]}}`, `{"small":1e2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		err := Check(data, &d)
		if err == nil {
			if json.Valid(data) {
				if uerr := json.Unmarshal(data, &d); uerr != nil && !strings.Contains(uerr.Error(), "base64") && !strings.Contains(uerr.Error(), "parsing time") {
					t.Fatalf("accepted but does not decode: %v", uerr)
				}
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Detail == "" {
			t.Fatalf("not an *Error: %v", err)
		}
	})
}
