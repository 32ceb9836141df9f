package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/ansible/ansibletest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Models of the Ansible tests: a Conf, synced by a playbook, and a Consumer
// that depends on it, synced by Go code.
type (
	Conf struct {
		models.Base
		Path    string `db:"path"`
		Content string `db:"content"`
		Reason  string `db:"reason"`
		Marker  string `db:"marker"`
		// SSHPort, when set, makes the playbook run over ssh on
		// 127.0.0.1:SSHPort instead of locally.
		SSHPort int64 `db:"ssh_port"`
	}
	Consumer struct {
		models.Base
		Name   string `db:"name"`
		ConfID int64  `db:"conf_id"`
	}
)

// ansibleEnv is a synchronizer whose Conf step runs role (a role of
// ansible/testdata/roles) with the real ansible-playbook, through the sync
// and delete workflows on the real Temporal and PostgreSQL.
type ansibleEnv struct{ *env }

func newAnsibleEnv(t *testing.T, role string, mutate ...func(*config.Config)) *ansibleEnv {
	t.Helper()
	ansibletest.RequirePlaybook(t)
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	cfg.ObserverSysDir = ansibletest.ShortTempDir(t)
	roles, err := filepath.Abs("../internal/ansible/testdata/roles")
	require.NoError(t, err)
	cfg.ObserverStepsDir = roles
	for _, m := range mutate {
		m(&cfg)
	}
	reg := models.NewRegistry()
	models.MustRegister[Conf](reg, "Conf")
	models.MustRegister[Consumer](reg, "Consumer", models.Link{Dest: "Conf", Via: "conf_id"})
	sync := tsync.Synchronizer{Models: reg, AnsibleSteps: []tsync.AnsibleStep{
		tsync.AnsibleStepOf[Conf](tsync.AnsibleStepFuncs[Conf]{
			Template: role,
			Attributes: func(_ context.Context, c *Conf) (map[string]any, error) {
				return map[string]any{"path": c.Path, "content": c.Content, "reason": c.Reason, "marker": c.Marker, "seconds": 300}, nil
			},
			Target: func(_ context.Context, c *Conf) (tsync.AnsibleTarget, error) {
				if c.SSHPort == 0 {
					return tsync.LocalTarget, nil
				}
				return tsync.AnsibleTarget{Hosts: []string{"127.0.0.1"}, Port: int(c.SSHPort)}, nil
			},
		}),
	}, Steps: []tsync.Step{tsync.StepOf[Consumer](tsync.StepFuncs[Consumer]{})}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})) // the SDK logs step errors at Error
	e := &ansibleEnv{openEnv(t, cfg, sync, log)}
	e.startWorker()
	return e
}

func (e *ansibleEnv) waitFor(ref models.Ref, what string, cond func(*models.Base) bool) *models.Base {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b := e.get(ref)
		if cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never %s: code %d, status %q", ref, what, b.BackendCode, b.BackendStatus)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *ansibleEnv) sysDir(ref models.Ref, op string) string {
	return filepath.Join(e.cfg.ObserverSysDir, ref.Model, fmt.Sprint(ref.ID), op)
}

