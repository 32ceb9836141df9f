//go:build !linux

package testenv

import "syscall"

// ServerProcAttr: only Linux kills a child with its parent (Pdeathsig);
// elsewhere the tests' cleanups must stop their dev servers.
func ServerProcAttr() *syscall.SysProcAttr { return nil }
