package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/text"
	"github.com/tsync/tsync/models"
)

// OpenApp opens the synchronizer's app (PostgreSQL, migrated, and Temporal,
// waiting for it) and builds the synchronizer over it. Close it when done.
func (c *CLI) OpenApp(ctx context.Context) (*app.App, error) {
	return app.OpenWithStore(ctx, c.cfg, c.def.Models, c.build(), c.log, c.appOptions()...)
}

// appOptions are the app's options for the Definition: its client options
// and its name, which the app's hints name ("run `mysync dev start`").
func (c *CLI) appOptions() []app.Option {
	return []app.Option{app.WithClientOptions(c.def.ClientOptions), app.WithName(c.def.Name)}
}

// build builds the Definition's synchronizer for the loaded config.
func (c *CLI) build() app.Build {
	return func(store *models.Store) (tsync.Synchronizer, error) { return c.def.Synchronizer(c.cfg, store) }
}

// openStore opens the synchronizer's model store without Temporal,
// migrating the schema when migrate is set. Call the returned func to close
// it.
func (c *CLI) openStore(ctx context.Context, migrate bool) (*models.Store, func(), error) {
	a, err := app.OpenStore(ctx, c.cfg, c.def.Models, c.build(), migrate, c.log, c.appOptions()...)
	if err != nil {
		return nil, nil, err
	}
	return a.Store, a.Close, nil
}

// ObjectState is the sync state of one object, as the status command shows
// it (and writes it with -o json, with these snake_case keys).
type ObjectState struct {
	Model string `json:"model"`
	ID    int64  `json:"id"`
	// State is the object's state as operators see it (in-sync, pending,
	// deferred, held, error: see package inspect), from its columns; ""
	// when not classified.
	State   inspect.State `json:"state,omitempty"`
	Code    int           `json:"code"`
	Status  string        `json:"status"`
	Deleted bool          `json:"deleted"`
	// Current reports enacted == updated: the last successful sync saw the
	// object's current content.
	Current bool       `json:"current"`
	Updated time.Time  `json:"updated"`
	Enacted *time.Time `json:"enacted"`
	// Workflow is the ID of the object's running workflow and its state
	// (TsyncState), when asked for and running.
	Workflow      string `json:"workflow,omitempty"`
	WorkflowState string `json:"workflow_state,omitempty"`
	// Attempt is how many attempts of its failing step its running
	// workflow made for the current content, and NextRetry when it runs
	// the next (from the workflow's memo; not set by runs of older code).
	Attempt   int        `json:"attempt,omitempty"`
	NextRetry *time.Time `json:"next_retry,omitempty"`
}

// objectState is the ObjectState of an inspected row.
func objectState(r inspect.Row) ObjectState {
	return ObjectState{
		Model: r.Model, ID: r.ID, State: r.State, Code: r.Code, Status: r.Status, Deleted: r.Deleted,
		Current: r.Enacted != nil && r.Enacted.Equal(r.Updated), Updated: r.Updated, Enacted: r.Enacted,
	}
}

// InSync reports whether the object is in sync: code 1 and enacted ==
// updated, and not deleted.
func (o ObjectState) InSync() bool {
	return !o.Deleted && o.Code == models.CodeOK && o.Current
}

// InError reports whether the object's last sync failed or it is held.
func (o ObjectState) InError() bool { return o.Code == models.CodeError }

// listObjects returns the sync state of every object of the store's
// models, dependencies first, each model's by id.
func listObjects(ctx context.Context, store *models.Store) ([]ObjectState, error) {
	states, err := syncstate.New(store).States(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ObjectState, len(states))
	for i, st := range states {
		out[i] = ObjectState{
			Model: st.Model, ID: st.ID, Code: st.Code, Status: st.Status, Deleted: st.Deleted,
			Current: st.Enacted != nil && st.Enacted.Equal(st.Updated), Updated: st.Updated, Enacted: st.Enacted,
		}
	}
	return out, nil
}

// tally counts objects by state.
type tally struct{ total, inSync, pending, inError int }

func count(objs []ObjectState) tally {
	var t tally
	for _, o := range objs {
		t.total++
		switch {
		case o.InSync():
			t.inSync++
		case o.InError():
			t.inError++
		default:
			t.pending++
		}
	}
	return t
}

// stateCounts counts objects by State, as status's summary line.
func stateCounts(objs []ObjectState) string {
	n := map[inspect.State]int{}
	for _, o := range objs {
		n[o.State]++
	}
	return fmt.Sprintf("%d objects, %d in sync, %d pending, %d deferred, %d held, %d in error", len(objs),
		n[inspect.StateInSync], n[inspect.StatePending], n[inspect.StateDeferred], n[inspect.StateHeld], n[inspect.StateError])
}

func (t tally) String() string {
	return fmt.Sprintf("%d objects, %d in sync, %d pending, %d in error", t.total, t.inSync, t.pending, t.inError)
}

// printTable writes objs as a table, with the running workflow's state when
// it is known.
func printTable(w io.Writer, objs []ObjectState) error {
	withWorkflow := false
	for _, o := range objs {
		if o.WorkflowState != "" {
			withWorkflow = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "MODEL\tID\tSTATE\tCODE\tENACTED=UPDATED"
	if withWorkflow {
		header += "\tWORKFLOW"
	}
	fmt.Fprintln(tw, header+"\tSTATUS")
	for _, o := range objs {
		status := oneLine(o.Status)
		if o.Deleted {
			status = "[deleted] " + status
		}
		current := "no"
		if o.Current {
			current = "yes"
		}
		state := string(o.State)
		if state == "" {
			state = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t", o.Model, o.ID, state, o.Code, current)
		if withWorkflow {
			state := o.WorkflowState
			if state == "" {
				state = "-"
			}
			if o.Attempt > 0 {
				state += fmt.Sprintf(" (attempt %d", o.Attempt)
				if o.NextRetry != nil {
					state += ", next " + o.NextRetry.UTC().Format(time.TimeOnly)
				}
				state += ")"
			}
			fmt.Fprintf(tw, "%s\t", state)
		}
		fmt.Fprintf(tw, "%s\n", status)
	}
	return tw.Flush()
}

// oneLine shortens a status to one line of at most 100 characters.
func oneLine(s string) string { return text.Cut(text.Squeeze(s), 100) }
