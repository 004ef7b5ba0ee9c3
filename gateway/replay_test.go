package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// testClock is a clock the test moves.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func TestReplayCacheRefusesASecondClaim(t *testing.T) {
	clock := &testClock{t: time.Unix(1762826400, 0)}
	c := newReplayCache(10, clock.now)
	exp := clock.t.Add(5 * time.Minute)
	if _, _, err := c.claim("wechat/a", "1762826400/n1", exp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.claim("wechat/a", "1762826400/n1", exp); !errors.Is(err, errReplayed) {
		t.Fatalf("second claim: %v", err)
	}
	// Another connection, or another nonce, is another message.
	if _, _, err := c.claim("wechat/b", "1762826400/n1", exp); err != nil {
		t.Fatalf("other connection: %v", err)
	}
	if _, _, err := c.claim("wechat/a", "1762826400/n2", exp); err != nil {
		t.Fatalf("other nonce: %v", err)
	}
	// Through the expiry instant the key holds; after it, it is forgotten.
	clock.t = exp
	if _, _, err := c.claim("wechat/a", "1762826400/n1", exp); !errors.Is(err, errReplayed) {
		t.Fatalf("at the expiry instant: %v", err)
	}
	clock.t = exp.Add(time.Nanosecond)
	if _, _, err := c.claim("wechat/a", "1762826400/n3", exp.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := c.size("wechat/a"); n != 1 {
		t.Fatalf("%d keys after the window, want the 1 new one", n)
	}
	if _, _, err := c.claim("wechat/a", "1762826400/n1", exp.Add(time.Hour)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// The bound holds: a full connection refuses new keys (saying when the
// soonest frees) rather than forgetting live ones; expiry frees room.
func TestReplayCacheBound(t *testing.T) {
	clock := &testClock{t: time.Unix(1762826400, 0)}
	c := newReplayCache(3, clock.now)
	for i := range 3 {
		if _, _, err := c.claim("pos/", fmt.Sprint(i), clock.t.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	_, wait, err := c.claim("pos/", "3", clock.t.Add(time.Hour))
	if !errors.Is(err, errReplayCacheFull) || wait != time.Minute {
		t.Fatalf("claim past the bound: %v, wait %s", err, wait)
	}
	if n := c.size("pos/"); n != 3 {
		t.Fatalf("%d keys, want 3", n)
	}
	// Every key is still refused: none was forgotten to make room.
	for i := range 3 {
		if _, _, err := c.claim("pos/", fmt.Sprint(i), clock.t.Add(time.Hour)); !errors.Is(err, errReplayed) {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	clock.t = clock.t.Add(90 * time.Second) // the first key's window is over
	if _, _, err := c.claim("pos/", "3", clock.t.Add(time.Hour)); err != nil {
		t.Fatalf("after the soonest expiry: %v", err)
	}
	if _, _, err := c.claim("pos/", "4", clock.t.Add(time.Hour)); !errors.Is(err, errReplayCacheFull) {
		t.Fatalf("full again: %v", err)
	}
	// Another connection has its own bound.
	if _, _, err := c.claim("shopify/", "4", clock.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// A released claim (the push was not taken) can be claimed again; a
// release after the key expired and was claimed anew leaves the new claim.
func TestReplayCacheRelease(t *testing.T) {
	clock := &testClock{t: time.Unix(1762826400, 0)}
	c := newReplayCache(10, clock.now)
	exp := clock.t.Add(time.Minute)
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := c.claim("w/", k, exp); err != nil {
			t.Fatal(err)
		}
	}
	e, _, err := c.claim("w/", "d", exp.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.release("w/", e)
	if n := c.size("w/"); n != 3 {
		t.Fatalf("%d keys after the release, want 3", n)
	}
	again, _, err := c.claim("w/", "d", exp.Add(time.Second))
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	clock.t = exp.Add(2 * time.Second)
	fresh, _, err := c.claim("w/", "d", clock.t.Add(time.Minute)) // the old one expired
	if err != nil {
		t.Fatal(err)
	}
	c.release("w/", again) // stale: must not drop the fresh claim
	if _, _, err := c.claim("w/", "d", clock.t.Add(time.Minute)); !errors.Is(err, errReplayed) {
		t.Fatalf("a stale release dropped the fresh claim: %v", err)
	}
	c.release("w/", fresh)
	if n := c.size("w/"); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}

func TestReplayProblem(t *testing.T) {
	if p := replayProblem(nil, "nonce", 0); p != nil {
		t.Fatalf("no error: %+v", p)
	}
	p := replayProblem(errReplayed, "nonce", 0)
	if p.Status != http.StatusConflict || p.Name != "replayed-push" || p.Errors[0].Field != "nonce" {
		t.Fatalf("replayed: %+v", p)
	}
	p = replayProblem(errReplayCacheFull, "nonce", 1500*time.Millisecond)
	if p.Status != http.StatusServiceUnavailable || p.Name != "replay-cache-full" || p.RetryAfterSec != 2 {
		t.Fatalf("full: %+v", p)
	}
}
