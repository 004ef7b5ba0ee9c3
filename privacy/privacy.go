// Package privacy protects personal data: every subject (a customer) has a
// data key of its own (AES-256-GCM), kept only wrapped by a master key, and a
// subject's personal fields are sealed under that data key before they enter
// a Raft proposal. Erasing a subject deletes its wrapped data key everywhere
// (crypto-shredding): its ciphertext stays, unreadable by anyone.
//
// Master keys live outside the replicated state: in a file or an environment
// variable, one per line as "<id> <base64 of 32 bytes>". The last line is the
// active key: it wraps new data keys (and rewraps old ones during a
// rotation); the others only unwrap. Rotation: append a new key, restart the
// nodes (one at a time), rewrap (POST /v1/admin/rewrap-subject-keys), then
// drop the old line.
//
// Sealed data is bound to where it belongs: the data key's wrapping to its
// subject, a sealed record to its subject and order (GCM additional data), so
// ciphertext moved elsewhere does not open.
package privacy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// KeyBytes is the size of master and data keys (AES-256).
const KeyBytes = 32

// masterKeysMax bounds how many master keys a keyring holds.
const masterKeysMax = 64

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ErrUnknownMasterKey: a wrapped key names a master key the keyring lacks.
var ErrUnknownMasterKey = errors.New("privacy: unknown master key")

// ErrOpen: ciphertext that does not open (wrong key, wrong binding, or tampered).
var ErrOpen = errors.New("privacy: ciphertext does not open")

// Keyring holds the master keys.
type Keyring struct {
	aeads  map[string]cipher.AEAD
	active string
	ids    []string
	// derive keys Derive: an HMAC key made from the first master key.
	derive []byte
}

// ParseKeyring reads "<id> <base64 32 bytes>" lines (blank lines and #
// comments allowed); the last key is the active one.
func ParseKeyring(text string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("master keys line %d: want \"<id> <base64 key>\"", n+1)
		}
		id := f[0]
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("master keys line %d: id %q: 1-64 of A-Z a-z 0-9 . _ -", n+1, id)
		}
		if k.aeads[id] != nil {
			return nil, fmt.Errorf("master keys line %d: id %q twice", n+1, id)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(f[1])
		if err != nil || len(raw) != KeyBytes {
			return nil, fmt.Errorf("master keys line %d: key %s must be base64 of %d bytes", n+1, id, KeyBytes)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, err
		}
		k.aeads[id] = aead
		if len(k.ids) == 0 {
			m := hmac.New(sha256.New, raw)
			m.Write([]byte("ordergrid keyring derivation v1"))
			k.derive = m.Sum(nil)
		}
		k.ids = append(k.ids, id)
		k.active = id
		if len(k.ids) > masterKeysMax {
			return nil, fmt.Errorf("master keys: more than %d", masterKeysMax)
		}
	}
	if k.active == "" {
		return nil, errors.New("master keys: none")
	}
	return k, nil
}

// Derive returns a 32-byte key for a purpose (label), made from the first
// master key: every node with the same keys derives the same one. It changes
// when the first key is dropped from the file.
func (k *Keyring) Derive(label string) []byte {
	m := hmac.New(sha256.New, k.derive)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// LoadKeyring reads a keyring file.
func LoadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master keys: %w", err)
	}
	return ParseKeyring(string(b))
}

// NewMasterKeyLine returns a fresh master key as a keyring line.
func NewMasterKeyLine(id string) (string, error) {
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("master key id %q: 1-64 of A-Z a-z 0-9 . _ -", id)
	}
	raw := make([]byte, KeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return id + " " + base64.StdEncoding.EncodeToString(raw), nil
}

// Active is the id of the key that wraps.
func (k *Keyring) Active() string { return k.active }

// IDs lists the keys, oldest first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	return cipher.NewGCM(block)
}

// Wrapped is a data key sealed by a master key.
type Wrapped struct {
	MasterKeyID string
	Nonce       []byte
	Ciphertext  []byte
}

func wrapAD(subject string) []byte { return []byte("ordergrid data key v1\x00" + subject) }

// NewDataKey makes a data key for subject and returns it wrapped by the
// active master key.
func (k *Keyring) NewDataKey(subject string) (Wrapped, error) {
	dk := make([]byte, KeyBytes)
	if _, err := rand.Read(dk); err != nil {
		return Wrapped{}, err
	}
	defer clear(dk)
	return k.wrap(subject, dk)
}

func (k *Keyring) wrap(subject string, dk []byte) (Wrapped, error) {
	aead := k.aeads[k.active]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Wrapped{}, err
	}
	return Wrapped{MasterKeyID: k.active, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, dk, wrapAD(subject))}, nil
}

// Rewrap returns w wrapped by the active master key (w itself if it is).
func (k *Keyring) Rewrap(subject string, w Wrapped) (Wrapped, bool, error) {
	if w.MasterKeyID == k.active {
		return w, false, nil
	}
	dk, err := k.unwrap(subject, w)
	if err != nil {
		return Wrapped{}, false, err
	}
	defer clear(dk)
	nw, err := k.wrap(subject, dk)
	return nw, err == nil, err
}

func (k *Keyring) unwrap(subject string, w Wrapped) ([]byte, error) {
	aead := k.aeads[w.MasterKeyID]
	if aead == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownMasterKey, w.MasterKeyID)
	}
	if len(w.Nonce) != aead.NonceSize() {
		return nil, ErrOpen
	}
	dk, err := aead.Open(nil, w.Nonce, w.Ciphertext, wrapAD(subject))
	if err != nil || len(dk) != KeyBytes {
		return nil, ErrOpen
	}
	return dk, nil
}

// DataKey is an unwrapped data key, ready to seal and open.
type DataKey struct {
	subject string
	aead    cipher.AEAD
}

// Open unwraps subject's data key.
func (k *Keyring) Open(subject string, w Wrapped) (*DataKey, error) {
	dk, err := k.unwrap(subject, w)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	aead, err := newAEAD(dk)
	if err != nil {
		return nil, err
	}
	return &DataKey{subject: subject, aead: aead}, nil
}

// Sealed is personal data sealed by a data key: nonce then ciphertext.
type Sealed []byte

func sealAD(subject, record string) []byte {
	return []byte("ordergrid personal v1\x00" + subject + "\x00" + record)
}

// Seal seals plaintext for record (an order id) of the key's subject.
func (d *DataKey) Seal(record string, plaintext []byte) (Sealed, error) {
	nonce := make([]byte, d.aead.NonceSize(), d.aead.NonceSize()+len(plaintext)+d.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return d.aead.Seal(nonce, nonce, plaintext, sealAD(d.subject, record)), nil
}

// Open opens what Seal sealed for the same record.
func (d *DataKey) Open(record string, s Sealed) ([]byte, error) {
	n := d.aead.NonceSize()
	if len(s) < n+d.aead.Overhead() {
		return nil, ErrOpen
	}
	p, err := d.aead.Open(nil, s[:n], s[n:], sealAD(d.subject, record))
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}
