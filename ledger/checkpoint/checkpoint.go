// Package checkpoint reads and writes the ledger's checkpoints: C2SP
// tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint) signed as C2SP
// signed notes (https://c2sp.org/signed-note) with Ed25519, so any standard
// transparency-log client can check them.
//
// A checkpoint body is, each line ending in a newline:
//
//	<origin>
//	<tree size, decimal, no leading zeros>
//	<root hash, standard base64>
//	[<extension line>...]
//
// and a signed checkpoint appends a blank line and one signature line per key:
//
//	ordergrid.example/ledger
//	1024
//	Xy8vGcM1ZM9m7ZP+2tLwQlzKQJ3hWz0ZmHfKzVYBVx4=
//
//	— ordergrid.example/ledger Az3grl1SdwqG...
//
// The signing key's name is the log's origin. Parse accepts only the
// canonical form (it formats what it parsed and compares), so one tree has
// one body and anchoring bytes on Fabric means anchoring a tree.
// Signatures are made and checked with golang.org/x/mod/sumdb/note.
package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// BytesMax bounds a signed checkpoint: origin, size, root, a few extension
// lines and a few signatures fit with room to spare.
const BytesMax = 4096

var (
	// ErrMalformed is returned for a checkpoint that is not in canonical form.
	ErrMalformed = errors.New("malformed checkpoint")
	// ErrSignature is returned for a signed checkpoint that the log's key
	// did not sign, or whose bytes changed after signing.
	ErrSignature = errors.New("checkpoint signature does not verify")
)

// Checkpoint is one signed statement of a tree: its size and root.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       merkle.Hash
	Extensions []string
}

// Marshal writes the checkpoint body.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(c.Root.String())
	b.WriteByte('\n')
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse reads a checkpoint body in canonical form.
func Parse(body []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(body) > BytesMax {
		return c, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(body), BytesMax)
	}
	if !utf8.Valid(body) || !bytes.HasSuffix(body, []byte("\n")) {
		return c, fmt.Errorf("%w: not UTF-8 lines ending in a newline", ErrMalformed)
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("%w: want origin, size and root lines", ErrMalformed)
	}
	c.Origin = lines[0]
	if err := ValidOrigin(c.Origin); err != nil {
		return c, err
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return c, fmt.Errorf("%w: size %q is not a canonical decimal", ErrMalformed, lines[1])
	}
	c.Size = size
	root, err := merkle.ParseHash(lines[2])
	if err != nil || root.String() != lines[2] {
		return c, fmt.Errorf("%w: root hash %q", ErrMalformed, lines[2])
	}
	c.Root = root
	for _, e := range lines[3:] {
		if e == "" {
			return c, fmt.Errorf("%w: empty extension line", ErrMalformed)
		}
		c.Extensions = append(c.Extensions, e)
	}
	if !bytes.Equal(c.Marshal(), body) {
		return c, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return c, nil
}

// ValidOrigin checks a log origin: non-empty printable text with no spaces
// or '+', so it is also a valid signed-note key name.
func ValidOrigin(origin string) error {
	if origin == "" || len(origin) > 256 || !utf8.ValidString(origin) {
		return fmt.Errorf("%w: origin %q must be 1 to 256 bytes of UTF-8", ErrMalformed, origin)
	}
	for _, r := range origin {
		if r <= ' ' || r == '+' || r == 0x7f || r == '\u2014' {
			return fmt.Errorf("%w: origin %q has a space, control character or '+'", ErrMalformed, origin)
		}
	}
	return nil
}

