package workflows

import (
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"
)

// ListedState is the TsyncState search attribute of a workflow as
// visibility lists it ("" when it has none).
func ListedState(info *workflowpb.WorkflowExecutionInfo) State {
	var s State
	if p := info.GetSearchAttributes().GetIndexedFields()[AttrState.GetName()]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	}
	return s
}

// ListedStatus is the status text of a workflow's memo as visibility
// lists it ("" when it has none).
func ListedStatus(info *workflowpb.WorkflowExecutionInfo) string {
	var s string
	if p := info.GetMemo().GetFields()[memoStatus]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	}
	return s
}
