//go:build !unix

package pgtemp

import (
	"errors"
	"os"
	"runtime"
	"syscall"
)

var (
	sigFast os.Signal = os.Kill
	sigQuit os.Signal = os.Kill
	sigTerm syscall.Signal
	sigKill syscall.Signal
)

type osUser struct{}

var errUnsupported = errors.New("pgtemp: temporary clusters are not supported on " + runtime.GOOS +
	"; set " + EnvDatabaseURL + " to the URL of a server")

func serverUser() (*osUser, error)             { return nil, errUnsupported }
func sysProcAttr(*osUser) *syscall.SysProcAttr { return nil }
func chownTo(string, *osUser) error            { return nil }
func signalGroup(int, syscall.Signal) error    { return errUnsupported }
func processAlive(int) bool                    { return true }
func pidNamespace() string                     { return "-" }
func tempBase(*osUser) (string, error)         { return os.TempDir(), nil }
