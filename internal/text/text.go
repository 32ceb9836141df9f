// Package text holds tsync's small helpers for the text of messages and
// statuses: making a multi-line message one line, and cutting a text to a
// length. Every part of tsync that does either uses them.
package text

import (
	"strings"
	"unicode/utf8"
)

// OneLine returns s on one line: its lines, trimmed of surrounding white
// space, the empty ones dropped, joined with sep.
func OneLine(s, sep string) string {
	var lines []string
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, sep)
}

// Squeeze returns s on one line with every run of white space, line breaks
// included, made one space, and none at either end.
func Squeeze(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Cut returns s cut to at most n characters (n > 0), the last one an
// ellipsis when cut.
func Cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// EditDistance is the Levenshtein distance between a and b, in bytes: what
// the "did you mean" hints of config keys, environment variables and model
// names measure.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
