package statemachine

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// testSeedEnv replays a randomized test: set it to the seed a run logged.
const testSeedEnv = "ORDERGRID_TEST_SEED"

// testSeed returns the seed of a randomized test: $ORDERGRID_TEST_SEED
// when set, else a fresh one. It logs the seed with how to replay it.
func testSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv(testSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", testSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (%s=%d replays this run)", seed, testSeedEnv, seed)
	return seed
}
