package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Rounds: the raw baseline and tsync's runs alternate, each tsync run
// between two raw runs, and its ratio is taken against the mean rate of
// those two. The dev server keeps every run's histories in memory, so a
// later run on it is slower than an earlier one of the same work; a
// baseline measured once, first, would charge that drift (and any passing
// load of the machine) to tsync alone.

// roundsPlan is what the rounds run: the tsync kinds ("independent",
// "dag") in each round, and the sizes.
type roundsPlan struct {
	rounds    int
	kinds     []string
	n         int
	dag       dagShape
	cpuPrefix string
}

// profile writes a CPU profile of run name (see profile); none for "".
func (p roundsPlan) profile(name string) (stop func(), err error) {
	if name == "" {
		return func() {}, nil
	}
	return profile(p.cpuPrefix, name)
}

// dagShape is the graph of the dag run.
type dagShape struct{ sites, networks, slices, instances int }

// count is the number of objects of the graph.
func (d dagShape) count() int { return d.sites * d.count1() }

// count1 is the number of objects of one site's part of the graph.
func (d dagShape) count1() int { return 1 + d.networks + d.slices + d.slices*d.instances }

// Rounds is what the rounds measured, each list in the order of the runs.
type Rounds struct {
	// WarmUpRate is the workflows/s of the first raw run, on a fresh dev
	// server, which is not compared with anything (see rounds).
	WarmUpRate float64 `json:"warm_up_rate"`
	// BaselineRates are the raw runs' workflows/s: one before the first
	// tsync run and one after each.
	BaselineRates []float64 `json:"baseline_rates"`
	// IndependentRates and IndependentRatios: objects/s of each
	// independent run, and its ratio to the mean of the raw runs around it.
	IndependentRates  []float64 `json:"independent_rates,omitempty"`
	IndependentRatios []float64 `json:"independent_ratios,omitempty"`
	// DAGSeconds and DAGRatios: the wall time of each dag run, and its
	// ratio to N / the mean rate of the raw runs around it.
	DAGSeconds []float64 `json:"dag_wall_s,omitempty"`
	DAGRatios  []float64 `json:"dag_ratios,omitempty"`
}

