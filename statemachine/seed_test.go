package statemachine

import (
	"testing"

	"github.com/ordergrid/ordergrid/internal/testseed"
)

// testSeed is the seed of a randomized test (package testseed: logged, and
// replayed by $ORDERGRID_TEST_SEED).
func testSeed(t *testing.T) int64 {
	t.Helper()
	return testseed.Seed(t)
}
