package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/models"
)

// The backlog: many objects inserted at once, synced by a worker and a
// starter process, against the raw workflows' rate for the same count.

// Backlog is what -backlog measures.
type Backlog struct {
	N    int     `json:"n"`
	DAG  bool    `json:"dag"`
	Raw  float64 `json:"raw_workflows_per_s"`
	Rate float64 `json:"objects_per_s"`
	// Seconds is the time until all were in sync; Ratio is it over N / Raw.
	Seconds float64 `json:"wall_s"`
	Ratio   float64 `json:"ratio"`
	// Tenths are the rates (objects/s) over each tenth of the backlog.
	Tenths            []float64 `json:"rate_per_tenth"`
	WorkerPeakRSSMiB  float64   `json:"worker_peak_rss_mib"`
	StarterPeakRSSMiB float64   `json:"starter_peak_rss_mib"`
	// MaxRunning is the most workflows seen open at once; StartsInFlight
	// the bound on the starter's concurrent start calls.
	MaxRunning     int64 `json:"max_running_workflows"`
	StartsInFlight int   `json:"starts_in_flight_bound"`
	// RawProgress and Progress are when raw's and tsync's runs had made
	// all their starts (the starts phase), the most workflows each had
	// open at once, and their workflows closed per second over each tenth.
	RawProgress progress `json:"raw_progress"`
	Progress    progress `json:"progress"`
	// ProcessErrors counts the error lines the worker and the starter
	// logged (rejected requests, failed scans).
	ProcessErrors int    `json:"process_error_lines"`
	ProcessLog    string `json:"process_log"`
}

// backlog inserts n objects at once (Items, or with dag a graph of sites
// with their networks, slices and instances) and measures their sync by a
// worker and a starter process.
func (b *bench) backlog(ctx context.Context, n int, dag bool) (Backlog, error) {
	r := Backlog{N: n, DAG: dag}
	c, err := client.DialContext(ctx, rawOptions(b.temporal))
	if err != nil {
		return r, err
	}
	rawStart := time.Now()
	rawProgress := watchProgress(ctx, c, fmt.Sprintf("WorkflowType = 'Baseline' AND StartTime >= '%s'", rawStart.UTC().Format(time.RFC3339)), n, rawStart)
	raw, _, err := b.baseline(ctx, n, false)
	r.RawProgress = rawProgress()
	c.Close()
	if err != nil {
		return r, err
	}
	r.Raw = raw
	fmt.Fprintf(b.out, "backlog: raw %d workflows: %.1f workflows/s\n", n, raw)
	r.RawProgress.print(b.out, "raw", n)
	if b.renew != nil {
		// The dev server keeps raw's histories in memory, which slows it
		// (by 7 GB, a 100,000-workflow run's): tsync starts on an empty
		// one, as raw did.
		if err := b.renew(ctx); err != nil {
			return r, fmt.Errorf("backlog: %w", err)
		}
		fmt.Fprintf(b.out, "backlog: tsync on a new dev server, at %s\n", b.temporal)
	}

	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return r, err
	}
	defer cleanup()
	tables := []string{"item"}
	if dag {
		d := dagShape{networks: 2, slices: 4, instances: 5}
		d.sites = max(1, n/d.count1())
		if err := e.insertDAG(ctx, d.sites, d.networks, d.slices, d.instances); err != nil {
			return r, err
		}
		r.N = d.count()
		tables = []string{"site", "network", "slice", "instance"}
	} else if err := e.insertItems(ctx, n); err != nil {
		return r, err
	}
	r.ProcessLog = filepath.Join("var", "bench", "backlog-processes.log")
	logFile, err := os.Create(r.ProcessLog)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	start := time.Now()
	w, s, stop, err := e.processes(logFile)
	if err != nil {
		return r, err
	}
	defer stop()
	r.StartsInFlight = e.app.Config.Concurrency.Starts

	tsyncProgress := watchProgress(ctx, e.app.Client, fmt.Sprintf("TaskQueue = %q", e.app.Config.Temporal.TaskQueue), r.N, start)
	next, last, lastAt := 1, 0, start
	for {
		// The pending ones, by the partial index: a count of the synced
		// ones would read every row, twice a second, on the machine
		// measured.
		synced := r.N
		for _, t := range tables {
			var k int
			if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM `+e.table(t)+` WHERE `+models.PendingPredicate).Scan(&k); err != nil {
				return r, err
			}
			synced -= k
		}
		for next <= 10 && synced >= r.N*next/10 {
			now := time.Now()
			rate := float64(synced-last) / now.Sub(lastAt).Seconds()
			r.Tenths = append(r.Tenths, rate)
			fmt.Fprintf(b.out, "backlog %3d%%: %d in sync after %.1fs (%.1f objects/s over this tenth)\n", next*10, synced, now.Sub(start).Seconds(), rate)
			next, last, lastAt = next+1, synced, now
		}
		if synced >= r.N {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.Seconds = time.Since(start).Seconds()
	r.Progress = tsyncProgress()
	r.MaxRunning = r.Progress.MaxOpen
	r.Rate = float64(r.N) / r.Seconds
	r.Ratio = r.Seconds / (float64(r.N) / raw)
	if r.WorkerPeakRSSMiB, err = peakRSS(w.Process.Pid); err != nil {
		return r, err
	}
	if r.StarterPeakRSSMiB, err = peakRSS(s.Process.Pid); err != nil {
		return r, err
	}
	stop()
	data, err := os.ReadFile(r.ProcessLog)
	if err != nil {
		return r, err
	}
	r.ProcessErrors = bytes.Count(data, []byte(`"level":"ERROR"`))
	kind := "independent"
	if dag {
		kind = "dag"
	}
	fmt.Fprintf(b.out, "backlog: %d %s objects in sync after %.1fs: %.1f objects/s, ratio %.2f (time / (N / raw rate))\n", r.N, kind, r.Seconds, r.Rate, r.Ratio)
	r.Progress.print(b.out, "tsync", r.N)
	fmt.Fprintf(b.out, "backlog: peak rss worker %.1f MiB, starter %.1f MiB; starts in flight at most %d; %d error lines logged (%s)\n",
		r.WorkerPeakRSSMiB, r.StarterPeakRSSMiB, r.StartsInFlight, r.ProcessErrors, r.ProcessLog)
	return r, nil
}
