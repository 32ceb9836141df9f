package workflows

import (
	"maps"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// Search attributes every object workflow carries, so that operators find
// syncs by object and state in the Temporal Web UI or with
// `temporal workflow list --query 'TsyncState="error"'`. They must be
// registered on the namespace (SearchAttributes lists them; app.Open
// registers them, `tsync dev start` passes them to the dev server).
var (
	// AttrModel is the object's model.
	AttrModel = temporal.NewSearchAttributeKeyKeyword("TsyncModel")
	// AttrObjectID is the object's id.
	AttrObjectID = temporal.NewSearchAttributeKeyInt64("TsyncObjectID")
	// AttrOperation is the engine.Op: "sync" or "delete".
	AttrOperation = temporal.NewSearchAttributeKeyKeyword("TsyncOperation")
	// AttrSynchronizer is the synchronizer's name (observer_name).
	AttrSynchronizer = temporal.NewSearchAttributeKeyKeyword("TsyncSynchronizer")
	// AttrState is the sync's State, kept current.
	AttrState = temporal.NewSearchAttributeKeyKeyword("TsyncState")
)

// SearchAttributes returns the search attributes to register, by name.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		AttrModel.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrObjectID.GetName():     enumspb.INDEXED_VALUE_TYPE_INT,
		AttrOperation.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrSynchronizer.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrState.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// DevServerArgs returns the `temporal server start-dev` flags tsync's dev
// servers run with: the search attributes registered, and the history
// queues tuned as internal/cluster's dynamic config tunes them (see
// there): the transfer queue read 200 times a second rather than 20, and
// the transfer and visibility queues' progress saved every second rather
// than every 30. It also turns off the dev server's
// system.forceSearchAttributesCacheRefreshOnRead, which the temporal CLI
// sets so that attributes added while it runs are served at once: every
// request and visibility write that carries search attributes then reads
// them from the server's database, 2 to 3% of its CPU under tsync's load.
// The attributes here are registered before it starts, and a production
// server caches them too.
func DevServerArgs() []string {
	attrs := SearchAttributes()
	args := []string{
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=200",
		"--dynamic-config-value", `history.transferProcessorUpdateAckInterval="1s"`,
		"--dynamic-config-value", `history.visibilityProcessorUpdateAckInterval="1s"`,
		"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false",
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		kind := "Keyword"
		if attrs[name] == enumspb.INDEXED_VALUE_TYPE_INT {
			kind = "Int"
		}
		args = append(args, "--search-attribute", name+"="+kind)
	}
	return args
}

// attrUpdate is one search attribute to set, with a test of whether a set
// of attributes has it already.
type attrUpdate struct {
	set  temporal.SearchAttributeUpdate
	have func(temporal.SearchAttributes) bool
}

// Attributes are the search attributes an object workflow starts with.
type Attributes struct {
	updates []attrUpdate
	// Typed is the set to give StartWorkflowOptions or ChildWorkflowOptions.
	Typed temporal.SearchAttributes
}

// StartAttributes returns the search attributes of the workflow of ref for
// operation op in synchronizer name, state pending.
func StartAttributes(name string, ref models.Ref, op engine.Op) Attributes {
	kw := func(k temporal.SearchAttributeKeyKeyword, v string) attrUpdate {
		return attrUpdate{set: k.ValueSet(v), have: func(s temporal.SearchAttributes) bool {
			got, ok := s.GetKeyword(k)
			return ok && got == v
		}}
	}
	a := Attributes{updates: []attrUpdate{
		kw(AttrModel, ref.Model),
		{set: AttrObjectID.ValueSet(ref.ID), have: func(s temporal.SearchAttributes) bool {
			got, ok := s.GetInt64(AttrObjectID)
			return ok && got == ref.ID
		}},
		kw(AttrOperation, string(op)),
		kw(AttrSynchronizer, name),
	}}
	sets := make([]temporal.SearchAttributeUpdate, 0, len(a.updates)+1)
	for _, u := range a.updates {
		sets = append(sets, u.set)
	}
	sets = append(sets, AttrState.ValueSet(string(StatePending)))
	a.Typed = temporal.NewSearchAttributes(sets...)
	return a
}
