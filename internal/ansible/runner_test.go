package ansible_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/ansible"
	"github.com/tsync/tsync/internal/ansible/ansibletest"
	"github.com/tsync/tsync/internal/engine"
)

// testRoles holds the roles of these tests.
func testRoles(t *testing.T) string {
	abs, err := filepath.Abs("testdata/roles")
	require.NoError(t, err)
	return abs
}

func newRunner(t *testing.T, mutate ...func(*ansible.Options)) (*ansible.Runner, string) {
	t.Helper()
	ansibletest.RequirePlaybook(t)
	sys := ansibletest.ShortTempDir(t)
	opts := ansible.Options{SysDir: sys, RolesPath: []string{testRoles(t)}, Synchronizer: "test"}
	for _, m := range mutate {
		m(&opts)
	}
	return ansible.NewRunner(opts), sys
}

func writeJob(id int64, path, content string) ansible.Job {
	return ansible.Job{
		Model: "File", ID: id, Operation: engine.OpSync, Role: "write_file",
		Vars:   map[string]any{"path": path, "content": content},
		Target: tsync.LocalTarget,
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

// A playbook that succeeds changes the target; the sys dir holds the run's
// files, private, and its log.
func TestRunSuccessChangesTarget(t *testing.T) {
	r, sys := newRunner(t)
	out := filepath.Join(t.TempDir(), "out.txt")
	start := time.Now()
	res, err := r.Run(context.Background(), writeJob(1, out, "hello\n"))
	require.NoError(t, err)
	t.Logf("playbook run: %s (wall %s)", res.Duration, time.Since(start))
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(data))
	require.Equal(t, 0, res.ExitCode)
	require.False(t, res.Pretend)
	require.Equal(t, filepath.Join(sys, "File", "1", "sync"), res.Dir)
	require.Equal(t, 1, res.Stats["localhost"]["changed"])

	for _, d := range []string{"File", "File/1", "File/1/sync"} {
		require.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(sys, d)), d)
	}
	for _, f := range []string{"playbook.yml", "inventory.yml", "vars.yml", "ansible.cfg", "run.log", "events.jsonl"} {
		require.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(res.Dir, f)), f)
	}
	require.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(res.Dir, "run.sh")))
	log, err := os.ReadFile(filepath.Join(res.Dir, "run.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "TASK [write_file : Write the file]")
	require.Contains(t, string(log), "PLAY RECAP")
	require.Contains(t, string(log), "# tsync: exit code 0")

	// Again: nothing to change.
	res, err = r.Run(context.Background(), writeJob(1, out, "hello\n"))
	require.NoError(t, err)
	require.Equal(t, 0, res.Stats["localhost"]["changed"])

	// Delete runs the same role with state absent.
	del := writeJob(1, out, "hello\n")
	del.Operation = engine.OpDelete
	res, err = r.Run(context.Background(), del)
	require.NoError(t, err)
	require.NoFileExists(t, out)
	require.Equal(t, filepath.Join(sys, "File", "1", "delete"), res.Dir)
	require.FileExists(t, filepath.Join(sys, "File", "1", "sync", "playbook.yml"), "the sync's files stay")
}

// A failed task is a TaskError with the task's name and message, not the log.
func TestRunFailedTask(t *testing.T) {
	r, _ := newRunner(t)
	res, err := r.Run(context.Background(), ansible.Job{
		Model: "Thing", ID: 7, Operation: engine.OpSync, Role: "fail_task",
		Vars: map[string]any{"reason": "the disk is full"}, Target: tsync.LocalTarget,
	})
	var te *ansible.TaskError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 2, res.ExitCode)
	require.Equal(t, "fail_task : Refuse on purpose", te.Task)
	require.Equal(t, "localhost", te.Host)
	require.Equal(t, "refusing: the disk is full", te.Msg)
	require.Equal(t, filepath.Join(res.Dir, "run.log"), te.Log)
	require.Equal(t, fmt.Sprintf(`task "fail_task : Refuse on purpose" failed on localhost: refusing: the disk is full (ansible-playbook exit 2; log %s/run.log)`, res.Dir), err.Error())
	require.NotContains(t, err.Error(), "PLAY RECAP")
	require.NotContains(t, err.Error(), "about to fail")
}

