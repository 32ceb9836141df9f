package cluster

import "syscall"

// attachedProcAttr has a process of a cluster that is not detached killed
// when the process that started it dies, even without its cleanups (a
// panic, a test's timeout).
func attachedProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
