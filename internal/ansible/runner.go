package ansible

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/playbooks"
)

// Options configure a Runner. The zero value is usable: sys dir var/sys,
// ansible-playbook from PATH, no jump host, executing.
type Options struct {
	// SysDir is observer_sys_dir, where every run's files are written;
	// "" means var/sys. Relative paths are taken from the working directory
	// when the runner is made.
	SysDir string
	// Pretend (observer_pretend) writes everything and executes nothing.
	Pretend bool
	// ProxySSH (observer_proxy_ssh) is a jump host "[user@]host[:port]"
	// every ssh connection goes through; "" for none.
	ProxySSH string
	// RolesPath lists directories searched for roles before the roles
	// shipped with tsync (observer_steps_dir).
	RolesPath []string
	// SSHArgs are extra ssh arguments for every connection and for the jump
	// host, e.g. "-o", "UserKnownHostsFile=/etc/tsync/known_hosts".
	SSHArgs []string
	// Command is the ansible-playbook to run; "" means "ansible-playbook"
	// from PATH.
	Command string
	// Synchronizer is observer_name, given to playbooks as tsync.synchronizer.
	Synchronizer string
	// KillGrace is how long a cancelled run has between SIGTERM and SIGKILL;
	// 0 means 2s.
	KillGrace time.Duration
	// Logger receives a line per run; nil discards.
	Logger *slog.Logger
}

// FromConfig returns the Options that cfg sets: observer_sys_dir,
// observer_pretend, observer_proxy_ssh, observer_steps_dir (searched for
// roles) and observer_name.
func FromConfig(cfg config.Config, log *slog.Logger) Options {
	o := Options{
		SysDir:       cfg.ObserverSysDir,
		Pretend:      cfg.ObserverPretend,
		ProxySSH:     cfg.ObserverProxySSH,
		Synchronizer: cfg.ObserverName,
		Logger:       log,
	}
	if cfg.ObserverStepsDir != "" {
		o.RolesPath = []string{cfg.ObserverStepsDir}
	}
	return o
}

// Job is one run: an operation on one object with a step's role.
type Job struct {
	// Model and ID name the object.
	Model string
	ID    int64
	// Operation is engine.OpSync (the playbook makes the backend match
	// the object: state present) or engine.OpDelete (it removes it: state
	// absent). It names the run's directory.
	Operation engine.Op
	// Role is the step's TemplateName.
	Role string
	// Vars are the step's ExtraAttributes.
	Vars map[string]any
	// Target says where the playbook runs.
	Target tsync.AnsibleTarget
}

// Result is what a run did.
type Result struct {
	// Dir is the run's directory in the sys dir, as configured (maybe
	// relative).
	Dir string
	// Pretend reports that nothing was executed (observer_pretend).
	Pretend bool
	// ExitCode is ansible-playbook's exit code.
	ExitCode int
	// Duration is how long ansible-playbook ran.
	Duration time.Duration
	// Stats is the recap: per host, ok, changed, failures, unreachable, ...
	Stats map[string]map[string]int
}

// Runner runs the playbooks of Ansible steps. It is safe for concurrent use;
// runs of different objects or operations do not share files.
type Runner struct {
	opts      Options
	sysDir    string // absolute
	rolesPath []string
	command   string
	jump      *jump
	jumpErr   error

	mu       sync.Mutex
	unpacked bool
}

// NewRunner returns a runner with opts. A bad ProxySSH makes every run fail
// with an error saying so.
func NewRunner(opts Options) *Runner {
	r := &Runner{opts: opts, command: opts.Command}
	if r.opts.SysDir == "" {
		r.opts.SysDir = "var/sys"
	}
	if abs, err := filepath.Abs(r.opts.SysDir); err == nil {
		r.sysDir = abs
	} else {
		r.sysDir = r.opts.SysDir
	}
	for _, d := range opts.RolesPath {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		r.rolesPath = append(r.rolesPath, d)
	}
	if r.command == "" {
		r.command = "ansible-playbook"
	}
	if r.opts.KillGrace <= 0 {
		r.opts.KillGrace = 2 * time.Second
	}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.New(slog.DiscardHandler)
	}
	r.jump, r.jumpErr = parseJump(opts.ProxySSH)
	return r
}

// Options returns the runner's options, defaults filled in.
func (r *Runner) Options() Options { return r.opts }