// A failing command's stderr is part of the message.
func TestRunFailedCommandKeepsStderr(t *testing.T) {
	r, _ := newRunner(t)
	_, err := r.Run(context.Background(), ansible.Job{
		Model: "Thing", ID: 8, Operation: engine.OpSync, Role: "command_fails",
		Vars: map[string]any{"word": "x; echo injected"}, Target: tsync.LocalTarget,
	})
	var te *ansible.TaskError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "command_fails : Run a failing command", te.Task)
	require.Equal(t, "non-zero return code (rc 3): on stderr: x; echo injected", te.Msg)
}

// A role that does not exist: RunError with Ansible's ERROR! line.
func TestRunMissingRole(t *testing.T) {
	r, _ := newRunner(t)
	res, err := r.Run(context.Background(), ansible.Job{Model: "Thing", ID: 9, Operation: engine.OpSync, Role: "no_such_role", Target: tsync.LocalTarget})
	var re *ansible.RunError
	require.ErrorAs(t, err, &re)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, re.Msg, "ERROR! the role 'no_such_role' was not found")
}

// Jobs that could not be written safely are refused before anything runs.
func TestRunRefusesBadJobs(t *testing.T) {
	r, sys := newRunner(t)
	for _, job := range []ansible.Job{
		{Model: "../x", ID: 1, Operation: engine.OpSync, Role: "write_file"},
		{Model: "File", ID: 0, Operation: engine.OpSync, Role: "write_file"},
		{Model: "File", ID: 1, Operation: "purge", Role: "write_file"},
		{Model: "File", ID: 1, Operation: engine.OpSync, Role: "../../etc"},
		{Model: "File", ID: 1, Operation: engine.OpSync, Role: "write_file", Target: tsync.AnsibleTarget{Hosts: []string{"all:!x"}}},
		{Model: "File", ID: 1, Operation: engine.OpSync, Role: "write_file", Vars: map[string]any{"state": "present"}},
	} {
		_, err := r.Run(context.Background(), job)
		require.Error(t, err, "%+v", job)
	}
	entries, err := os.ReadDir(sys)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// observer_pretend: everything is written, nothing runs.
func TestPretendExecutesNothing(t *testing.T) {
	r, sys := newRunner(t, func(o *ansible.Options) { o.Pretend = true; o.Command = "/nonexistent/ansible-playbook" })
	out := filepath.Join(t.TempDir(), "out.txt")
	res, err := r.Run(context.Background(), writeJob(3, out, "pretend\n"))
	require.NoError(t, err)
	require.True(t, res.Pretend)
	require.NoFileExists(t, out)
	dir := filepath.Join(sys, "File", "3", "sync")
	for _, f := range []string{"playbook.yml", "inventory.yml", "vars.yml", "ansible.cfg", "run.sh", "run.log"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	require.NoFileExists(t, filepath.Join(dir, "events.jsonl"))
	log, err := os.ReadFile(filepath.Join(dir, "run.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "observer_pretend is set, so ansible-playbook was not run")
	require.Contains(t, string(log), dir+"/run.sh")
}

// The sys dir's run.sh, run by hand, reproduces the change: here after a
// pretend run, so the change is made by the script alone.
func TestSysDirRerunByHand(t *testing.T) {
	r, sys := newRunner(t, func(o *ansible.Options) { o.Pretend = true })
	out := filepath.Join(t.TempDir(), "out.txt")
	_, err := r.Run(context.Background(), writeJob(4, out, "by hand\n"))
	require.NoError(t, err)
	require.NoFileExists(t, out)

	// One command, from any directory.
	cmd := exec.Command(filepath.Join(sys, "File", "4", "sync", "run.sh"))
	cmd.Dir = t.TempDir()
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", output)
	require.Contains(t, string(output), "changed: [localhost]")
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "by hand\n", string(data))

	// And again after a real run that the target lost.
	r2 := ansible.NewRunner(ansible.Options{SysDir: sys, RolesPath: []string{testRoles(t)}})
	_, err = r2.Run(context.Background(), writeJob(4, out, "real run\n"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(out))
	output, err = exec.Command("sh", filepath.Join(sys, "File", "4", "sync", "run.sh")).CombinedOutput()
	require.NoError(t, err, "%s", output)
	data, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "real run\n", string(data))
}

// Object fields with shell metacharacters, quotes, newlines and Jinja reach
// the playbook as data: written verbatim, running nothing.
func TestHostileFieldsAreData(t *testing.T) {
	r, _ := newRunner(t)
	tmp := t.TempDir()
	markers := []string{filepath.Join(tmp, "m1"), filepath.Join(tmp, "m2"), filepath.Join(tmp, "m3"), filepath.Join(tmp, "m4"), filepath.Join(tmp, "m5")}
	hostile := fmt.Sprintf("{{ lookup('pipe', 'touch %s') }}\n$(touch %s) `touch %s`; touch %s && echo 'single' \"double\" \\ {%% raw %%}\n{{ q('pipe', 'touch %s') }}\ttab é ✓\n",
		markers[0], markers[1], markers[2], markers[3], markers[4])
	out := filepath.Join(tmp, "out.txt")
	job := writeJob(5, out, hostile)
	job.Vars["extra"] = map[string]any{"list": []any{hostile, 1}}
	_, err := r.Run(context.Background(), job)
	require.NoError(t, err)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, hostile, string(data))
	for _, m := range markers {
		require.NoFileExists(t, m, "a field ran a command")
	}

	// In a failure message too.
	_, err = r.Run(context.Background(), ansible.Job{
		Model: "Thing", ID: 6, Operation: engine.OpSync, Role: "fail_task",
		Vars: map[string]any{"reason": hostile}, Target: tsync.LocalTarget,
	})
	var te *ansible.TaskError
	require.ErrorAs(t, err, &te)
	require.Contains(t, te.Msg, "refusing: {{ lookup('pipe'")
	for _, m := range markers {
		require.NoFileExists(t, m, "a field ran a command")
	}
}

// Cancelling the context kills ansible-playbook and everything it started.
func TestCancelKillsEveryProcess(t *testing.T) {
	for _, how := range []string{"cancel", "timeout"} {
		t.Run(how, func(t *testing.T) {
			r, sys := newRunner(t, func(o *ansible.Options) { o.KillGrace = time.Second })
			marker := filepath.Join(t.TempDir(), "started")
			job := ansible.Job{
				Model: "Sleeper", ID: 1, Operation: engine.OpSync, Role: "sleep_forever",
				Vars: map[string]any{"marker": marker, "seconds": 300}, Target: tsync.LocalTarget,
			}
			events := "TSYNC_ANSIBLE_EVENTS=" + filepath.Join(sys, "Sleeper", "1", "sync", "events.jsonl")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if how == "timeout" {
				// Long enough for ansible-playbook to reach the sleep task on
				// a loaded machine (its start alone took over 4 s during a
				// full `make test`), so that the deadline cuts the task.
				ctx, cancel = context.WithTimeout(ctx, 12*time.Second)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { _, err := r.Run(ctx, job); done <- err }()
			require.Eventually(t, func() bool { _, err := os.Stat(marker); return err == nil }, 30*time.Second, 20*time.Millisecond)
			// The sleep task is running now (or about to).
			require.Eventually(t, func() bool {
				for _, p := range ansibletest.ProcessesWithEnv(events) {
					if strings.Contains(p, "sleep 300") {
						return true
					}
				}
				return false
			}, 20*time.Second, 20*time.Millisecond, "no sleep process")
			require.NotEmpty(t, ansibletest.ProcessesWithEnv(events))
			start := time.Now()
			if how == "cancel" {
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after the context was done")
			}
			t.Logf("Run returned %s after the context was done: %v", time.Since(start), err)
			if how == "cancel" {
				require.ErrorIs(t, err, context.Canceled)
			} else {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			}
			require.Contains(t, err.Error(), "ansible-playbook killed")
			require.Empty(t, ansibletest.ProcessesWithEnv(events), "processes left behind")
			log, _ := os.ReadFile(filepath.Join(sys, "Sleeper", "1", "sync", "run.log"))
			require.Contains(t, string(log), "# tsync: killed after")
		})
	}
}

// An unreachable host is an UnreachableError (a failure, not deferred).
func TestUnreachableHost(t *testing.T) {
	r, _ := newRunner(t, func(o *ansible.Options) {
		o.SSHArgs = []string{"-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"}
	})
	port := ansibletest.FreePort(t)
	res, err := r.Run(context.Background(), ansible.Job{
		Model: "File", ID: 1, Operation: engine.OpSync, Role: "write_file",
		Vars:   map[string]any{"path": filepath.Join(t.TempDir(), "x"), "content": "x"},
		Target: tsync.AnsibleTarget{Hosts: []string{"127.0.0.1"}, Port: port},
	})
	var ue *ansible.UnreachableError
	require.ErrorAs(t, err, &ue)
	require.False(t, tsync.IsDeferred(err))
	require.Equal(t, 4, res.ExitCode)
	require.Equal(t, "127.0.0.1", ue.Host)
	require.Contains(t, ue.Msg, "Connection refused")
	require.Contains(t, err.Error(), "host 127.0.0.1 unreachable: ")
}

// The ssh connection path, against a private sshd on 127.0.0.1.
func TestSSHConnection(t *testing.T) {
	sshd := ansibletest.StartSSHD(t)
	r, _ := newRunner(t, func(o *ansible.Options) { o.SSHArgs = sshd.SSHArgs })
	out := filepath.Join(t.TempDir(), "over-ssh.txt")
	job := writeJob(10, out, "over ssh\n")
	job.Target = tsync.AnsibleTarget{Hosts: []string{"127.0.0.1"}, Port: sshd.Port, User: sshd.User, PrivateKeyFile: sshd.Key}
	res, err := r.Run(context.Background(), job)
	require.NoError(t, err, "%v", err)
	t.Logf("playbook over ssh: %s", res.Duration)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "over ssh\n", string(data))
	require.Contains(t, sshd.Logged(), "Accepted publickey for "+sshd.User)
	require.NotContains(t, sshd.Logged(), "direct-tcpip", "no jump host was configured")
}

// observer_proxy_ssh: connections go through the jump host (here the same
// sshd, which then forwards to itself).
func TestSSHThroughJumpHost(t *testing.T) {
	sshd := ansibletest.StartSSHD(t)
	jump := fmt.Sprintf("%s@127.0.0.1:%d", sshd.User, sshd.Port)
	r, _ := newRunner(t, func(o *ansible.Options) { o.SSHArgs = sshd.SSHArgs; o.ProxySSH = jump })
	out := filepath.Join(t.TempDir(), "via-jump.txt")
	job := writeJob(11, out, "via the jump host\n")
	job.Target = tsync.AnsibleTarget{Hosts: []string{"127.0.0.1"}, Port: sshd.Port, User: sshd.User, PrivateKeyFile: sshd.Key}
	_, err := r.Run(context.Background(), job)
	require.NoError(t, err)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "via the jump host\n", string(data))
	// The jump host was asked to open the connection to the target.
	require.Contains(t, sshd.Logged(), fmt.Sprintf("target 127.0.0.1 port %d", sshd.Port))

	// A jump host that does not answer makes the target unreachable.
	dead := ansible.NewRunner(ansible.Options{
		SysDir: ansibletest.ShortTempDir(t), RolesPath: []string{testRoles(t)}, SSHArgs: sshd.SSHArgs,
		ProxySSH: fmt.Sprintf("127.0.0.1:%d", ansibletest.FreePort(t)),
	})
	_, err = dead.Run(context.Background(), job)
	var ue *ansible.UnreachableError
	require.ErrorAs(t, err, &ue, "%v", err)
}

// A bad observer_proxy_ssh fails every run with a clear error.
func TestBadProxy(t *testing.T) {
	r := ansible.NewRunner(ansible.Options{SysDir: t.TempDir(), ProxySSH: "a b@host"})
	_, err := r.Run(context.Background(), writeJob(1, "/tmp/x", "x"))
	require.EqualError(t, err, `invalid observer_proxy_ssh "a b@host", want [user@]host[:port]`)
	require.False(t, errors.Is(err, context.Canceled))
}
