//go:build race

package ledger

// raceEnabled: the race detector makes the export test 10x slower.
const raceEnabled = true
