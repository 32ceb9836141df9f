package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where the time goes: the CPU time that each side of a run uses, per
// object, read from the kernel's accounting before and after it.

// cpuUse is CPU time used so far (user and system), by process: the
// bench's own (pid 0 here) and its worker and starter processes ("bench");
// the Temporal server ("temporal": the dev server the bench started, or any
// temporal-server process); and every PostgreSQL process of the machine
// ("postgres": the shared server, where other work on the machine shows
// too, so quote it from a quiet machine).
type cpuUse map[int]procCPU

type procCPU struct {
	side string
	used time.Duration
}

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// readCPU reads cpuUse now. Processes it cannot read are left out.
func readCPU() cpuUse {
	u := cpuUse{}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u[0] = procCPU{"bench", time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, ppid, used, ok := procStat(pid)
		switch {
		case !ok:
		case comm == "temporal" || comm == "temporal-server":
			u[pid] = procCPU{"temporal", used}
		case comm == "postgres":
			u[pid] = procCPU{"postgres", used}
		case ppid == self:
			u[pid] = procCPU{"bench", used}
		}
	}
	return u
}

// procStat reads the command name, parent and CPU time of process pid.
func procStat(pid int) (comm string, ppid int, used time.Duration, ok bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, false
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	comm = s[open+1 : end]
	// After the name: state ppid ... utime (the 14th field) stime (15th).
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return comm, ppid, time.Duration(ut+st) * clockTick, true
}

// CPUPerObject is a run's CPU time per object, in milliseconds.
type CPUPerObject struct {
	Bench    float64 `json:"bench_ms"`
	Temporal float64 `json:"temporal_ms"`
	Postgres float64 `json:"postgres_ms"`
}

func (c CPUPerObject) String() string {
	return fmt.Sprintf("bench/workers %.2f, temporal %.2f, postgres %.2f", c.Bench, c.Temporal, c.Postgres)
}

// cpuSince is the CPU time used since before, per object of n: by each
// process alive now, its time since before (all of it, for a process
// started since). A process that ended meanwhile is left out.
func cpuSince(before cpuUse, n int) CPUPerObject {
	sides := map[string]time.Duration{}
	for pid, now := range readCPU() {
		sides[now.side] += now.used - before[pid].used
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	return CPUPerObject{Bench: per(sides["bench"]), Temporal: per(sides["temporal"]), Postgres: per(sides["postgres"])}
}

// profile writes a CPU profile of this process to <prefix>-<name>.pprof
// until the returned function is called; a no-op when prefix is empty.
func profile(prefix, name string) (stop func(), err error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "-" + name + ".pprof")
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
