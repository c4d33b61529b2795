package pgtemp

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// dirPrefix starts the name of every cluster directory.
const dirPrefix = "auditpg-pgtemp-"

// ownerFile, in a cluster directory, holds the PID and PID namespace of the
// process that created it.
const ownerFile = "owner"

func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile),
		[]byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), pidNamespace())), 0o644)
}

// sweepStale removes the cluster directories under base left by processes
// that died without stopping their cluster (a test binary killed by -timeout,
// or exiting after a panic): their owner is gone, in our PID namespace, and so
// is their server. Anything it cannot read or remove is left alone.
func sweepStale(base string) {
	dirs, err := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	if err != nil {
		return
	}
	ns := pidNamespace()
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pidText, ownerNS, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || ownerNS != ns || processAlive(pid) {
			continue
		}
		if pm := postmasterPID(filepath.Join(dir, "data")); pm != 0 && processAlive(pm) {
			continue // still shutting down
		}
		_ = os.RemoveAll(dir)
	}
}

// postmasterPID reads the PID in dataDir/postmaster.pid, or returns 0.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	return pid
}
