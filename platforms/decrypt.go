package platforms

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ordergrid/ordergrid/channels"
)

// receiverFields are the keys of channels.Mapped.Ciphertexts that name a
// receiver field.
var receiverFields = []string{"name", "phone", "address_detail"}

// ciphertexts are the receiver fields of m to open: m.Ciphertexts' that
// the platform's test takes as ciphertext, else the customer's name and
// phone when they are.
func ciphertexts(m *channels.Mapped, isCipher func(string) bool) map[string]string {
	out := map[string]string{}
	for _, f := range receiverFields {
		if v := m.Ciphertexts[f]; v != "" && isCipher(v) {
			out[f] = v
		}
	}
	if len(m.Ciphertexts) == 0 {
		cu := m.Request.Customer
		for f, v := range map[string]string{"name": cu.Name, "phone": cu.Phone} {
			if v != "" && isCipher(v) {
				out[f] = v
			}
		}
	}
	return out
}

// uniqueValues are the distinct values of m, sorted (one decrypt entry each).
func uniqueValues(m map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// applyOpened writes the opened fields into m's customer: plain maps each
// ciphertext to its plain text. Every ciphertext must have come back
// opened, else the fields stay as they are and the error wraps ErrMalformed.
// Masked is cleared when no customer field is left masked or encrypted.
func (c *Client) applyOpened(method string, m *channels.Mapped, ciphers, plain map[string]string, town string) error {
	opened := map[string]string{}
	for f, v := range ciphers {
		p, ok := plain[v]
		if !ok || p == "" {
			return c.malformedErr(method, fmt.Sprintf("the response does not open the %s", f), nil)
		}
		opened[f] = p
	}
	return c.setReceiver(m, opened, ciphers["address_detail"], town)
}

// setReceiver writes name, phone and address_detail (those present) into
// m's customer and updates Masked.
func (c *Client) setReceiver(m *channels.Mapped, opened map[string]string, cipherDetail, town string) error {
	cu := m.Request.Customer
	if v := opened["name"]; v != "" {
		cu.Name = v
	}
	if v := opened["phone"]; v != "" {
		cu.Phone = v
	}
	if v := opened["address_detail"]; v != "" {
		cu.Address = openAddress(m, cipherDetail, town, v)
	}
	m.Masked = channels.Masked(cu.Name) || channels.Masked(cu.Phone) || channels.Masked(cu.Address)
	return nil
}

func (c *Client) malformedErr(method, detail string, err error) *APIError {
	if err != nil {
		detail += ": " + err.Error()
	}
	e := malformed(detail)
	e.Channel, e.Method, e.HTTPStatus = c.channel, method, 200
	return e
}

func isJSONArray(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "[") && json.Valid(b)
}

// joinMsg joins a platform's message and sub message.
func joinMsg(msg, sub string) string {
	switch {
	case sub == "" || sub == msg:
		return msg
	case msg == "":
		return sub
	}
	return msg + ": " + sub
}
