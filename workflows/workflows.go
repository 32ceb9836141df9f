// Package workflows is the public face of tsync's per-object Temporal
// workflows. SyncWorkflow brings one object in sync, its dependencies
// first; DeleteWorkflow deletes one deleted object from the backend after
// the deleted objects that depend on it, then purges its row. Both run
// under the workflow ID "<synchronizer>/<model>/<id>" (WorkflowID), so an
// object is never synced by two workflows at once, and carry the search
// attributes of SearchAttributes, so operators find syncs by model, object
// and state in the Temporal Web UI:
//
//	temporal workflow list --query 'TsyncState="error"'
//
// A worker registers them (see package worker); the starter starts them.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Request starts an object workflow: the object and the settings.
type Request = workflows.Request

// Params are the settings every object workflow runs with (from config:
// see app.Params).
type Params = workflows.Params

// Result is how an object workflow ended.
type Result = workflows.Result

// State is where an object workflow is (the TsyncState search attribute:
// "pending", "waiting", "held", "running", "deferred", "error"), and how it
// ended (Result.Outcome: "in-sync", "gone", "blocked", "deleted",
// "write-protected", "failed", or "recheck" for a result only).
type State = workflows.State

// The workflow type names that starters start the object workflows under.
// A worker registers SyncWorkflow and DeleteWorkflow under these and,
// for the runs started by earlier versions, under their function names
// "SyncWorkflow" and "DeleteWorkflow" (see package worker, Register): a
// worker that registers them itself must do both.
const (
	SyncType   = workflows.SyncType
	DeleteType = workflows.DeleteType
)

// SyncWorkflow brings req.Object in sync: every object it depends on
// first (by child workflows, or waiting for their running ones), then its
// model policies and its step, retried as config says; deferred and held
// objects are tried again after the loop interval, and a change to the
// object reaches a waiting workflow at once.
func SyncWorkflow(ctx workflow.Context, req Request) (Result, error) {
	return workflows.SyncWorkflow(ctx, req)
}

// DeleteWorkflow deletes the deleted object req.Object from the backend
// (DeleteRecord, when a sync was ever attempted) after every deleted object
// that depends on it, then purges its row.
func DeleteWorkflow(ctx workflow.Context, req Request) (Result, error) {
	return workflows.DeleteWorkflow(ctx, req)
}

// WorkflowID returns the ID of the workflows of ref in the synchronizer
// named synchronizer (observer_name): "<synchronizer>/<model>/<id>".
func WorkflowID(synchronizer string, ref models.Ref) string {
	return workflows.WorkflowID(synchronizer, ref)
}

// SearchAttributes returns, by name, the search attributes tsync's
// workflows carry (TsyncModel, TsyncObjectID, TsyncOperation,
// TsyncSynchronizer, TsyncState): register them on a namespace before its
// first workflow (app.Open does, when it may).
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return workflows.SearchAttributes()
}
