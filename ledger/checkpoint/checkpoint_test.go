package checkpoint

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/ordergrid/ordergrid/ledger/merkle"
)

func TestSignOpen(t *testing.T) {
	skey, vkey, err := GenerateKey("ordergrid.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	c := Checkpoint{Origin: "ordergrid.test/ledger", Size: 1024, Root: merkle.LeafHash([]byte("x"))}
	signed, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Open(signed)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != c.Size || got.Root != c.Root || got.Origin != c.Origin {
		t.Fatalf("opened %+v, signed %+v", got, c)
	}
	// A standard signed-note client reads it as well.
	nv, _ := note.NewVerifier(vkey)
	if _, err := note.Open(signed, note.VerifierList(nv)); err != nil {
		t.Fatalf("x/mod note rejects it: %v", err)
	}
	// Every single-byte change is refused (as bad form or bad signature).
	for i := range signed {
		bad := bytes.Clone(signed)
		bad[i] ^= 0x01
		if _, err := v.Open(bad); err == nil {
			t.Fatalf("byte %d changed (%q) and still accepted", i, bad)
		}
	}
	// Another log's key does not open it.
	_, other, _ := GenerateKey("ordergrid.test/ledger")
	ov, _ := NewVerifier(other)
	if _, err := ov.Open(signed); !errors.Is(err, ErrSignature) {
		t.Fatalf("other key: %v", err)
	}
}

func TestParseCanonical(t *testing.T) {
	root := merkle.LeafHash(nil).String()
	for _, bad := range []string{
		"",
		"o\n1\n" + root,             // no final newline
		"o\n01\n" + root + "\n",     // leading zero
		"o\n+1\n" + root + "\n",     // sign
		"o\n1\n" + root[:10] + "\n", // short root
		"o o\n1\n" + root + "\n",    // space in origin
		"\n1\n" + root + "\n",       // empty origin
		"o\n1\n" + root + "\n\n",    // empty extension
		"o\n18446744073709551616\n" + root + "\n",
	} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	good := "o\n0\n" + root + "\nx-ext 1\n"
	c, err := Parse([]byte(good))
	if err != nil || string(c.Marshal()) != good {
		t.Fatalf("%q: %v", good, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("ordergrid/ledger\n5\n" + merkle.LeafHash(nil).String() + "\n"))
	f.Add([]byte("o\n0\nAAAA\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := Parse(body)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), body) {
			t.Fatalf("parsed %q but writes %q", body, c.Marshal())
		}
	})
}

func TestVerifierKeyOf(t *testing.T) {
	skey, vkey, err := GenerateKey("ordergrid.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifierKeyOf(skey)
	if err != nil || got != vkey {
		t.Fatalf("VerifierKeyOf = %q, %v; want %q", got, err, vkey)
	}
	if _, err := VerifierKeyOf(vkey); err == nil {
		t.Fatal("a verifier key taken for a signer key")
	}
}

// A statement and a checkpoint signed by one key are never mistaken for
// each other.
func TestStatementIsNotCheckpoint(t *testing.T) {
	skey, vkey, _ := GenerateKey("ordergrid.test/ledger")
	s, _ := NewSigner(skey)
	v, _ := NewVerifier(vkey)
	signed, err := s.SignStatement("ordergrid seal/1\nwhatever\n")
	if err != nil {
		t.Fatal(err)
	}
	if text, err := v.OpenStatement(signed); err != nil || text != "ordergrid seal/1\nwhatever\n" {
		t.Fatalf("statement: %q, %v", text, err)
	}
	if _, err := v.Open(signed); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a statement opened as a checkpoint: %v", err)
	}
	// The same signature spelt with non-zero base64 padding bits (x/mod's
	// note accepts it) is refused: one statement has one spelling.
	if _, err := v.OpenStatement(respell(t, signed, vkey)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a non-canonical signature: %v", err)
	}
	if _, err := v.Open(respell(t, cp0(t, s), vkey)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a checkpoint with a non-canonical signature: %v", err)
	}
	// Every single-byte change is refused.
	for i := range signed {
		bad := bytes.Clone(signed)
		bad[i] ^= 0x01
		if _, err := v.OpenStatement(bad); err == nil {
			t.Fatalf("byte %d changed (%q) and the statement still opens", i, bad)
		}
	}
	c := Checkpoint{Origin: "ordergrid.test/ledger", Size: 3, Root: merkle.LeafHash([]byte("x"))}
	if _, err := s.SignStatement(string(c.Marshal())); !errors.Is(err, ErrNotStatement) {
		t.Fatalf("a checkpoint signed as a statement: %v", err)
	}
	cp, _ := s.Sign(c)
	if _, err := v.OpenStatement(cp); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a checkpoint opened as a statement: %v", err)
	}
	other, _, _ := GenerateKey("ordergrid.test/ledger")
	otherSigner, _ := NewSigner(other)
	forged, _ := otherSigner.SignStatement("ordergrid seal/1\nwhatever\n")
	if _, err := v.OpenStatement(forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("a statement by another key: %v", err)
	}
}

// cp0 signs a small checkpoint with s.
func cp0(t *testing.T, s *Signer) []byte {
	t.Helper()
	signed, err := s.Sign(Checkpoint{Origin: "ordergrid.test/ledger", Size: 1, Root: merkle.LeafHash(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// respell sets the unused low bit of the last base64 digit of the note's
// signature (68 bytes: one '=' of padding, two unused bits): the same
// signature bytes, another spelling.
func respell(t *testing.T, signed []byte, vkey string) []byte {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := bytes.LastIndex(signed, []byte("=\n"))
	if i < 1 {
		t.Fatalf("no padded signature in %q", signed)
	}
	out := bytes.Clone(signed)
	d := strings.IndexByte(alphabet, out[i-1])
	out[i-1] = alphabet[d^1]
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(out, note.VerifierList(nv)); err != nil {
		t.Fatalf("x/mod note should accept the respelt signature: %v", err)
	}
	return out
}
