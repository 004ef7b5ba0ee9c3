package gateway

import (
	"testing"
	"time"
)

func TestAdmissionFixed(t *testing.T) {
	a := newAdmission(3, 0)
	for i := 0; i < 3; i++ {
		if !a.acquire() {
			t.Fatalf("place %d refused", i)
		}
	}
	if a.acquire() {
		t.Fatal("a fourth place at a limit of 3")
	}
	a.release(time.Second)
	if !a.acquire() {
		t.Fatal("a released place refused")
	}
	if a.current() != 3 {
		t.Fatalf("a fixed limit moved to %d", a.current())
	}
}

// The adaptive limit shrinks while requests are slow, never below the
// minimum, and grows back while they are fast and the limit is used.
func TestAdmissionAdapts(t *testing.T) {
	a := newAdmission(1000, 10*time.Millisecond)
	window := func(took time.Duration, inFlight int) {
		for i := 0; i < inFlight; i++ {
			if !a.acquire() {
				break
			}
		}
		a.windowStart = time.Now().Add(-2 * admissionWindow)
		for a.inFlight > 0 {
			a.release(took)
		}
	}
	for i := 0; i < 40; i++ {
		window(50*time.Millisecond, 1000)
	}
	if got := a.current(); got != admissionMin {
		t.Fatalf("after slow windows the limit is %d, want %d", got, admissionMin)
	}
	for i := 0; i < 80; i++ {
		window(time.Millisecond, a.current())
	}
	if got := a.current(); got != 1000 {
		t.Fatalf("after fast, busy windows the limit is %d, want 1000", got)
	}
	for i := 0; i < 10; i++ {
		window(time.Millisecond, 1) // fast but idle: no reason to move
	}
	if got := a.current(); got != 1000 {
		t.Fatalf("idle windows moved the limit to %d", got)
	}
}
