package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

type Site struct {
	models.Base
	Name string `db:"name"`
}

type Slice struct {
	models.Base
	SiteID int64 `db:"site_id"`
}

type Network struct {
	models.Base
	CIDR   string `db:"cidr"`
	SiteID int64  `db:"site_id"`
}

type Stray struct{ models.Base }

func registry() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Slice](reg, "Slice", models.LinkTo[Site]("site_id"))
	models.MustRegister[Network](reg, "Network", models.LinkTo[Site]("site_id"))
	return reg
}

func siteStep() tsync.Step  { return tsync.StepOf[Site](tsync.StepFuncs[Site]{}) }
func sliceStep() tsync.Step { return tsync.StepOf[Slice](tsync.StepFuncs[Slice]{}) }

// multiStep is an author's own step of several models.
type multiStep struct{ objs []models.Object }

func (m multiStep) Synchronizes() []models.Object                   { return m.objs }
func (multiStep) SyncRecord(context.Context, models.Object) error   { return nil }
func (multiStep) DeleteRecord(context.Context, models.Object) error { return nil }

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    tsync.Synchronizer
		want string
	}{
		{"no models", tsync.Synchronizer{}, "synchronizer: no models registered"},
		{"nil step", tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{siteStep(), nil}}, "synchronizer: step 1 is nil"},
		{"nil Ansible step", tsync.Synchronizer{Models: registry(), AnsibleSteps: []tsync.AnsibleStep{nil}}, "synchronizer: Ansible step 0 is nil"},
		{"nil policy", tsync.Synchronizer{Models: registry(), Policies: []tsync.Policy{nil}}, "synchronizer: policy 0 is nil"},
		{"nil watcher", tsync.Synchronizer{Models: registry(), Watchers: []tsync.Watcher{nil}}, "synchronizer: watcher 0 is nil"},
		{
			"typed step of an unregistered type",
			tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{siteStep(), tsync.StepOf[Stray](tsync.StepFuncs[Stray]{})}},
			"synchronizer: step 1: type engine_test.Stray is not a registered model",
		},
		{
			"own step of no model",
			tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{multiStep{}}},
			"synchronizer: step 0 (engine_test.multiStep) synchronizes no model",
		},
		{
			"own step naming a model by nil",
			tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{multiStep{objs: []models.Object{nil}}}},
			"synchronizer: step 0 (engine_test.multiStep): names its model by <nil>, want a pointer to a registered model struct (such as new(Site))",
		},
		{
			"two steps of one model",
			tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{siteStep(), multiStep{objs: []models.Object{new(Slice), new(Site)}}}},
			"synchronizer: model Site is synchronized by two steps, step 0 and step 1 (engine_test.multiStep)",
		},
		{
			"a Go step and an Ansible step of one model",
			tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{siteStep()},
				AnsibleSteps: []tsync.AnsibleStep{tsync.AnsibleStepOf[Site](tsync.AnsibleStepFuncs[Site]{Template: "site"})}},
			"synchronizer: model Site is synchronized by two steps, step 0 and Ansible step 0",
		},
		{
			"policy of an unregistered type",
			tsync.Synchronizer{Models: registry(), Policies: []tsync.Policy{tsync.PolicyOf[Stray](tsync.PolicyFuncs[Stray]{})}},
			"synchronizer: policy 0: type engine_test.Stray is not a registered model",
		},
		{
			"watcher of an unregistered type",
			tsync.Synchronizer{Models: registry(), Watchers: []tsync.Watcher{tsync.WatcherOf[Stray](tsync.WatcherFuncs[Stray]{Degree: 1})}},
			"synchronizer: watcher 0: type engine_test.Stray is not a registered model",
		},
		{
			"two watchers of one name",
			tsync.Synchronizer{Models: registry(), Watchers: []tsync.Watcher{
				tsync.WatcherOf[Slice](tsync.WatcherFuncs[Slice]{Degree: 1}),
				tsync.WatcherOf[Network](tsync.WatcherFuncs[Network]{Name: "Slice", Degree: 1}),
			}},
			`synchronizer: two watchers are named "Slice" (give each a Name)`,
		},
		{
			"watched link to an unregistered type",
			tsync.Synchronizer{Models: registry(), Watchers: []tsync.Watcher{
				tsync.WatcherOf[Slice](tsync.WatcherFuncs[Slice]{Links: []models.Link{models.LinkTo[Stray]("site_id")}}),
			}},
			"synchronizer: watcher Slice: watched link to engine_test.Stray: type engine_test.Stray is not a registered model",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.Compile(tc.s)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestCompile(t *testing.T) {
	reg := registry()
	ansibleStep := tsync.AnsibleStepOf[Network](tsync.AnsibleStepFuncs[Network]{Template: "net"})
	c, err := engine.Compile(tsync.Synchronizer{
		Models:       reg,
		Steps:        []tsync.Step{sliceStep(), siteStep()},
		AnsibleSteps: []tsync.AnsibleStep{ansibleStep},
		Watchers: []tsync.Watcher{tsync.WatcherOf[Slice](tsync.WatcherFuncs[Slice]{
			Links: []models.Link{models.LinkInto[Site]("site_id", "name")},
		})},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"Site", "Network", "Slice"}, c.Models(), "dependencies first")
	st, ok := c.Step("Network")
	require.True(t, ok)
	require.Nil(t, st.Go)
	require.Equal(t, ansibleStep, st.Ansible)
	st, ok = c.Step("Site")
	require.True(t, ok)
	require.NotNil(t, st.Go)
	require.Nil(t, st.Ansible)
	_, ok = c.Step("Stray")
	require.False(t, ok)

	// A typed watcher is named after its model; its LinkInto resolves.
	w, ok := c.Watcher("Slice")
	require.True(t, ok)
	require.Equal(t, []string{"Site"}, w.WatchedModels())
	require.Len(t, w.Paths, 1)
	require.Equal(t, "Slice -site_id-> Site [into name]", w.Paths[0].String())
}

// Compile is pure: a policy sets Policies in the compiled graph, never in
// the registry, which another synchronizer may share.
func TestCompileIsPure(t *testing.T) {
	reg := registry()
	withPolicy, err := engine.Compile(tsync.Synchronizer{Models: reg, Steps: []tsync.Step{siteStep()},
		Policies: []tsync.Policy{tsync.PolicyOf[Site](tsync.PolicyFuncs[Site]{})}})
	require.NoError(t, err)
	without, err := engine.Compile(tsync.Synchronizer{Models: reg, Steps: []tsync.Step{siteStep()}})
	require.NoError(t, err)

	m, _ := withPolicy.Graph.Model("Site")
	require.True(t, m.Policies)
	require.Len(t, withPolicy.Policies("Site"), 1)
	m, _ = without.Graph.Model("Site")
	require.False(t, m.Policies, "the first synchronizer's policy leaked into the second")
	require.Empty(t, without.Policies("Site"))
	g, err := reg.Graph()
	require.NoError(t, err)
	m, _ = g.Model("Site")
	require.False(t, m.Policies, "Compile changed the registry")
}

// A typed step called with another model's object fails with an error
// naming both (the engine never does this: it is the adapter's guard).
func TestTypedStepRefusesOtherModels(t *testing.T) {
	err := siteStep().SyncRecord(context.Background(), &Slice{})
	require.EqualError(t, err, "step of *engine_test.Site: got *engine_test.Slice")
}

func TestClassify(t *testing.T) {
	cause := errors.New("busy")
	for _, tc := range []struct {
		err  error
		want engine.Outcome
	}{
		{nil, engine.Succeeded},
		{cause, engine.Failed},
		{tsync.Defer(cause), engine.Deferred},
		{fmt.Errorf("wrapped: %w", tsync.Defer(cause)), engine.Deferred},
		{tsync.Defer(nil), engine.Deferred},
		{tsync.Innocuous(cause), engine.Noted},
		{tsync.Innocuousf("note %d", 1), engine.Noted},
		// Deferral wins, whichever wraps which.
		{tsync.Innocuous(tsync.Defer(cause)), engine.Deferred},
		{tsync.Defer(tsync.Innocuous(cause)), engine.Deferred},
		{errors.Join(tsync.Innocuous(cause), tsync.Defer(cause)), engine.Deferred},
		{errors.Join(cause, tsync.Innocuous(cause)), engine.Noted},
	} {
		require.Equal(t, tc.want, engine.Classify(tc.err), "%v", tc.err)
	}
}

func TestOpFor(t *testing.T) {
	require.Equal(t, engine.OpSync, engine.OpFor(false))
	require.Equal(t, engine.OpDelete, engine.OpFor(true))
	// Playbook directories, search attributes and metric labels hold them.
	require.Equal(t, "sync", string(engine.OpSync))
	require.Equal(t, "delete", string(engine.OpDelete))
}
