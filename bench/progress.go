package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// progress samples, from visibility, the workflows a backlog run has
// started and how many of them are open, so that raw's run and tsync's
// can be compared over time: when the last start was made (the starts
// phase) and the most workflows open at once.
type progress struct {
	// StartsDone is when the count of started runs first reached n (zero:
	// never sampled there); MaxOpen the most seen open at once.
	StartsDone time.Duration `json:"starts_done_ns"`
	MaxOpen    int64         `json:"max_open"`
	// Tenths are the rates (workflows closed per second) over each tenth
	// of n, from the samples.
	Tenths []float64 `json:"closed_per_tenth"`
}

// progressEvery is the sampling interval: a count reads visibility's rows,
// not too often on the server measured.
const progressEvery = 5 * time.Second

// watchProgress samples the runs query matches (GROUP BY ExecutionStatus)
// every progressEvery from start until the returned func is called, which
// returns what it saw. Failed counts are skipped: visibility lags or is
// busy on a saturated server.
func watchProgress(ctx context.Context, c client.Client, query string, n int, start time.Time) func() progress {
	ctx, cancel := context.WithCancel(ctx)
	var p progress // the goroutine's until done is closed
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		next, last, lastAt := 1, int64(0), start
		for {
			if total, open, err := countByStatus(ctx, c, query); err == nil {
				now := time.Now()
				p.MaxOpen = max(p.MaxOpen, open)
				if p.StartsDone == 0 && total >= int64(n) {
					p.StartsDone = now.Sub(start)
				}
				closed := total - open
				if next <= 10 && closed >= int64(n*next/10) {
					p.Tenths = append(p.Tenths, float64(closed-last)/now.Sub(lastAt).Seconds())
					for next <= 10 && closed >= int64(n*next/10) {
						next++
					}
					last, lastAt = closed, now
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() progress {
		cancel()
		<-done
		return p
	}
}

// countByStatus returns how many runs query matches, and how many of them
// are open.
func countByStatus(ctx context.Context, c client.Client, query string) (total, open int64, err error) {
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query + " GROUP BY ExecutionStatus"})
	if err != nil {
		return 0, 0, err
	}
	for _, g := range resp.GetGroups() {
		total += g.GetCount()
		for _, v := range g.GetGroupValues() {
			var status string
			if converter.GetDefaultDataConverter().FromPayload(v, &status) == nil && status == "Running" {
				open += g.GetCount()
			}
		}
	}
	return total, open, nil
}

// print writes p's line for the run named what, of n workflows.
func (p progress) print(w io.Writer, what string, n int) {
	starts := "not all seen started"
	if p.StartsDone > 0 {
		starts = fmt.Sprintf("all %d started after %.0fs", n, p.StartsDone.Seconds())
	}
	fmt.Fprintf(w, "backlog: %s: %s (visibility, sampled every %s); at most %d workflows open; closed/s from one sample to the next past each tenth: %s\n",
		what, starts, progressEvery, p.MaxOpen, strings.Trim(fmt.Sprintf("%.1f", p.Tenths), "[]"))
}
