package ansible

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/tsync/tsync/internal/text"
)

// maxMsg bounds the Ansible message kept in an error (backend_status holds
// at most 1024 characters, two errors included).
const maxMsg = 400

// TaskError is a task that failed: ansible-playbook's exit code 2.
type TaskError struct {
	// Task is the task's name as Ansible shows it ("role : name").
	Task string
	// Host is the host it failed on.
	Host string
	// Msg is Ansible's message, with the command's stderr when there is one.
	Msg string
	// More is the number of other failures (other hosts or tasks).
	More int
	// ExitCode is ansible-playbook's exit code.
	ExitCode int
	// Log is the run.log of the run.
	Log string
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task %q failed on %s: %s%s (ansible-playbook exit %d; log %s)", e.Task, e.Host, e.Msg, more(e.More), e.ExitCode, e.Log)
}

// UnreachableError is a host ansible-playbook could not reach (exit code 4).
// It is a failure like any other; see the package documentation.
type UnreachableError struct {
	// Host is the host, Task the task that tried to reach it.
	Host, Task string
	// Msg is Ansible's message (ssh's error).
	Msg string
	// More is the number of other failures.
	More int
	// ExitCode is ansible-playbook's exit code.
	ExitCode int
	// Log is the run.log of the run.
	Log string
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("host %s unreachable: %s%s (ansible-playbook exit %d; log %s)", e.Host, e.Msg, more(e.More), e.ExitCode, e.Log)
}

// RunError is a run that failed without a failed task or an unreachable
// host: a syntax error, a role that does not exist, bad options.
type RunError struct {
	ExitCode int
	// Msg is Ansible's "ERROR! ..." line, or the log's last line.
	Msg string
	// Log is the run.log of the run.
	Log string
}

func (e *RunError) Error() string {
	return fmt.Sprintf("ansible-playbook exited with code %d: %s (log %s)", e.ExitCode, e.Msg, e.Log)
}

func more(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d more)", n)
}

// event is one line the tsync_events callback writes.
type event struct {
	Event        string                    `json:"event"`
	Host         string                    `json:"host"`
	Task         string                    `json:"task"`
	Msg          string                    `json:"msg"`
	Stderr       string                    `json:"stderr"`
	Stdout       string                    `json:"stdout"`
	RC           *int                      `json:"rc"`
	IgnoreErrors bool                      `json:"ignore_errors"`
	Hosts        map[string]map[string]int `json:"hosts"`
}

// events is what a run's events.jsonl says.
type events struct {
	failures []event // failed (not ignored) and unreachable, in order
	stats    map[string]map[string]int
}

func readEvents(name string) (events, error) {
	var out events
	f, err := os.Open(name)
	if err != nil {
		return out, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch {
		case e.Event == "failed" && !e.IgnoreErrors, e.Event == "unreachable":
			out.failures = append(out.failures, e)
		case e.Event == "stats":
			out.stats = e.Hosts
		}
	}
	return out, sc.Err()
}

// failure returns the error for the first failure, or nil if there was none.
func (ev events) failure(exitCode int, log string) error {
	if len(ev.failures) == 0 {
		return nil
	}
	e := ev.failures[0]
	if e.Event == "unreachable" {
		return &UnreachableError{Host: e.Host, Task: e.Task, Msg: message(e), More: len(ev.failures) - 1, ExitCode: exitCode, Log: log}
	}
	return &TaskError{Task: e.Task, Host: e.Host, Msg: message(e), More: len(ev.failures) - 1, ExitCode: exitCode, Log: log}
}

// message is a failure's message on one line: msg, the return code and
// stderr when the task ran a command.
func message(e event) string {
	msg := oneLine(e.Msg)
	if e.RC != nil && *e.RC != 0 {
		msg += fmt.Sprintf(" (rc %d)", *e.RC)
	}
	if stderr := oneLine(e.Stderr); stderr != "" && !strings.Contains(msg, stderr) {
		if msg != "" {
			msg += ": "
		}
		msg += stderr
	}
	if msg == "" {
		msg = oneLine(e.Stdout)
	}
	if msg == "" {
		msg = "no message"
	}
	return clip(msg, maxMsg)
}

// oneLine joins the non-empty lines of s with " / ".
func oneLine(s string) string { return text.OneLine(s, " / ") }

// clip cuts s to at most n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
