// Package activities holds the Temporal activities of tsync's sync and
// delete workflows: load an object fresh from PostgreSQL, run its step (Go
// code or an Ansible playbook) or its model policies, and record the
// outcome in its sync state. Workflow histories hold references (model,
// id), never object contents.
//
// A worker registers them (see package worker); app.App and tsynctest
// build them for you. New is for a worker of your own.
package activities

import (
	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// Activities are the activities of one synchronizer's workflows. Register
// them on a Temporal worker with worker.Register.
type Activities = activities.Activities

// New validates s and returns its activities over the database of store
// (its pool and schema; the schema must be migrated).
func New(s tsync.Synchronizer, store *models.Store) (*Activities, error) {
	c, es, err := engine.CompileOver(s, store)
	if err != nil {
		return nil, err
	}
	return activities.New(c, es), nil
}
