package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// netFault is a bad network condition: a toxic held for a while on the
// proxies to Temporal, PostgreSQL or both.
type netFault struct {
	hold  time.Duration
	what  string
	toxic string // toxiproxy's JSON: name, type, stream, attributes
}

// netFaults are the network faults, by kind.
var netFaults = map[string]netFault{
	"latency": {10 * time.Second, "200 ms of latency",
		`{"name": "latency", "type": "latency", "stream": "downstream", "attributes": {"latency": 200}}`},
	"reset": {5 * time.Second, "connections reset",
		`{"name": "reset", "type": "reset_peer", "stream": "downstream", "attributes": {"timeout": 300}}`},
	"blackhole": {30 * time.Second, "a blackhole",
		`{"name": "blackhole", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}`},
}

// faultWeights are the kinds of fault, and how often each comes.
var faultWeights = map[string]int{"kill": 3, "latency": 2, "reset": 2, "pg-cut": 2, "blackhole": 1}

// allFaults returns every kind of fault, sorted.
func allFaults() []string {
	var out []string
	for k := range faultWeights {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// faultPool returns the comma-separated kinds, each repeated by its weight.
func faultPool(kinds string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(kinds, ",") {
		w, ok := faultWeights[strings.TrimSpace(k)]
		if !ok {
			return nil, fmt.Errorf("-faults: unknown kind %q (known: %s)", k, strings.Join(allFaults(), ", "))
		}
		for range w {
			out = append(out, strings.TrimSpace(k))
		}
	}
	return out, nil
}

// inject injects a fault of a random kind every 15 to 45 s (start to
// start, none while another lasts) until end, and logs each on a line of
// its own.
func (s *soak) inject(ctx context.Context, end time.Time) error {
	next := time.Now().Add(time.Duration(15+rand.IntN(30)) * time.Second)
	for next.Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
		next = time.Now().Add(time.Duration(15+rand.IntN(30)) * time.Second)
		kind := s.kinds[rand.IntN(len(s.kinds))]
		if err := s.fault(ctx, kind); err != nil {
			return fmt.Errorf("fault %s: %w", kind, err)
		}
		s.faults[kind]++
	}
	return nil
}

// fault injects one fault of kind, and returns when it is over.
func (s *soak) fault(ctx context.Context, kind string) error {
	switch kind {
	case "kill":
		pid, underWay, err := s.kill(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("fault  %s  kill: SIGKILL of %s pid %d, step calls under way: %d\n", stamp(s.start), s.workers[1].name, pid, underWay)
	case "pg-cut":
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, s.appName).Scan(&n); err != nil {
			return err
		}
		fmt.Printf("fault  %s  pg-cut: %d PostgreSQL sessions of the synchronizer terminated\n", stamp(s.start), n)
	default:
		f := netFaults[kind]
		targets := [][]string{{"temporal"}, {"postgres"}, {"temporal", "postgres"}}[rand.IntN(3)]
		fmt.Printf("fault  %s  %s: %s for %s between the workers and %s\n", stamp(s.start), kind, f.what, f.hold, strings.Join(targets, " and "))
		for _, t := range targets {
			if _, err := s.proxies[t].Toxics.AddToxicJson(strings.NewReader(f.toxic)); err != nil {
				return fmt.Errorf("add %s to %s: %w", kind, t, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(f.hold):
		}
		for _, t := range targets {
			s.proxies[t].Toxics.ResetToxics(context.WithoutCancel(ctx))
		}
	}
	return nil
}

// faultCounts formats the faults injected, by kind.
func (s *soak) faultCounts() string {
	var kinds []string
	total := 0
	for k, n := range s.faults {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		total += n
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d (%s)", total, strings.Join(kinds, ", "))
}

// stamp is the time now, in UTC and since start.
func stamp(start time.Time) string {
	now := time.Now()
	return fmt.Sprintf("%s +%s", now.UTC().Format("15:04:05.000"), now.Sub(start).Round(time.Second))
}
