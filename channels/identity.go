package channels

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
)

// IdentityKey is one fingerprint of a customer: a keyed hash of a
// normalised phone, delivery address, device id or platform buyer id. The
// hash is keyed (HMAC-SHA256 with the grid's identity key), so the index of
// them holds no personal data and cannot be reversed by hashing guesses
// without the key.
type IdentityKey struct {
	Kind string // phone, device, address, buyer
	Hash string
}

// NormalisePhone keeps the digits of a phone number, without China's
// country code: "+86 138-1234-5678" and "13812345678" are one phone.
func NormalisePhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	for _, cc := range []string{"0086", "86"} {
		if strings.HasPrefix(d, cc) && len(d)-len(cc) == 11 {
			return d[len(cc):]
		}
	}
	return d
}

// NormaliseAddress lower-cases an address and drops spaces and
// punctuation: "上海市 浦东新区, 碧波路 690号" and "上海市浦东新区碧波路690号" are one.
func NormaliseAddress(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// IdentityKeys returns the fingerprints of a mapped order's customer,
// strongest first: phone and address only when they arrived in the clear,
// the device when the channel sent one, the platform buyer id (per channel).
func IdentityKeys(m *Mapped, key []byte) []IdentityKey {
	var out []IdentityKey
	add := func(kind, value string) {
		if value == "" {
			return
		}
		h := hmac.New(sha256.New, key)
		h.Write([]byte(kind + "\x00" + value))
		out = append(out, IdentityKey{Kind: kind, Hash: hex.EncodeToString(h.Sum(nil))})
	}
	c := m.Request.GetCustomer()
	if !m.Masked {
		if p := NormalisePhone(c.GetPhone()); len(p) >= 7 {
			add("phone", p)
		}
	}
	add("device", m.DeviceID)
	if !m.Masked {
		if a := NormaliseAddress(c.GetAddress()); len([]rune(a)) >= 8 {
			add("address", a)
		}
	}
	if m.BuyerID != "" {
		add("buyer", m.Request.Channel+"\x00"+m.BuyerID)
	}
	return out
}

// CustomerID is the id of a new customer first seen by key k.
func CustomerID(k IdentityKey) string { return "cu_" + k.Hash[:32] }
