package syncstate

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tsync/tsync/internal/text"
	"github.com/tsync/tsync/models"
)

// MaxStatusLen is the longest backend_status kept, in characters, as in XOS.
const MaxStatusLen = 1024

// errorSep joins the errors a status keeps (CombineErrors).
const errorSep = " // "

// LastError returns the latest error of a status that CombineErrors made.
func LastError(status string) string {
	if i := strings.LastIndex(status, errorSep); i >= 0 {
		return status[i+len(errorSep):]
	}
	return status
}

// FailedDueTo returns the status of an object held behind dependency ref,
// whose step failed with error text msg: "Failed due to error in model M id
// N: msg", as in XOS.
func FailedDueTo(ref models.Ref, msg string) string {
	return fmt.Sprintf("Failed due to error in %s: %s", ref, msg)
}

// CombineErrors returns the status that follows previous when text is
// recorded: the last two distinct errors joined by " // ", at most
// MaxStatusLen characters.
//
// The text is made valid and cut first, as it will be stored, so that an
// error seen again is recognised; and the latest error is always kept whole
// (up to MaxStatusLen), the older one giving way when both do not fit.
func CombineErrors(previous, text string) string {
	text = StatusText(text)
	var list []string
	if previous != "" {
		list = strings.Split(previous, errorSep)
	}
	if !slices.Contains(list, text) {
		list = append(list, text)
	} else {
		// Seen again: it becomes the latest.
		list = append(slices.DeleteFunc(list, func(e string) bool { return e == text }), text)
	}
	if len(list) > 2 {
		list = list[len(list)-2:]
	}
	if len(list) == 2 {
		room := MaxStatusLen - utf8.RuneCountInString(text) - len(errorSep)
		if older := []rune(list[0]); len(older) > room {
			if room < 2 {
				return text
			}
			list[0] = string(older[:room-1]) + "…"
		}
	}
	return StatusText(strings.Join(list, errorSep))
}

// StatusText returns s as a status can hold it, in backend_status and in
// a Temporal failure message or memo: invalid UTF-8 and NUL bytes replaced
// by U+FFFD, and cut to MaxStatusLen characters (the last one an ellipsis).
func StatusText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	return text.Cut(s, MaxStatusLen)
}
