package privacy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func keyring(t *testing.T, ids ...string) *Keyring {
	t.Helper()
	var lines []string
	for _, id := range ids {
		l, err := NewMasterKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	k, err := ParseKeyring("# master keys\n" + strings.Join(lines, "\n") + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenBinding(t *testing.T) {
	kr := keyring(t, "k1")
	w, err := kr.NewDataKey("alice")
	if err != nil {
		t.Fatal(err)
	}
	dk, err := kr.Open("alice", w)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := dk.Seal("o_1", []byte("Alice, 1 Main St"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("Alice")) {
		t.Fatal("plaintext in the sealed value")
	}
	if p, err := dk.Open("o_1", sealed); err != nil || string(p) != "Alice, 1 Main St" {
		t.Fatalf("open: %q %v", p, err)
	}
	// Bound to its order and its subject; tampering fails.
	if _, err := dk.Open("o_2", sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("another order: %v", err)
	}
	if _, err := kr.Open("bob", w); !errors.Is(err, ErrOpen) {
		t.Fatalf("the key under another subject: %v", err)
	}
	bad := append([]byte(nil), sealed...)
	bad[len(bad)-1] ^= 1
	if _, err := dk.Open("o_1", bad); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := dk.Open("o_1", sealed[:5]); !errors.Is(err, ErrOpen) {
		t.Fatalf("short: %v", err)
	}
}

// Rotation: a new active key wraps new data keys and rewraps old ones;
// the data sealed before opens with the rewrapped key; once rewrapped, the
// old master key can go.
func TestRotation(t *testing.T) {
	l1, l2 := mustLine(t, "k1"), mustLine(t, "k2")
	old, err := ParseKeyring(l1)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := old.NewDataKey("alice")
	dk, _ := old.Open("alice", w)
	sealed, _ := dk.Seal("o_1", []byte("secret"))

	both, err := ParseKeyring(l1 + "\n" + l2)
	if err != nil {
		t.Fatal(err)
	}
	if both.Active() != "k2" {
		t.Fatalf("active %s", both.Active())
	}
	if _, err := both.Open("alice", w); err != nil {
		t.Fatalf("an old wrapping with both keys: %v", err)
	}
	nw, changed, err := both.Rewrap("alice", w)
	if err != nil || !changed || nw.MasterKeyID != "k2" {
		t.Fatalf("rewrap: %+v %v %v", nw, changed, err)
	}
	if _, again, _ := both.Rewrap("alice", nw); again {
		t.Fatal("rewrapped twice")
	}
	onlyNew, _ := ParseKeyring(l2)
	dk2, err := onlyNew.Open("alice", nw)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := dk2.Open("o_1", sealed); err != nil || string(p) != "secret" {
		t.Fatalf("data sealed before the rotation: %q %v", p, err)
	}
	if _, err := onlyNew.Open("alice", w); !errors.Is(err, ErrUnknownMasterKey) {
		t.Fatalf("an old wrapping without its key: %v", err)
	}
}

func mustLine(t *testing.T, id string) string {
	t.Helper()
	l, err := NewMasterKeyLine(id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParseKeyringRefuses(t *testing.T) {
	good := mustLine(t, "k1")
	for name, text := range map[string]string{
		"empty":       "",
		"one field":   "k1",
		"short key":   "k1 AAAA",
		"bad base64":  "k1 !!!!",
		"bad id":      "k/1 " + strings.Fields(good)[1],
		"id twice":    good + "\n" + good,
		"three words": good + " extra",
	} {
		if _, err := ParseKeyring(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseKeyring: any text is refused or gives a keyring whose keys wrap
// and unwrap.
func FuzzParseKeyring(f *testing.F) {
	f.Add("k1 " + strings.Repeat("A", 43) + "=")
	f.Add("# c\nk1 AAAA\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseKeyring(text)
		if err != nil {
			return
		}
		w, err := k.NewDataKey("s")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Open("s", w); err != nil {
			t.Fatal(err)
		}
	})
}
