// Package tracking is the format of the signed links a channel sends its
// buyer to follow an order (the page at /track/{order}?t=<token>).
//
// A token is base64url (no padding) of 24 bytes: the link's expiry in Unix
// seconds (8 bytes, big-endian) and the first 16 bytes of
// HMAC-SHA256(key, "ordergrid-track-v1" || 0x00 || order || 0x00 || expiry).
// The key is the same on every node of a cluster (derived from the first
// master key under KeyLabel), so a link works on any node; it names one
// order and cannot be moved to another, nor its expiry changed. The package
// is pure: no clock, no I/O (the caller gives the time).
package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// KeyLabel is the purpose the tracking key is derived under
// (privacy.Keyring.Derive).
const KeyLabel = "ordergrid tracking links v1"

// Bounds of a link's life.
const (
	// TTLMin is the shortest life a link may be given.
	TTLMin = time.Minute
	// TTLMax is the longest.
	TTLMax = 90 * 24 * time.Hour
	// TTLDefault is a link's life when none is asked for.
	TTLDefault = 30 * 24 * time.Hour
)

// Sizes of a token.
const (
	macBytes = 16
	rawBytes = 8 + macBytes
	// TokenChars is the length of every token (base64url of 24 bytes).
	TokenChars = 32
	// OrderBytesMax bounds the order id a token is signed for.
	OrderBytesMax = 256
	// KeyBytesMin is the shortest key Sign and Verify accept.
	KeyBytesMin = 16
)

// domain separates these MACs from any other use of the key.
const domain = "ordergrid-track-v1\x00"

// Errors of Verify. An expired link's error is an *ExpiredError, which
// wraps ErrExpired.
var (
	// ErrMalformed: the token is not a token (wrong length or alphabet).
	ErrMalformed = errors.New("tracking link: malformed token")
	// ErrSignature: the token was not signed for this order by this
	// cluster's key (tampered, or for another order).
	ErrSignature = errors.New("tracking link: invalid signature")
	// ErrExpired: the token is genuine but its time is up.
	ErrExpired = errors.New("tracking link: expired")
	// ErrKey: the key is too short to sign with.
	ErrKey = errors.New("tracking link: key too short")
	// ErrOrder: the order id is empty or too long.
	ErrOrder = errors.New("tracking link: bad order id")
)

// ExpiredError is a genuine link past its expiry.
type ExpiredError struct {
	// At is when the link expired.
	At time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("tracking link: expired at %s", e.At.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrExpired) hold.
func (e *ExpiredError) Unwrap() error { return ErrExpired }

func mac(key []byte, order string, expiry []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write([]byte(order))
	m.Write([]byte{0})
	m.Write(expiry)
	return m.Sum(nil)[:macBytes]
}

func checkArgs(key []byte, order string) error {
	if len(key) < KeyBytesMin {
		return ErrKey
	}
	if order == "" || len(order) > OrderBytesMax {
		return ErrOrder
	}
	return nil
}

// Sign returns the token of a link to order that expires at expires
// (truncated to the second; it must be after 1970).
func Sign(key []byte, order string, expires time.Time) (string, error) {
	if err := checkArgs(key, order); err != nil {
		return "", err
	}
	if expires.Unix() <= 0 || expires.Unix() > 1<<62 {
		return "", fmt.Errorf("tracking link: expiry %s out of range", expires)
	}
	raw := make([]byte, 8, rawBytes)
	binary.BigEndian.PutUint64(raw, uint64(expires.Unix()))
	raw = append(raw, mac(key, order, raw[:8])...)
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// Verify checks a token for order at now and returns when it expires. The
// signature is checked (in constant time) before the expiry, so a token
// whose expiry was changed is ErrSignature, not expired.
func Verify(key []byte, order, token string, now time.Time) (time.Time, error) {
	if err := checkArgs(key, order); err != nil {
		return time.Time{}, err
	}
	if len(token) != TokenChars {
		return time.Time{}, fmt.Errorf("%w: %d characters, want %d", ErrMalformed, len(token), TokenChars)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != rawBytes {
		return time.Time{}, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	if !hmac.Equal(mac(key, order, raw[:8]), raw[8:]) {
		return time.Time{}, ErrSignature
	}
	secs := binary.BigEndian.Uint64(raw[:8])
	if secs == 0 || secs > 1<<62 { // Sign never signs such an expiry
		return time.Time{}, ErrSignature
	}
	expires := time.Unix(int64(secs), 0).UTC()
	if !now.Before(expires) {
		return expires, &ExpiredError{At: expires}
	}
	return expires, nil
}
