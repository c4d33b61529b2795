//go:build unix

package auditpg

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, user and system, on
// every goroutine: what a benchmark reports beside its wall time so that
// work moved off the caller's path still shows.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
