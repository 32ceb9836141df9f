package inspect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/models"
)

func TestClassify(t *testing.T) {
	now := time.Now()
	before, after := now.Add(-time.Second), now.Add(time.Second)
	for _, tc := range []struct {
		name string
		row  inspect.Row
		want inspect.State
	}{
		{"never synced", inspect.Row{Updated: now}, inspect.StatePending},
		{"synced", inspect.Row{Code: 1, Updated: now, Enacted: &now}, inspect.StateInSync},
		{"enacted after updated", inspect.Row{Code: 1, Updated: now, Enacted: &after}, inspect.StateInSync},
		{"changed since", inspect.Row{Code: 1, Updated: now, Enacted: &before}, inspect.StatePending},
		{"deleted", inspect.Row{Code: 1, Updated: now, Enacted: &now, Deleted: true}, inspect.StatePending},
		{"error", inspect.Row{Code: 2, Status: "boom", Updated: now}, inspect.StateError},
		{"error, synced once", inspect.Row{Code: 2, Status: "boom", Updated: now, Enacted: &before}, inspect.StateError},
		{"held behind a failure", inspect.Row{Code: 2, Status: "Failed due to error in model Site id 1: boom"}, inspect.StateHeld},
		{"deferred", inspect.Row{Code: 0, Status: "deferred: not yet"}, inspect.StateDeferred},
		{"held: missing dependency", inspect.Row{Code: 0, Status: "deferred: dependency model Net id 9 does not exist"}, inspect.StateHeld},
		{"held: elsewhere", inspect.Row{Code: 0, Status: "deferred: waiting for dependency model Net id 9, synchronized elsewhere"}, inspect.StateHeld},
		{"deferred text on code 1", inspect.Row{Code: 1, Status: "deferred: x", Updated: now, Enacted: &now}, inspect.StateInSync},
	} {
		require.Equal(t, tc.want, inspect.Classify(tc.row), tc.name)
	}
}

