package activities_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/ansible"
	"github.com/tsync/tsync/internal/ansible/ansibletest"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// File is a model synced by an Ansible step: the role writes Content to Path.
type File struct {
	models.Base
	Path    string `db:"path"`
	Content string `db:"content"`
	Reason  string `db:"reason"`
}

// Note is synced by a Go step, which the dispatch leaves alone.
type Note struct {
	models.Base
	Text string `db:"text"`
}

type fixture struct {
	ctx   context.Context
	store *models.Store
	acts  *activities.Activities
	sys   string
	notes []string
}

func newFixture(t *testing.T, role string, opts func(*ansible.Options), attrs func(context.Context, *File) (map[string]any, error)) *fixture {
	t.Helper()
	ansibletest.RequirePlaybook(t)
	pool, schema := testenv.Schema(t)
	reg := models.NewRegistry()
	models.MustRegister[File](reg, "File")
	models.MustRegister[Note](reg, "Note")
	f := &fixture{ctx: context.Background(), sys: ansibletest.ShortTempDir(t)}
	if attrs == nil {
		attrs = func(_ context.Context, o *File) (map[string]any, error) {
			return map[string]any{"path": o.Path, "content": o.Content, "reason": o.Reason}, nil
		}
	}
	compiled, err := engine.Compile(tsync.Synchronizer{Models: reg,
		AnsibleSteps: []tsync.AnsibleStep{
			tsync.AnsibleStepOf[File](tsync.AnsibleStepFuncs[File]{Template: role, Attributes: attrs}),
		},
		Steps: []tsync.Step{
			tsync.StepOf[Note](tsync.StepFuncs[Note]{Sync: func(_ context.Context, n *Note) error {
				f.notes = append(f.notes, n.Text)
				return nil
			}}),
		}})
	require.NoError(t, err)
	f.store, err = models.NewStore(pool, schema, compiled.Graph)
	require.NoError(t, err)
	require.NoError(t, f.store.Migrate(f.ctx))
	roles, err := filepath.Abs("../ansible/testdata/roles")
	require.NoError(t, err)
	o := ansible.Options{SysDir: f.sys, RolesPath: []string{roles}}
	if opts != nil {
		opts(&o)
	}
	f.acts = activities.New(compiled, f.store)
	f.acts.Ansible = ansible.NewRunner(o)
	return f
}

func (f *fixture) get(t *testing.T, id int64) *models.Base {
	t.Helper()
	obj, err := f.store.Get(f.ctx, "File", id)
	require.NoError(t, err)
	return obj.SyncState()
}

// An Ansible step is dispatched to ansible-playbook for sync and delete; a
// Go step still runs its own code.
func TestAnsibleDispatchSyncAndDelete(t *testing.T) {
	f := newFixture(t, "write_file", nil, nil)
	path := filepath.Join(t.TempDir(), "f.txt")
	obj := &File{Path: path, Content: "v1\n"}
	require.NoError(t, f.store.Insert(f.ctx, obj))
	ref := models.Ref{Model: "File", ID: obj.ID}

	res, err := f.acts.SyncObject(f.ctx, ref)
	require.NoError(t, err)
	require.Equal(t, activities.OutcomeOK, res.Outcome)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "v1\n", string(data))
	b := f.get(t, obj.ID)
	require.Equal(t, models.CodeOK, b.BackendCode)
	require.Equal(t, "OK", b.BackendStatus)
	require.FileExists(t, filepath.Join(f.sys, "File", "1", "sync", "run.sh"))

	note := &Note{Text: "go step"}
	require.NoError(t, f.store.Insert(f.ctx, note))
	_, err = f.acts.SyncObject(f.ctx, models.Ref{Model: "Note", ID: note.ID})
	require.NoError(t, err)
	require.Equal(t, []string{"go step"}, f.notes)
	require.NoDirExists(t, filepath.Join(f.sys, "Note"))

	require.NoError(t, f.store.Delete(f.ctx, "File", obj.ID))
	out, err := f.acts.DeleteObject(f.ctx, ref)
	require.NoError(t, err)
	require.Equal(t, activities.OutcomeOK, out)
	require.NoFileExists(t, path)
	_, err = f.store.Get(f.ctx, "File", obj.ID)
	require.ErrorIs(t, err, models.ErrNotFound)
	require.FileExists(t, filepath.Join(f.sys, "File", "1", "delete", "run.log"))
}

// A failed task: code 2 with the task's name and message, a retryable step
// error.
func TestAnsibleDispatchFailedTask(t *testing.T) {
	f := newFixture(t, "fail_task", nil, nil)
	obj := &File{Reason: "quota exceeded"}
	require.NoError(t, f.store.Insert(f.ctx, obj))
	_, err := f.acts.SyncObject(f.ctx, models.Ref{Model: "File", ID: obj.ID})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, activities.ErrTypeStep, appErr.Type())
	require.False(t, appErr.NonRetryable())
	b := f.get(t, obj.ID)
	require.Equal(t, models.CodeError, b.BackendCode)
	require.Contains(t, b.BackendStatus, `task "fail_task : Refuse on purpose" failed on localhost: refusing: quota exceeded`)
	require.NotContains(t, b.BackendStatus, "PLAY RECAP")
}

// observer_pretend: nothing runs; the sync is recorded as emulated (code 1,
// a status saying so, enacted set).
func TestAnsibleDispatchPretend(t *testing.T) {
	f := newFixture(t, "write_file", func(o *ansible.Options) { o.Pretend = true }, nil)
	path := filepath.Join(t.TempDir(), "f.txt")
	obj := &File{Path: path, Content: "never\n"}
	require.NoError(t, f.store.Insert(f.ctx, obj))
	res, err := f.acts.SyncObject(f.ctx, models.Ref{Model: "File", ID: obj.ID})
	require.NoError(t, err)
	require.Equal(t, activities.OutcomeOK, res.Outcome)
	require.NoFileExists(t, path)
	b := f.get(t, obj.ID)
	require.Equal(t, models.CodeOK, b.BackendCode)
	require.Equal(t, "pretend (observer_pretend): sync not run, rendered in "+filepath.Join(f.sys, "File", "1", "sync", "playbook.yml"), b.BackendStatus)
	require.NotNil(t, b.Enacted)
	require.True(t, b.Enacted.Equal(b.Updated))
	require.FileExists(t, filepath.Join(f.sys, "File", "1", "sync", "vars.yml"))
}

// ExtraAttributes may defer, as any step may.
func TestAnsibleDispatchAttributesDefer(t *testing.T) {
	f := newFixture(t, "write_file", nil, func(context.Context, *File) (map[string]any, error) {
		return nil, tsync.Defer(errors.New("waiting for an address"))
	})
	obj := &File{}
	require.NoError(t, f.store.Insert(f.ctx, obj))
	_, err := f.acts.SyncObject(f.ctx, models.Ref{Model: "File", ID: obj.ID})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, activities.ErrTypeDeferred, appErr.Type())
	b := f.get(t, obj.ID)
	require.Equal(t, models.CodePending, b.BackendCode)
	require.Equal(t, "deferred: waiting for an address", b.BackendStatus)
	require.NoDirExists(t, filepath.Join(f.sys, "File"), "nothing rendered")
}
