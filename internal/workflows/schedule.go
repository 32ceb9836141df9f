package workflows

import (
	"math"
	"strings"
	"time"
)

// Schedule returns the delays before the first n retries of a failing step
// (the pauses between its attempts 1 and 2, 2 and 3, and so on), as the
// workflow applies them (see runStep): Initial, then multiplied by
// Coefficient at each retry (when above 1), capped at Max (or Initial,
// when larger), computed as the Temporal server computes an activity's
// retry interval. A failing step is retried forever: past the schedule
// shown, the delays keep growing to the cap and stay there. A deferred step
// is not retried by this schedule but tried again after the loop interval.
func (p RetryParams) Schedule(n int) []time.Duration {
	if n <= 0 {
		return nil
	}
	limit := max(p.Max, p.Initial)
	out := make([]time.Duration, 0, n)
	out = append(out, p.Initial)
	if p.Coefficient <= 1 {
		for len(out) < n {
			out = append(out, p.Initial)
		}
		return out
	}
	// The retries' own activity starts one backoff step later.
	next := min(time.Duration(float64(p.Initial)*p.Coefficient), limit)
	for k := 0; len(out) < n; k++ {
		// The server: initial * coefficient^(attempt-1), capped.
		f := float64(next.Nanoseconds()) * math.Pow(p.Coefficient, float64(k))
		d := limit
		if f < float64(limit) {
			d = time.Duration(int64(f))
		}
		if d <= 0 {
			d = limit
		}
		out = append(out, d)
	}
	return out
}

// scheduleShown bounds the delays Describe lists before the cap.
const scheduleShown = 8

// Describe says in a line when a failing step is retried: "every 1s,
// forever" when the delay is constant (observer_backoff_disabled, or a
// coefficient of 1), else the growing delays and the cap, as in "after
// 1s, 2s, 4s, 8s, 16s, 32s, then every 1m, forever".
func (p RetryParams) Describe() string {
	limit := max(p.Max, p.Initial)
	s := p.Schedule(scheduleShown + 1)
	if s[0] == s[len(s)-1] {
		return "every " + short(s[0]) + ", forever"
	}
	var parts []string
	for _, d := range s[:scheduleShown] {
		if d == limit {
			parts = append(parts, "then every "+short(limit))
			return "after " + strings.Join(parts, ", ") + ", forever"
		}
		parts = append(parts, short(d))
	}
	return "after " + strings.Join(parts, ", ") + ", ... up to every " + short(limit) + ", forever"
}

// short is d as time.Duration.String writes it, without its zero minutes
// and seconds: "1m" for "1m0s", "2h" for "2h0m0s", "1h30m" for "1h30m0s".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// delay is the pause after a failing step's attempt (1, 2, ...) before the
// next: Schedule(attempt)[attempt-1], without the slice.
func (p RetryParams) delay(attempt int) time.Duration {
	limit := max(p.Max, p.Initial)
	if attempt <= 1 || p.Coefficient <= 1 {
		return p.Initial
	}
	next := min(time.Duration(float64(p.Initial)*p.Coefficient), limit)
	f := float64(next.Nanoseconds()) * math.Pow(p.Coefficient, float64(attempt-2))
	if f < float64(limit) && int64(f) > 0 {
		return time.Duration(int64(f))
	}
	return limit
}