// Dir returns the directory of job's object and operation in the sys dir, as
// configured (maybe relative).
func (r *Runner) Dir(job Job) string {
	return filepath.Join(r.opts.SysDir, job.Model, strconv.FormatInt(job.ID, 10), string(job.Operation))
}

func (r *Runner) absDir(job Job) string {
	return filepath.Join(r.sysDir, job.Model, strconv.FormatInt(job.ID, 10), string(job.Operation))
}

// sharedDir is a directory of <sys>/_ansible (model names start with a
// letter, so no object's directory is there).
func (r *Runner) sharedDir(name string) string { return filepath.Join(r.sysDir, "_ansible", name) }

// Run renders job's playbook into the sys dir and runs it, unless Pretend.
// It returns nil when ansible-playbook succeeded (or was not run), a
// *TaskError, *UnreachableError or *RunError when it failed, and ctx's error
// when ctx was done first (the playbook's processes are killed by then).
func (r *Runner) Run(ctx context.Context, job Job) (*Result, error) {
	if r.jumpErr != nil {
		return nil, r.jumpErr
	}
	if !models.ValidName(job.Model) || job.ID <= 0 {
		return nil, fmt.Errorf("ansible: invalid object %s %d", job.Model, job.ID)
	}
	state := "present"
	switch job.Operation {
	case engine.OpSync:
	case engine.OpDelete:
		state = "absent"
	default:
		return nil, fmt.Errorf("ansible: invalid operation %q", job.Operation)
	}
	if !roleName.MatchString(job.Role) {
		return nil, fmt.Errorf("ansible: %s %d: invalid role name (TemplateName) %q", job.Model, job.ID, job.Role)
	}
	t, err := checkTarget(job.Target)
	if err != nil {
		return nil, fmt.Errorf("ansible: %s %d: target: %w", job.Model, job.ID, err)
	}
	vars, err := normalizeVars(job.Vars, state, map[string]any{
		"model": job.Model, "id": job.ID, "operation": string(job.Operation), "synchronizer": r.opts.Synchronizer,
	})
	if err != nil {
		return nil, fmt.Errorf("ansible: %s %d: %w", job.Model, job.ID, err)
	}
	f, err := r.render(job, t, vars)
	if err != nil {
		return nil, fmt.Errorf("ansible: %s %d: render: %w", job.Model, job.ID, err)
	}
	if err := r.unpack(); err != nil {
		return nil, err
	}
	dir := r.absDir(job)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ansible: sys dir: %w", err)
	}
	for _, w := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"playbook.yml", f.playbook, 0o600},
		{"inventory.yml", f.inventory, 0o600},
		{"vars.yml", f.vars, 0o600},
		{"ansible.cfg", f.config, 0o600},
		{"run.sh", f.script, 0o700},
	} {
		if err := writeFile(filepath.Join(dir, w.name), w.data, w.mode); err != nil {
			return nil, fmt.Errorf("ansible: sys dir: %w", err)
		}
	}
	res := &Result{Dir: r.Dir(job), Pretend: r.opts.Pretend}
	logPath := filepath.Join(dir, "run.log")
	if r.opts.Pretend {
		_ = os.Remove(filepath.Join(dir, "events.jsonl"))
		note := fmt.Sprintf("# tsync %s: %s %d %s, role %s: observer_pretend is set, so ansible-playbook was not run.\n# Run it by hand: %s\n",
			time.Now().UTC().Format(time.RFC3339), job.Model, job.ID, job.Operation, job.Role, shellQuote(dir+"/run.sh"))
		if err := writeFile(logPath, []byte(note), 0o600); err != nil {
			return nil, fmt.Errorf("ansible: sys dir: %w", err)
		}
		r.opts.Logger.Info("ansible: pretend, not run", "object", fmt.Sprintf("%s/%d", job.Model, job.ID), "operation", job.Operation, "dir", res.Dir)
		return res, nil
	}
	return res, r.execute(ctx, job, dir, res)
}

