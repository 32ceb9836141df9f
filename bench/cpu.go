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

// cpuUse is CPU time used so far (user and system): by the bench's own
// process and its worker and starter processes; by the Temporal server
// (the dev server the bench started, or any temporal-server process); and
// by every PostgreSQL process of the machine (the shared server: other
// work on the machine shows in it too, so quote it from a quiet machine).
type cpuUse struct {
	Bench, Temporal, Postgres time.Duration
}

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// readCPU reads cpuUse now. Processes it cannot read are left out.
func readCPU() cpuUse {
	var u cpuUse
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.Bench = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
			u.Temporal += used
		case comm == "postgres":
			u.Postgres += used
		case ppid == self:
			u.Bench += used
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

// cpuSince is the CPU time used since before, per object of n.
func cpuSince(before cpuUse, n int) CPUPerObject {
	now := readCPU()
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	return CPUPerObject{Bench: per(now.Bench - before.Bench), Temporal: per(now.Temporal - before.Temporal), Postgres: per(now.Postgres - before.Postgres)}
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
