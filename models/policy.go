package models

// NeedsPolicyPredicate is the SQL condition of objects whose model policies
// have not run since their last update (deleted ones included: the delete
// policy runs before the deletion).
const NeedsPolicyPredicate = `(policed IS NULL OR policed < updated)`

// NeedsPolicy reports whether obj of model m needs its policies to run.
func (m *Model) NeedsPolicy(b *Base) bool {
	return m.Policies && (b.Policed == nil || b.Policed.Before(b.Updated))
}

// fetchPredicates returns the conditions of the pending scans (see
// FetchPredicates): pending for sync
// (or, for a model with policies, needing its policies), and pending for
// deletion.
func (m *Model) fetchPredicates() (pending, deleting string) {
	if !m.Policies {
		return PendingPredicate, DeletionPredicate
	}
	return `NOT deleted AND (` + NeedsPolicyPredicate + ` OR (` + PendingPredicate + `))`, DeletionPredicate
}

// indexName names a partial index; models with policies use other names, so
// that turning policies on or off never leaves an index with a stale
// predicate in use.
func (m *Model) indexName(kind string) string {
	if m.Policies {
		return m.Table + "_" + kind + "_policed"
	}
	return m.Table + "_" + kind
}
