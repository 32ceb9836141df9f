// Package logging builds tsync's structured logger (log/slog): text or JSON
// to stderr or observer_log_file, and, with observer_logstash_hostport, JSON
// lines streamed over TCP to logstash, reconnecting when the far end goes
// away and comes back.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Options configure New.
type Options struct {
	// Level is the least level logged.
	Level slog.Level
	// Format is "text" (default) or "json", for Stderr or File.
	Format string
	// Stderr receives the logs when File is empty.
	Stderr io.Writer
	// File, when set, receives the logs instead of Stderr (appended).
	File string
	// Logstash, when set, is a "host:port" that also receives every record
	// as a JSON line.
	Logstash string
}

// ParseLevel parses "debug", "info", "warn" or "error".
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
}

// New returns the logger and a Closer that flushes and closes what it
// opened.
func New(opts Options) (*slog.Logger, io.Closer, error) {
	var closers multiCloser
	out := opts.Stderr
	if out == nil {
		out = os.Stderr
	}
	if opts.File != "" {
		if err := os.MkdirAll(filepath.Dir(opts.File), 0o755); err != nil {
			return nil, nil, fmt.Errorf("observer_log_file: %w", err)
		}
		f, err := os.OpenFile(opts.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("observer_log_file: %w", err)
		}
		closers = append(closers, f)
		out = f
	}
	ho := &slog.HandlerOptions{Level: opts.Level}
	var h slog.Handler
	switch opts.Format {
	case "", "text":
		h = slog.NewTextHandler(out, ho)
	case "json":
		h = slog.NewJSONHandler(out, ho)
	default:
		closers.Close() //nolint:errcheck
		return nil, nil, fmt.Errorf("log format %q is not one of text, json", opts.Format)
	}
	if opts.Logstash != "" {
		ls := NewLogstash(opts.Logstash, 0)
		closers = append(closers, ls)
		h = slog.NewMultiHandler(h, slog.NewJSONHandler(ls, ho))
	}
	return slog.New(h), closers, nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for i := len(m) - 1; i >= 0; i-- {
		errs = append(errs, m[i].Close())
	}
	return errors.Join(errs...)
}