// rounds runs the plan's rounds into r: the figures of each run, the
// medians in r's single-figure fields, and the CPU time per object of each
// side, averaged over the runs of each kind.
func (b *bench) rounds(ctx context.Context, p roundsPlan, r *Result) error {
	cpu := map[string][]CPUPerObject{}
	// The first raw run, on a fresh server, is a warm-up: it also counts
	// the raw workflow's cost, and its rate is printed but compared with
	// nothing. A fresh in-memory server runs its first workflows faster
	// than any later ones (its tables are empty, and no earlier run's
	// timers fire meanwhile): the same raw run twice in a row gave 58.6
	// and 49.5 workflows/s, so a first round measured against it would
	// read about 0.9 for a tsync run as fast as raw.
	warmUp, cost, err := b.baseline(ctx, p.n, true)
	if err != nil {
		return err
	}
	r.Rounds.WarmUpRate, r.BaselineCost = warmUp, cost
	fmt.Fprintf(b.out, "warm-up: raw %.1f/s on the fresh server (not compared)\n", warmUp)
	raw := func(first bool) (float64, error) {
		name := ""
		if first {
			name = "baseline"
		}
		stop, err := p.profile(name)
		if err != nil {
			return 0, err
		}
		defer stop()
		before := readCPU()
		rate, _, err := b.baseline(ctx, p.n, false)
		if err != nil {
			return 0, err
		}
		cpu["raw"] = append(cpu["raw"], cpuSince(before, p.n))
		r.Rounds.BaselineRates = append(r.Rounds.BaselineRates, rate)
		return rate, nil
	}
	rateBefore, err := raw(true)
	if err != nil {
		return err
	}
	for round := range p.rounds {
		line := []string{fmt.Sprintf("raw %.1f/s", rateBefore)}
		for _, kind := range p.kinds {
			before := readCPU()
			var rate, seconds float64
			var objects int
			switch kind {
			case "independent":
				name := ""
				if round == 0 {
					name = "independent"
				}
				stop, err := p.profile(name)
				if err != nil {
					return err
				}
				rate, err = b.independent(ctx, p.n)
				stop()
				if err != nil {
					return err
				}
				objects = p.n
			case "dag":
				objects = p.dag.count()
				_, wall, err := b.dag(ctx, p.dag.sites, p.dag.networks, p.dag.slices, p.dag.instances)
				if err != nil {
					return err
				}
				seconds = wall.Seconds()
			}
			cpu[kind] = append(cpu[kind], cpuSince(before, objects))
			rateAfter, err := raw(false)
			if err != nil {
				return err
			}
			around := (rateBefore + rateAfter) / 2
			switch kind {
			case "independent":
				ratio := rate / around
				r.Rounds.IndependentRates = append(r.Rounds.IndependentRates, rate)
				r.Rounds.IndependentRatios = append(r.Rounds.IndependentRatios, ratio)
				line = append(line, fmt.Sprintf("independent %.1f/s (ratio %.2f)", rate, ratio))
			case "dag":
				ratio := seconds / (float64(objects) / around)
				r.Rounds.DAGSeconds = append(r.Rounds.DAGSeconds, seconds)
				r.Rounds.DAGRatios = append(r.Rounds.DAGRatios, ratio)
				line = append(line, fmt.Sprintf("dag %.2fs (ratio %.2f)", seconds, ratio))
			}
			line = append(line, fmt.Sprintf("raw %.1f/s", rateAfter))
			rateBefore = rateAfter
		}
		fmt.Fprintf(b.out, "round %d/%d: %s\n", round+1, p.rounds, strings.Join(line, ", "))
	}

	r.BaselineN = p.n
	r.BaselineRate = median(r.Rounds.BaselineRates)
	with := ""
	if b.rawAttributes {
		with = " and tsync's search attributes"
	}
	if b.rawEager {
		with += ", started eagerly"
	}
	fmt.Fprintf(b.out, "baseline: %d workflows with one no-op activity%s: %.1f workflows/s (median of %d runs)\n", p.n, with, r.BaselineRate, len(r.Rounds.BaselineRates))
	if len(r.Rounds.IndependentRatios) > 0 {
		r.IndependentN = p.n
		r.IndependentRate = median(r.Rounds.IndependentRates)
		r.IndependentRatio = median(r.Rounds.IndependentRatios)
		fmt.Fprintf(b.out, "independent: %d objects with a no-op step: %.1f objects/s (median)\n", p.n, r.IndependentRate)
		fmt.Fprintf(b.out, "independent ratio: %.2f (median of %s; each against the raw runs before and after it)\n", r.IndependentRatio, figures(r.Rounds.IndependentRatios))
	}
	if len(r.Rounds.DAGRatios) > 0 {
		d := p.dag
		r.DAGN = d.count()
		r.DAGSeconds = median(r.Rounds.DAGSeconds)
		r.DAGIdealSeconds = float64(r.DAGN) / r.BaselineRate
		r.DAGRatio = median(r.Rounds.DAGRatios)
		fmt.Fprintf(b.out, "dag: %d objects (%d sites x (%d networks + %d slices x %d instances)): all in sync after %.2fs (median)\n",
			r.DAGN, d.sites, d.networks, d.slices, d.instances, r.DAGSeconds)
		fmt.Fprintf(b.out, "dag ratio: %.2f (median of %s; each against N / the rate of the raw runs before and after it)\n", r.DAGRatio, figures(r.Rounds.DAGRatios))
	}
	for kind, runs := range cpu {
		var sum CPUPerObject
		for _, c := range runs {
			sum.Bench += c.Bench
			sum.Temporal += c.Temporal
			sum.Postgres += c.Postgres
		}
		k := float64(len(runs))
		r.CPU[kind] = CPUPerObject{Bench: sum.Bench / k, Temporal: sum.Temporal / k, Postgres: sum.Postgres / k}
	}
	return nil
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// figures formats xs with two decimals, comma-separated.
func figures(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}
