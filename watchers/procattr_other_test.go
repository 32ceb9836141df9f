//go:build !linux

package watchers_test

import "syscall"

// serverProcAttr: elsewhere than Linux, a server is killed by the test's
// cleanups only.
func serverProcAttr() *syscall.SysProcAttr { return nil }
