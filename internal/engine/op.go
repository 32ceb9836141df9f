package engine

// Op is what an object workflow does with its object: sync it or delete
// it. The one operation type of the engine: it selects the workflow
// (workflows.WorkflowOf), and its string is the TsyncOperation search
// attribute, the Operation of a workflow's live state, the name of the
// playbook directory of an Ansible step (<observer_sys_dir>/<Model>/<id>/<op>/)
// and the operation label of the pending-objects metric. Those are seen
// outside the engine, so the values never change.
type Op string

// Operations.
const (
	// OpSync brings the object in sync: SyncWorkflow, the step's SyncRecord
	// (an Ansible step's playbook with state present).
	OpSync Op = "sync"
	// OpDelete deletes the object from the backend and purges its row:
	// DeleteWorkflow, the step's DeleteRecord (an Ansible step's playbook
	// with state absent).
	OpDelete Op = "delete"
)

// OpFor returns OpDelete for a deletion, OpSync otherwise.
func OpFor(deletion bool) Op {
	if deletion {
		return OpDelete
	}
	return OpSync
}
