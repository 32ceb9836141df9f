package ansible

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// groupGone waits until no live process of process group pgid is left
// (zombies aside: reaping them is their parent's business), ctx is done, or
// max has passed, and reports whether the group is gone. A SIGKILL is
// delivered once its target leaves the kernel, which a loaded machine can
// delay: Run returns only once the playbook's processes are really gone.
// Without /proc (not Linux) it cannot tell, and reports true.
func groupGone(ctx context.Context, pgid int, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		alive, known := groupAlive(pgid)
		if !known || !alive {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether a process of group pgid runs, as /proc tells
// (known false: no /proc).
func groupAlive(pgid int) (alive, known bool) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and
		// parentheses, so the fields are counted after the last ')'.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true, true
		}
	}
	return false, true
}
