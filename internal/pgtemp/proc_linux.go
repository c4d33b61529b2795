package pgtemp

import "syscall"

// setParentDeathSignal has the kernel send the server SIGQUIT (immediate
// shutdown) if we die without stopping it. Go applies it after the
// credentials change, which would otherwise clear it.
func setParentDeathSignal(a *syscall.SysProcAttr) {
	a.Pdeathsig = syscall.SIGQUIT
}
