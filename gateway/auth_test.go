package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	ops, opsEntry, err := NewToken("wms", RoleOps, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	intake, intakeEntry, err := NewToken("dy", RoleIntake, []string{"douyin"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTokens([]TokenEntry{opsEntry, intakeEntry})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ts.Authenticate("Bearer " + ops); err != nil || p.Name != "wms" || p.Role != RoleOps {
		t.Fatalf("ops: %+v %v", p, err)
	}
	if p, err := ts.Authenticate("bearer  " + intake + " "); err != nil || !p.mayUseChannel("douyin") || p.mayUseChannel("tmall") {
		t.Fatalf("intake: %+v %v", p, err)
	}
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + ops, ops, "Bearer " + ops + "x", "Bearer " + strings.ToUpper(ops)} {
		if _, err := ts.Authenticate(h); err == nil {
			t.Errorf("%q authenticated", h)
		}
	}
	ts.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := ts.Authenticate("Bearer " + intake); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestTokenEntriesAreChecked(t *testing.T) {
	good := TokenEntry{Name: "a", Role: "ops", SHA256: TokenHash("x")}
	for name, e := range map[string]TokenEntry{
		"unknown role":            {Name: "a", Role: "root", SHA256: TokenHash("x")},
		"intake without channels": {Name: "a", Role: "intake", SHA256: TokenHash("x")},
		"ops with channels":       {Name: "a", Role: "ops", Channels: []string{"douyin"}, SHA256: TokenHash("x")},
		"short hash":              {Name: "a", Role: "ops", SHA256: "abcd"},
		"bad name":                {Name: "a b", Role: "ops", SHA256: TokenHash("x")},
		"bad expiry":              {Name: "a", Role: "ops", SHA256: TokenHash("x"), Expires: "tomorrow"},
	} {
		if _, err := NewTokens([]TokenEntry{e}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewTokens([]TokenEntry{good, {Name: "a", Role: "admin", SHA256: TokenHash("y")}}); err == nil {
		t.Error("a name twice: accepted")
	}
	if _, err := NewTokens([]TokenEntry{good, {Name: "b", Role: "admin", SHA256: TokenHash("x")}}); err == nil {
		t.Error("a token twice: accepted")
	}
}

// FuzzAuthenticate: any header either fails or names the one known token.
func FuzzAuthenticate(f *testing.F) {
	tok, e, err := NewToken("k", RoleAdmin, nil, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	ts, err := NewTokens([]TokenEntry{e})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "Bearer " + tok, "Bearer", "bearer x", "Basic abc", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		p, err := ts.Authenticate(h)
		if err == nil && (p.Name != "k" || !strings.Contains(h, tok)) {
			t.Fatalf("%q authenticated as %+v", h, p)
		}
	})
}