// GenerateKey makes an Ed25519 key named origin and returns it in
// signed-note form: the signer key (keep it secret) and the verifier key
// ("<name>+<hash>+<base64 key>", publish it).
func GenerateKey(origin string) (signerKey, verifierKey string, err error) {
	if err := ValidOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

// Signer is a checkpoint signer.
type Signer struct{ s note.Signer }

// NewSigner reads a signer key made by GenerateKey.
func NewSigner(signerKey string) (*Signer, error) {
	s, err := note.NewSigner(signerKey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer key: %w", err)
	}
	return &Signer{s: s}, nil
}

// Origin is the log the signer signs for.
func (s *Signer) Origin() string { return s.s.Name() }

// Sign returns the signed checkpoint.
func (s *Signer) Sign(c Checkpoint) ([]byte, error) {
	if c.Origin != s.s.Name() {
		return nil, fmt.Errorf("checkpoint of %q signed with the key of %q", c.Origin, s.s.Name())
	}
	return note.Sign(&note.Note{Text: string(c.Marshal())}, s.s)
}

// Verifier checks signed checkpoints of one log.
type Verifier struct {
	v   note.Verifier
	key string
}

// NewVerifier reads a verifier key ("<name>+<hash>+<base64 key>").
func NewVerifier(verifierKey string) (*Verifier, error) {
	verifierKey = strings.TrimSpace(verifierKey)
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key: %v", ErrMalformed, err)
	}
	if err := ValidOrigin(v.Name()); err != nil {
		return nil, err
	}
	return &Verifier{v: v, key: verifierKey}, nil
}

// Origin is the log whose checkpoints the verifier checks.
func (v *Verifier) Origin() string { return v.v.Name() }

// String is the verifier key.
func (v *Verifier) String() string { return v.key }

// Open checks a signed checkpoint: canonical form, the origin is the
// verifier's log, and the verifier's key signed it. Signatures by other
// keys are allowed (a witness may cosign) and ignored.
func (v *Verifier) Open(signed []byte) (Checkpoint, error) {
	if len(signed) > BytesMax {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(signed), BytesMax)
	}
	n, err := note.Open(signed, note.VerifierList(v.v))
	if err != nil {
		var unknown *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unknown) || errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := canonicalSignatures(n); err != nil {
		return Checkpoint{}, err
	}
	c, err := Parse([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint of %q, key of %q", ErrSignature, c.Origin, v.v.Name())
	}
	return c, nil
}

// VerifierKeyOf is the verifier key of a signer key made by GenerateKey.
func VerifierKeyOf(signerKey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || ed25519 seed)>
	parts := strings.SplitN(strings.TrimSpace(signerKey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", fmt.Errorf("%w: not a signer key", ErrMalformed)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", fmt.Errorf("%w: not an Ed25519 signer key", ErrMalformed)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := NewSigner(signerKey); err != nil {
		return "", err
	}
	return vkey, nil
}

// ErrNotStatement is returned by SignStatement for text that is not a
// statement: a statement must not read as a checkpoint, so the log's key
// never signs two meanings of one text.
var ErrNotStatement = errors.New("not a statement")

// StatementBytesMax bounds a signed statement.
const StatementBytesMax = BytesMax

// SignStatement signs text other than a checkpoint with the log's key (the
// ledger's seals). The text's first line must hold a space, which no origin
// does, so it can never be read as a checkpoint of any log, and a
// checkpoint can never be read as a statement.
func (s *Signer) SignStatement(text string) ([]byte, error) {
	first, _, _ := strings.Cut(text, "\n")
	if !strings.Contains(first, " ") || !strings.HasSuffix(text, "\n") || !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: want UTF-8 lines, the first with a space", ErrNotStatement)
	}
	if len(text) > StatementBytesMax/2 {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrNotStatement, len(text), StatementBytesMax/2)
	}
	return note.Sign(&note.Note{Text: text}, s.s)
}

// OpenStatement checks a statement signed by SignStatement with the
// verifier's key and returns its text.
func (v *Verifier) OpenStatement(signed []byte) (string, error) {
	if len(signed) > StatementBytesMax {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(signed), StatementBytesMax)
	}
	n, err := note.Open(signed, note.VerifierList(v.v))
	if err != nil {
		var unknown *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unknown) || errors.As(err, &invalid) {
			return "", fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := canonicalSignatures(n); err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(n.Text, "\n")
	if !strings.Contains(first, " ") {
		return "", fmt.Errorf("%w: a checkpoint, not a statement", ErrMalformed)
	}
	return n.Text, nil
}

// canonicalSignatures refuses a note whose signature lines are not
// canonical base64. note accepts non-zero padding bits, so one signature
// has several spellings; only the one the signer wrote is accepted, so no
// byte of a signed checkpoint or statement can change unnoticed.
func canonicalSignatures(n *note.Note) error {
	for _, sig := range append(n.Sigs, n.UnverifiedSigs...) {
		if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil {
			return fmt.Errorf("%w: signature is not canonical base64", ErrMalformed)
		}
	}
	return nil
}