// An Ansible step end to end: the workflow runs the playbook, which changes
// the target; an update runs it again; a delete runs it with state absent
// and purges the row. The sys dir keeps each operation's files.
func TestAnsibleStepThroughWorkflows(t *testing.T) {
	e := newAnsibleEnv(t, "write_file")
	path := filepath.Join(t.TempDir(), "conf.txt")
	conf := e.insert(&Conf{Path: path, Content: "v1 'quoted' $(not run)\n"})
	start := time.Now()
	e.startStarter()
	e.waitFor(conf, "in sync", inSync)
	t.Logf("insert to in sync through the workflow and ansible-playbook: %s", time.Since(start))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "v1 'quoted' $(not run)\n", string(data))
	require.FileExists(t, filepath.Join(e.sysDir(conf, "sync"), "run.sh"))

	obj, err := models.Load[Conf](e.ctx, e.app.Store, conf.ID)
	require.NoError(t, err)
	obj.Content = "v2\n"
	require.NoError(t, e.app.Store.Save(e.ctx, obj))
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(path)
		return err == nil && string(data) == "v2\n"
	}, 60*time.Second, 50*time.Millisecond)
	e.waitFor(conf, "in sync", inSync)

	require.NoError(t, e.app.Store.Delete(e.ctx, "Conf", conf.ID))
	require.Eventually(t, func() bool {
		_, err := e.app.Store.Get(e.ctx, "Conf", conf.ID)
		return err != nil
	}, 60*time.Second, 50*time.Millisecond, "row not purged")
	require.NoFileExists(t, path)
	log, err := os.ReadFile(filepath.Join(e.sysDir(conf, "delete"), "run.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "TASK [write_file : Remove the file]")
}

// A failed task: code 2 with the task's name and Ansible's message (not the
// log), and the dependent is held with it.
func TestAnsibleFailedTaskIsAStepError(t *testing.T) {
	e := newAnsibleEnv(t, "fail_task")
	conf := e.insert(&Conf{Reason: "no space left on device"})
	consumer := e.insert(&Consumer{Name: "c", ConfID: conf.ID})
	e.startStarter()
	b := e.waitFor(conf, "in error", func(b *models.Base) bool { return b.BackendCode == models.CodeError })
	want := fmt.Sprintf(`task "fail_task : Refuse on purpose" failed on localhost: refusing: no space left on device (ansible-playbook exit 2; log %s/run.log)`,
		e.sysDir(conf, "sync"))
	require.Equal(t, want, strings.Split(b.BackendStatus, " // ")[0])
	require.NotContains(t, b.BackendStatus, "PLAY RECAP")
	e.waitFor(consumer, "held", func(b *models.Base) bool {
		return b.BackendCode == models.CodeError && strings.HasPrefix(b.BackendStatus, "Failed due to error in model Conf id 1: task \"fail_task : Refuse on purpose\"")
	})
}

// An unreachable host is an error (code 2), not a deferral.
func TestAnsibleUnreachableHostIsAnError(t *testing.T) {
	e := newAnsibleEnv(t, "write_file")
	port := ansibletest.FreePort(t)
	conf := e.insert(&Conf{Path: "/nonexistent/x", Content: "x", SSHPort: int64(port)})
	e.startStarter()
	b := e.waitFor(conf, "in error", func(b *models.Base) bool { return b.BackendCode == models.CodeError })
	require.True(t, strings.HasPrefix(b.BackendStatus, "host 127.0.0.1 unreachable: Failed to connect to the host via ssh: "), b.BackendStatus)
	require.Contains(t, b.BackendStatus, fmt.Sprintf("port %d: Connection refused", port))
	require.Contains(t, b.BackendStatus, "(ansible-playbook exit 4;")
	require.Nil(t, b.Enacted)
}

// observer_pretend: nothing runs, the files are written, and the sync is
// recorded as emulated (code 1, enacted set, a status saying so).
func TestAnsiblePretend(t *testing.T) {
	e := newAnsibleEnv(t, "write_file", func(c *config.Config) { c.ObserverPretend = true })
	path := filepath.Join(t.TempDir(), "never.txt")
	conf := e.insert(&Conf{Path: path, Content: "never"})
	e.startStarter()
	b := e.waitFor(conf, "synced (pretend)", func(b *models.Base) bool { return b.BackendCode == models.CodeOK })
	require.Equal(t, "pretend (observer_pretend): sync not run, rendered in "+filepath.Join(e.sysDir(conf, "sync"), "playbook.yml"), b.BackendStatus)
	require.NotNil(t, b.Enacted)
	require.True(t, b.Enacted.Equal(b.Updated))
	require.NoFileExists(t, path)
	for _, f := range []string{"playbook.yml", "vars.yml", "inventory.yml", "run.sh", "run.log"} {
		require.FileExists(t, filepath.Join(e.sysDir(conf, "sync"), f))
	}
}

// Cancelling a sync whose playbook is running kills ansible-playbook and
// everything it started.
func TestAnsibleCancelledSyncLeavesNoProcess(t *testing.T) {
	e := newAnsibleEnv(t, "sleep_forever")
	marker := filepath.Join(t.TempDir(), "started")
	conf := e.insert(&Conf{Marker: marker})
	// One workflow, started by hand: a running starter would start the
	// object's sync again once it is cancelled.
	require.NoError(t, e.app.NewStarter().Start(e.ctx, conf, false))
	require.Eventually(t, func() bool { _, err := os.Stat(marker); return err == nil }, 60*time.Second, 50*time.Millisecond, "playbook never started")
	events := "TSYNC_ANSIBLE_EVENTS=" + filepath.Join(e.sysDir(conf, "sync"), "events.jsonl")
	require.Eventually(t, func() bool {
		for _, p := range ansibletest.ProcessesWithEnv(events) {
			if strings.Contains(p, "sleep 300") {
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "no sleep process")

	start := time.Now()
	require.NoError(t, e.app.Client.CancelWorkflow(e.ctx, workflows.WorkflowID(e.cfg.ObserverName, conf), ""))
	for len(ansibletest.ProcessesWithEnv(events)) > 0 {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("processes left behind 30s after the cancel: %v", ansibletest.ProcessesWithEnv(events))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("every process of the playbook gone %s after the cancel", time.Since(start))
	require.Eventually(t, func() bool {
		log, _ := os.ReadFile(filepath.Join(e.sysDir(conf, "sync"), "run.log"))
		return strings.Contains(string(log), "# tsync: killed after")
	}, 10*time.Second, 50*time.Millisecond)
}
