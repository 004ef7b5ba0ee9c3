package tracking

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestSignVerify(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(TTLDefault)
	tok, err := Sign(testKey, "o_abc", exp)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != TokenChars || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q: want %d base64url characters", tok, TokenChars)
	}
	got, err := Verify(testKey, "o_abc", tok, now)
	if err != nil || !got.Equal(exp) {
		t.Fatalf("Verify: %v %v, want %v", got, err, exp)
	}
	// Another order, another key: invalid signature.
	if _, err := Verify(testKey, "o_abd", tok, now); !errors.Is(err, ErrSignature) {
		t.Errorf("other order: %v", err)
	}
	other := []byte("ffffffffffffffffffffffffffffffff")
	if _, err := Verify(other, "o_abc", tok, now); !errors.Is(err, ErrSignature) {
		t.Errorf("other key: %v", err)
	}
	// Expired: at the expiry and after, naming when.
	_, err = Verify(testKey, "o_abc", tok, exp)
	var ee *ExpiredError
	if !errors.Is(err, ErrExpired) || !errors.As(err, &ee) || !ee.At.Equal(exp) || !strings.Contains(err.Error(), "2026-05-31T12:00:00Z") {
		t.Errorf("at expiry: %v", err)
	}
	// Every single-character change is refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, c := range []byte{alphabet[0], alphabet[37]} {
			if tok[i] == c {
				continue
			}
			bad := tok[:i] + string(c) + tok[i+1:]
			if _, err := Verify(testKey, "o_abc", bad, now); err == nil {
				t.Fatalf("tampered token %q (char %d) accepted", bad, i)
			}
		}
	}
	// A pushed-out expiry (the first 8 bytes changed) is a bad signature, not a longer link.
	later, _ := Sign(testKey, "o_abc", exp.Add(time.Hour))
	spliced := later[:10] + tok[10:]
	if _, err := Verify(testKey, "o_abc", spliced, now); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
		t.Errorf("spliced expiry: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	now := time.Now()
	for _, tok := range []string{"", "short", strings.Repeat("A", TokenChars+1), strings.Repeat("!", TokenChars), strings.Repeat("A", TokenChars-1) + "="} {
		if _, err := Verify(testKey, "o_abc", tok, now); !errors.Is(err, ErrMalformed) {
			t.Errorf("token %q: %v, want ErrMalformed", tok, err)
		}
	}
	if _, err := Sign(testKey[:8], "o_abc", now); !errors.Is(err, ErrKey) {
		t.Errorf("short key: %v", err)
	}
	if _, err := Sign(testKey, "", now); !errors.Is(err, ErrOrder) {
		t.Errorf("empty order: %v", err)
	}
	if _, err := Sign(testKey, strings.Repeat("o", OrderBytesMax+1), now); !errors.Is(err, ErrOrder) {
		t.Errorf("long order: %v", err)
	}
	if _, err := Sign(testKey, "o_abc", time.Unix(0, 0)); err == nil {
		t.Error("expiry at the epoch signed")
	}
}

// Verify never panics, accepts only what Sign made, and a token it
// accepts expires after now.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	good, _ := Sign(testKey, "o_abc", now.Add(time.Hour))
	f.Add("o_abc", good)
	f.Add("o_abc", "")
	f.Add("", good)
	f.Add("o_abd", good)
	f.Add("o_abc", strings.Repeat("_", TokenChars))
	f.Fuzz(func(t *testing.T, order, token string) {
		exp, err := Verify(testKey, order, token, now)
		if err != nil {
			return
		}
		if !exp.After(now) {
			t.Fatalf("accepted a token expired at %v", exp)
		}
		again, err := Sign(testKey, order, exp)
		if err != nil || again != token {
			t.Fatalf("accepted %q for %q, which Sign makes as %q (%v)", token, order, again, err)
		}
	})
}
