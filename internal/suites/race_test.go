//go:build race

package suites

// raceEnabled: the tests were built with -race, so the suites they run are
// too.
const raceEnabled = true
