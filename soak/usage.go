package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// usage is the memory and goroutine count of one process.
type usage struct {
	name       string
	pid        int
	rss        float64 // MiB, VmRSS
	goroutines int
	proxies    int // of goroutines, toxiproxy's (the soak process's only)
	err        error
}

// usage measures the soak process and each worker process.
func (s *soak) usage(ctx context.Context) []usage {
	self := usage{name: "soak", pid: os.Getpid()}
	self.goroutines, self.proxies = ownGoroutines()
	self.rss, self.err = vmRSS(self.pid)
	out := []usage{self}
	for _, w := range s.workers {
		_, pid, _ := w.current()
		u := usage{name: w.name, pid: pid}
		if u.rss, u.err = vmRSS(pid); u.err == nil {
			u.goroutines, u.err = goroutines(ctx, w.metrics)
		}
		out = append(out, u)
	}
	return out
}

// ownGoroutines counts the soak process's goroutines, and of them those of
// toxiproxy (a few for each connection through a proxy, so their number
// follows the worker processes' pools, not a leak).
func ownGoroutines() (all, proxies int) {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.TrimSpace(g) == "" {
			continue
		}
		all++
		if strings.Contains(g, "toxiproxy") {
			proxies++
		}
	}
	return all, proxies
}

// vmRSS reads the resident memory of process pid, in MiB.
func vmRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of pid %d: %w", pid, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// goroutines reads go_goroutines from the metrics endpoint at hostPort.
func goroutines(ctx context.Context, hostPort string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(n), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return 0, fmt.Errorf("metrics at %s: no go_goroutines", hostPort)
}

// printUsage prints one measurement.
func printUsage(when string, us []usage) {
	for _, u := range us {
		if u.err != nil {
			fmt.Printf("memory %s  %s pid %d: %v\n", when, u.name, u.pid, u.err)
			continue
		}
		fmt.Printf("memory %s  %s pid %d: rss %.1f MiB, goroutines %d%s\n", when, u.name, u.pid, u.rss, u.goroutines, ofProxies(u.name, u.proxies))
	}
}

// printGrowth prints each process's counts before and after.
func printGrowth(before, after []usage) {
	for i, a := range after {
		b := before[i]
		pid := strconv.Itoa(a.pid)
		if b.pid != a.pid {
			pid = fmt.Sprintf("%d -> %d (restarted)", b.pid, a.pid)
		}
		if a.err != nil || b.err != nil {
			fmt.Printf("  memory      %s pid %s: %v %v\n", a.name, pid, b.err, a.err)
			continue
		}
		fmt.Printf("  memory      %s pid %s: rss %.1f -> %.1f MiB, goroutines %d -> %d%s\n", a.name, pid, b.rss, a.rss, b.goroutines, a.goroutines,
			ofProxies(a.name, b.proxies, a.proxies))
	}
}

// ofProxies formats the counts of toxiproxy's goroutines in the soak
// process.
func ofProxies(name string, counts ...int) string {
	if name != "soak" {
		return ""
	}
	var out []string
	for _, n := range counts {
		out = append(out, strconv.Itoa(n))
	}
	return " (toxiproxy's " + strings.Join(out, " -> ") + ")"
}