func TestParseState(t *testing.T) {
	for in, want := range map[string]inspect.State{
		"in-sync": inspect.StateInSync, "IN_SYNC": inspect.StateInSync, "insync": inspect.StateInSync,
		"Error": inspect.StateError, " held ": inspect.StateHeld, "deferred": inspect.StateDeferred, "pending": inspect.StatePending,
	} {
		got, err := inspect.ParseState(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := inspect.ParseState("broken")
	require.EqualError(t, err, `unknown state "broken", want one of in-sync, pending, deferred, held, error`)
}

func TestWorkflowURL(t *testing.T) {
	require.Equal(t, "http://ui:8233/namespaces/my%20ns/workflows/demo%2FSite%2F3",
		inspect.WorkflowURL("http://ui:8233/", "my ns", "demo/Site/3"))
	require.Empty(t, inspect.WorkflowURL("", "default", "demo/Site/3"))
}

// states returns the State of each row, by "Model id".
func states(rows []inspect.Row) map[string]inspect.State {
	out := map[string]inspect.State{}
	for _, r := range rows {
		out[fmt.Sprintf("%s %d", r.Model, r.ID)] = r.State
	}
	return out
}

func key(model string, id int64) string { return fmt.Sprintf("%s %d", model, id) }

func TestListAndCounts(t *testing.T) {
	f := inspecttest.New(t)
	in := inspect.New(f.Store, nil, inspect.Options{Synchronizer: "demo", Namespace: "default"})
	ctx := storetest.Ctx(t)

	all, err := in.List(ctx, inspect.Filter{})
	require.NoError(t, err)
	require.Equal(t, map[string]inspect.State{
		key("Site", f.InSync.ID):       inspect.StateInSync,
		key("Site", f.Failed.ID):       inspect.StateError,
		key("Site", f.New.ID):          inspect.StatePending,
		key("Slice", f.Held.ID):        inspect.StateHeld,
		key("Slice", f.Deferred.ID):    inspect.StateDeferred,
		key("Slice", f.Synced.ID):      inspect.StateInSync,
		key("Instance", f.HeldToo.ID):  inspect.StateHeld,
		key("Instance", f.Dangling.ID): inspect.StateHeld,
		key("Instance", f.Broken.ID):   inspect.StateError,
	}, states(all))
	// Dependencies first (the graph's order), then by id.
	order := []string{}
	for _, r := range all {
		if len(order) == 0 || order[len(order)-1] != r.Model {
			order = append(order, r.Model)
		}
	}
	require.Equal(t, []string{"Site", "Slice", "Instance"}, order)

	errs, err := in.List(ctx, inspect.Filter{State: inspect.StateError})
	require.NoError(t, err)
	require.Len(t, errs, 2)
	require.Equal(t, key("Instance", f.Broken.ID), key(errs[1].Model, errs[1].ID))
	require.Equal(t, inspecttest.BrokenText, errs[1].Status)
	require.Equal(t, "Site", errs[0].Model)
	require.Equal(t, f.Failed.ID, errs[0].ID)
	require.Equal(t, inspecttest.ErrorText, errs[0].Status)

	held, err := in.List(ctx, inspect.Filter{Model: "slice", State: inspect.StateHeld})
	require.NoError(t, err)
	require.Equal(t, map[string]inspect.State{key("Slice", f.Held.ID): inspect.StateHeld}, states(held))

	limited, err := in.List(ctx, inspect.Filter{Limit: 2})
	require.NoError(t, err)
	require.Len(t, limited, 2)

	_, err = in.List(ctx, inspect.Filter{Model: "Nope"})
	require.EqualError(t, err, `unknown model "Nope", want one of Everything, Image, Site, Slice, Instance`)

	counts, err := in.Counts(ctx)
	require.NoError(t, err)
	byModel := map[string]inspect.Count{}
	for _, c := range counts {
		byModel[c.Model] = c
	}
	require.Equal(t, inspect.Count{Model: "Site", Total: 3, ByState: map[inspect.State]int{
		inspect.StateInSync: 1, inspect.StateError: 1, inspect.StatePending: 1}}, byModel["Site"])
	require.Equal(t, inspect.Count{Model: "Slice", Total: 3, ByState: map[inspect.State]int{
		inspect.StateInSync: 1, inspect.StateHeld: 1, inspect.StateDeferred: 1}}, byModel["Slice"])
	require.Equal(t, inspect.Count{Model: "Instance", Total: 3, ByState: map[inspect.State]int{
		inspect.StateHeld: 2, inspect.StateError: 1}}, byModel["Instance"])
	require.Equal(t, 0, byModel["Image"].Total)

	require.Equal(t, []inspect.Node{
		{Model: "Everything"}, {Model: "Image"}, {Model: "Site"},
		{Model: "Slice", DependsOn: []string{"Site"}},
		{Model: "Instance", DependsOn: []string{"Image", "Slice"}},
	}, in.Graph())
}

func TestObject(t *testing.T) {
	f := inspecttest.New(t)
	in := inspect.New(f.Store, nil, inspect.Options{Synchronizer: "demo", Namespace: "default", UIURL: "http://127.0.0.1:8233"})
	ctx := storetest.Ctx(t)

	// The held Instance: its chain Slice (held) -> Site (error).
	o, err := in.Object(ctx, "instance", f.HeldToo.ID)
	require.NoError(t, err)
	require.Equal(t, "Instance", o.Model)
	require.Equal(t, inspect.StateHeld, o.State)
	require.Equal(t, models.CodeError, o.Code)
	require.Equal(t, fmt.Sprintf("Failed due to error in model Site id %d: %s", f.Failed.ID, inspecttest.ErrorText), o.Status)
	require.Equal(t, []inspect.Field{
		{Column: "name", Value: "held-too"},
		{Column: "slice_id", Value: fmt.Sprint(f.Held.ID), Link: "Slice"},
		{Column: "image_id", Value: "null", Link: "Image"},
	}, o.Fields)
	require.Len(t, o.Dependencies, 2)
	require.Equal(t, [2]any{"Slice", f.Held.ID}, [2]any{o.Dependencies[0].Model, o.Dependencies[0].ID})
	require.Equal(t, 1, o.Dependencies[0].Depth)
	require.Equal(t, "slice_id", o.Dependencies[0].Via)
	require.Equal(t, inspect.StateHeld, o.Dependencies[0].State)
	require.Equal(t, [2]any{"Site", f.Failed.ID}, [2]any{o.Dependencies[1].Model, o.Dependencies[1].ID})
	require.Equal(t, 2, o.Dependencies[1].Depth)
	require.Equal(t, "site_id", o.Dependencies[1].Via)
	require.Equal(t, inspect.StateError, o.Dependencies[1].State)
	require.Empty(t, o.Dependents)
	require.Equal(t, inspect.Workflow{
		ID:  fmt.Sprintf("demo/Instance/%d", f.HeldToo.ID),
		URL: fmt.Sprintf("http://127.0.0.1:8233/namespaces/default/workflows/demo%%2FInstance%%2F%d", f.HeldToo.ID),
	}, o.Workflow)

	// The failing Site holds its Slice and, through it, the Instance.
	site, err := in.Object(ctx, "Site", f.Failed.ID)
	require.NoError(t, err)
	require.Equal(t, inspect.StateError, site.State)
	require.Empty(t, site.Dependencies)
	require.Len(t, site.Dependents, 2)
	require.Equal(t, inspect.Dep{Row: site.Dependents[0].Row, Depth: 1, Via: "site_id"}, site.Dependents[0])
	require.Equal(t, key("Slice", f.Held.ID), key(site.Dependents[0].Model, site.Dependents[0].ID))
	require.Equal(t, key("Instance", f.HeldToo.ID), key(site.Dependents[1].Model, site.Dependents[1].ID))
	require.Equal(t, 2, site.Dependents[1].Depth)

	// The in-sync Site holds only the objects below it not in sync.
	root, err := in.Object(ctx, "Site", f.InSync.ID)
	require.NoError(t, err)
	require.Equal(t, inspect.StateInSync, root.State)
	got := []string{}
	for _, d := range root.Dependents {
		got = append(got, fmt.Sprintf("%s %d %s depth %d", d.Model, d.ID, d.State, d.Depth))
	}
	require.Equal(t, []string{
		fmt.Sprintf("Slice %d deferred depth 1", f.Deferred.ID),
		fmt.Sprintf("Instance %d held depth 2", f.Dangling.ID),
	}, got)

	// A dangling link: the missing Image is in the chain, marked Missing.
	d, err := in.Object(ctx, "Instance", f.Dangling.ID)
	require.NoError(t, err)
	require.Equal(t, inspect.StateHeld, d.State)
	require.Len(t, d.Dependencies, 3)
	require.Equal(t, inspect.Dep{Row: inspect.Row{Model: "Image", ID: inspecttest.MissingImage, State: inspect.StatePending},
		Depth: 1, Via: "image_id", Missing: true}, d.Dependencies[2])

	_, err = in.Object(ctx, "Site", 12345)
	require.ErrorIs(t, err, models.ErrNotFound)
	_, err = in.Object(ctx, "Nope", 1)
	require.ErrorContains(t, err, `unknown model "Nope"`)
}
