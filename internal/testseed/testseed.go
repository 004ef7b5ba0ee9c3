// Package testseed is test support, not product: the seed of a randomized
// test. Every randomized test of the module (the state machine's walk, the
// grains' batches, the simulation, the end-to-end model and flash sale)
// takes its seed here, logs it with how to replay it, and replays a logged
// one when $ORDERGRID_TEST_SEED is set.
package testseed

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Env replays a randomized test: set it to the seed a run logged.
const Env = "ORDERGRID_TEST_SEED"

// Seed returns the seed of a randomized test: $ORDERGRID_TEST_SEED when
// set, else a fresh one. It logs the seed with how to replay it, and fails
// the test on a seed that is not a number.
func Seed(t testing.TB) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv(Env); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", Env, s, err)
		}
	}
	t.Logf("seed %d (%s=%d replays this run)", seed, Env, seed)
	return seed
}
