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
