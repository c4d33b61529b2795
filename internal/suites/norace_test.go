//go:build !race

package suites

// raceEnabled: the tests were built without -race, so the suites they run
// are too.
const raceEnabled = false
