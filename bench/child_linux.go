package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has cmd killed when the bench dies: a bench stopped by a
// signal runs none of its clean-up, and its worker and starter processes
// would go on retrying against its dev server, loading the machine.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
