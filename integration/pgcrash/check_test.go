package pgcrash

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// checkedModels are the models the tests insert.
var checkedModels = []string{"Site", "Slice", "Instance", "Item"}

// row is the sync state of one row.
type row struct {
	ref     models.Ref
	deleted bool
	code    int
	enacted *time.Time
	updated time.Time
}

// inSync reports whether r is synced: code 1 and enacted = updated.
func (r row) inSync() bool {
	return r.code == models.CodeOK && r.enacted != nil && r.enacted.Equal(r.updated)
}

// rows reads every row of the checked models.
func (e *env) rows(ctx context.Context) ([]row, error) {
	var out []row
	for _, name := range checkedModels {
		m, ok := e.store.Graph().Model(name)
		if !ok {
			return nil, fmt.Errorf("no model %s", name)
		}
		rs, err := e.store.Pool().Query(ctx, "SELECT id, deleted, backend_code, enacted, updated FROM "+e.store.Table(m))
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			r := row{ref: models.Ref{Model: name}}
			if err := rs.Scan(&r.ref.ID, &r.deleted, &r.code, &r.enacted, &r.updated); err != nil {
				rs.Close()
				return nil, err
			}
			out = append(out, r)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// state counts the rows in sync and those not settled (not in sync, or
// deleted and not yet purged); -1 while the database does not answer.
func (e *env) state() (synced, unsettled int) {
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	defer cancel()
	rows, err := e.rows(ctx)
	if err != nil {
		return -1, -1
	}
	for _, r := range rows {
		switch {
		case r.deleted:
			unsettled++
		case r.inSync():
			synced++
		default:
			unsettled++
		}
	}
	return synced, unsettled
}

// callReport is what the step calls tell.
type callReport struct {
	calls, repeats int
	// problems are overlapping calls and repeats outside the outage.
	problems []string
	// firstProgress is the end of the first successful call that started
	// after the restart.
	firstProgress time.Time
}

// checkCalls checks the calls: no two calls of one object overlap, and a
// call repeats the content (updated) of the object's previous call of the
// same operation only if that one failed or ended within the outage
// window, when its success could not be recorded.
func checkCalls(calls []testmodels.Call, windowStart, windowEnd, restart time.Time) callReport {
	rep := callReport{calls: len(calls)}
	byRef := map[models.Ref][]testmodels.Call{}
	for _, c := range calls {
		byRef[c.Ref] = append(byRef[c.Ref], c)
		if c.Err == nil && c.Start.After(restart) && (rep.firstProgress.IsZero() || c.End.Before(rep.firstProgress)) {
			rep.firstProgress = c.End
		}
	}
	for ref, cs := range byRef {
		slices.SortFunc(cs, func(a, b testmodels.Call) int { return a.Start.Compare(b.Start) })
		last := map[string]testmodels.Call{}
		for i, c := range cs {
			if i > 0 && c.Start.Before(cs[i-1].End) {
				rep.problems = append(rep.problems, fmt.Sprintf("%s: %s at %s overlaps %s ending %s", ref, c.Op, c.Start.Format(time.StampMilli), cs[i-1].Op, cs[i-1].End.Format(time.StampMilli)))
			}
			if prev, ok := last[c.Op]; ok && prev.Updated.Equal(c.Updated) {
				rep.repeats++
				cut := prev.Err != nil || (!prev.End.Before(windowStart) && !prev.End.After(windowEnd))
				if !cut {
					rep.problems = append(rep.problems, fmt.Sprintf("%s: %s repeated for content %s; the previous call ended %s, outside the outage window %s-%s",
						ref, c.Op, c.Updated.Format(time.StampMicro), prev.End.Format(time.StampMilli), windowStart.Format(time.StampMilli), windowEnd.Format(time.StampMilli)))
				}
			}
			last[c.Op] = c
		}
	}
	return rep
}

// succeeded reports whether calls hold a successful call of op on ref.
func succeeded(calls []testmodels.Call, op string, ref models.Ref) bool {
	return slices.ContainsFunc(calls, func(c testmodels.Call) bool { return c.Op == op && c.Ref == ref && c.Err == nil })
}

// count counts the lines of log that contain s.
func count(log, s string) int { return strings.Count(log, s) }