// execute runs ansible-playbook in dir and fills res.
func (r *Runner) execute(ctx context.Context, job Job, dir string, res *Result) error {
	bin, err := exec.LookPath(r.command)
	if err != nil {
		return fmt.Errorf("ansible: %s not found: install ansible-core (scripts/ensure-tools.sh, run by `make tools`): %w", r.command, err)
	}
	// The callback appends to it; a new, private file for each run.
	eventsPath := filepath.Join(dir, "events.jsonl")
	if err := writeFile(eventsPath, nil, 0o600); err != nil {
		return fmt.Errorf("ansible: sys dir: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "run.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("ansible: sys dir: %w", err)
	}
	defer logFile.Close()
	start := time.Now()
	fmt.Fprintf(logFile, "# tsync %s: %s %d %s, role %s: %s %s\n", start.UTC().Format(time.RFC3339), job.Model, job.ID, job.Operation,
		job.Role, r.command, strings.Join(playbookArgs, " "))

	cmd := exec.Command(bin, playbookArgs...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_CALLBACK_PLUGINS="+r.sharedDir("callback_plugins"),
		"ANSIBLE_CALLBACKS_ENABLED="+enabledCallbacks(os.Getenv("ANSIBLE_CALLBACKS_ENABLED")),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"PYTHONUNBUFFERED=1",
		"TSYNC_ANSIBLE_EVENTS="+eventsPath,
	)
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ansible: start %s: %w", r.command, err)
	}
	pgid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var waitErr error
	select {
	case waitErr = <-waited:
		// Whatever the playbook left in its group goes with it.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(r.opts.KillGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			// SIGKILL ends it at once, unless it is stuck in the kernel.
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
			}
		}
		// Its forks and modules may outlive it: the group goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !groupGone(context.WithoutCancel(ctx), pgid, 10*time.Second) {
			r.opts.Logger.Warn("ansible: processes of the killed playbook still run after 10s", "object", fmt.Sprintf("%s/%d", job.Model, job.ID), "pgid", pgid)
		}
		res.Duration = time.Since(start)
		fmt.Fprintf(logFile, "\n# tsync: killed after %s: %v\n", res.Duration.Round(time.Millisecond), context.Cause(ctx))
		r.opts.Logger.Warn("ansible: killed", "object", fmt.Sprintf("%s/%d", job.Model, job.ID), "operation", job.Operation,
			"dir", res.Dir, "after", res.Duration, "cause", context.Cause(ctx))
		return fmt.Errorf("ansible-playbook killed after %s: %w (log %s)", res.Duration.Round(time.Millisecond), ctx.Err(), filepath.Join(res.Dir, "run.log"))
	}
	res.Duration = time.Since(start)
	res.ExitCode = cmd.ProcessState.ExitCode()
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return fmt.Errorf("ansible: %s: %w", r.command, waitErr)
	}
	fmt.Fprintf(logFile, "\n# tsync: exit code %d after %s\n", res.ExitCode, res.Duration.Round(time.Millisecond))
	events, evErr := readEvents(eventsPath)
	res.Stats = events.stats
	r.opts.Logger.Info("ansible: ran", "object", fmt.Sprintf("%s/%d", job.Model, job.ID), "operation", job.Operation,
		"dir", res.Dir, "exit_code", res.ExitCode, "duration", res.Duration)
	if res.ExitCode == 0 {
		return nil
	}
	logRel := filepath.Join(res.Dir, "run.log")
	if evErr == nil {
		if err := events.failure(res.ExitCode, logRel); err != nil {
			return err
		}
	}
	return &RunError{ExitCode: res.ExitCode, Msg: errorLine(filepath.Join(dir, "run.log")), Log: logRel}
}

// enabledCallbacks adds tsync_events to an ANSIBLE_CALLBACKS_ENABLED value.
func enabledCallbacks(current string) string {
	if current == "" {
		return "tsync_events"
	}
	return current + ",tsync_events"
}

// unpack writes the roles and callback plugins shipped with tsync to
// <sys>/_ansible, once per runner (again after a failure).
func (r *Runner) unpack() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unpacked {
		return nil
	}
	base := filepath.Join(r.sysDir, "_ansible")
	err := fs.WalkDir(playbooks.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(base, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := fs.ReadFile(playbooks.FS, p)
		if err != nil {
			return err
		}
		return writeFile(target, data, 0o600)
	})
	if err != nil {
		return fmt.Errorf("ansible: writing the shipped roles to %s: %w", base, err)
	}
	r.unpacked = true
	return nil
}

// writeFile writes data to name atomically, with mode.
func writeFile(name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// errorLine finds Ansible's "ERROR! ..." line in a log, else its last line.
func errorLine(logPath string) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	last := ""
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "ERROR!") {
			return clip(line, maxMsg)
		}
		if line != "" && !strings.HasPrefix(line, "# tsync") {
			last = line
		}
	}
	return clip(last, maxMsg)
}
