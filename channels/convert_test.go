package channels

import (
	"errors"
	"strings"
	"testing"
)

// A payload of the wrong shape is refused naming the channel's field and
// the JSON it wants, never a Go type.
func TestDecodeNamesJSONNotGoTypes(t *testing.T) {
	var v struct {
		ID    ID       `json:"id"`
		Count int64    `json:"count"`
		Tags  []string `json:"tags"`
		Paid  bool     `json:"paid"`
	}
	for body, want := range map[string]string{
		`{"id":{}}`:       "want a number or a string, got JSON object",
		`{"count":"x"}`:   "want an integer, got JSON string",
		`{"tags":"x"}`:    "want an array, got JSON string",
		`{"paid":"true"}`: "want a boolean, got JSON string",
	} {
		err := decode([]byte(body), &v)
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Detail, want) || strings.Contains(err.Error(), "int64") ||
			strings.Contains(err.Error(), "channels.") || strings.Contains(err.Error(), "[]string") {
			t.Errorf("%s: %v", body, err)
		}
	}
}
