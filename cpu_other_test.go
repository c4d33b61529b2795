//go:build !unix

package auditpg

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
