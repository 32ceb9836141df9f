package testenv

import "syscall"

// ServerProcAttr has a server (dev server, Redis) a test starts killed when the test
// process dies, even without running its cleanups (a panic, a timeout).
func ServerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
