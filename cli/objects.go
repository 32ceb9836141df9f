package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/models"
)

// OpenApp opens the synchronizer's app (PostgreSQL, migrated, and Temporal,
// waiting for it) and calls the Definition's opened hook. Close it when
// done.
func (c *CLI) OpenApp(ctx context.Context) (*app.App, error) {
	s, opened := c.def.Synchronizer(c.cfg)
	a, err := app.Open(ctx, c.cfg, s, c.log)
	if err != nil {
		return nil, err
	}
	if opened != nil {
		opened(a)
	}
	return a, nil
}

// compile compiles the synchronizer, without opening anything.
func (c *CLI) compile() (*tsync.Compiled, error) {
	s, _ := c.def.Synchronizer(c.cfg)
	return s.Compile()
}

// openStore opens the synchronizer's model store without Temporal,
// migrating the schema when migrate is set. Call the returned func to close
// it.
func (c *CLI) openStore(ctx context.Context, migrate bool) (*models.Store, func(), error) {
	if err := c.cfg.Validate(); err != nil {
		return nil, nil, err
	}
	compiled, err := c.compile()
	if err != nil {
		return nil, nil, err
	}
	pool, err := app.OpenDatabase(ctx, c.cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := models.NewStore(pool, c.cfg.DatabaseSchema, compiled.Graph, models.WithOutbox(c.cfg.ObserverEnableWatchers))
	if err == nil && migrate {
		err = store.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store, pool.Close, nil
}

// ObjectState is the sync state of one object, as the status command shows
// it (and writes it with -o json).
type ObjectState struct {
	Model   string
	ID      int64
	Code    int
	Status  string
	Deleted bool
	// Current reports enacted == updated: the last successful sync saw the
	// object's current content.
	Current bool
	Updated time.Time
	Enacted *time.Time
	// Workflow is the ID of the object's running workflow and its state
	// (TsyncState), when asked for and running.
	Workflow      string `json:",omitempty"`
	WorkflowState string `json:",omitempty"`
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
	states, err := store.SyncStates(ctx)
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
	header := "MODEL\tID\tCODE\tENACTED=UPDATED"
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
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t", o.Model, o.ID, o.Code, current)
		if withWorkflow {
			state := o.WorkflowState
			if state == "" {
				state = "-"
			}
			fmt.Fprintf(tw, "%s\t", state)
		}
		fmt.Fprintf(tw, "%s\n", status)
	}
	return tw.Flush()
}

// oneLine shortens a status to one line of at most 100 characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 100 {
		s = string(r[:99]) + "…"
	}
	return s
}
