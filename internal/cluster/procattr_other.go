//go:build !linux

package cluster

import "syscall"

// attachedProcAttr: only Linux kills a child with its parent (Pdeathsig);
// elsewhere Stop must stop the processes.
func attachedProcAttr() *syscall.SysProcAttr { return nil }
