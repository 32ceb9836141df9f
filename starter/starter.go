// Package starter finds a synchronizer's pending objects and starts one
// workflow per object (see package workflows): it scans every loop interval,
// in batches, with each step's FetchPending, and at once when the model
// store announces a change (PostgreSQL NOTIFY). Run any number of starters:
// workflow IDs are deterministic, so an object is never started twice.
//
// app.App runs one (RunStarter); New is for a process of your own.
package starter

import (
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/starter"
	"github.com/tsync/tsync/models"
)

// Starter starts the workflows of pending objects. Run it until its
// context is done.
type Starter = starter.Starter

// Options configure a Starter; zero values take the defaults documented on
// each field.
type Options = starter.Options

// New validates s and returns its starter, starting workflows with c and
// reading the pending objects of the database of store (its pool and
// schema; the schema must be migrated).
func New(c client.Client, s tsync.Synchronizer, store *models.Store, opts Options) (*Starter, error) {
	compiled, es, err := engine.CompileOver(s, store)
	if err != nil {
		return nil, err
	}
	return starter.New(c, compiled, es, opts), nil
}
