package watchers_test

import "syscall"

// serverProcAttr has a server a test starts killed when the test process
// dies, even without running its cleanups (a panic, a timeout).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
