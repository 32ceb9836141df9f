// Package inspect is a read-only model of a synchronizer's objects, for
// operators: each object's sync state (State, from its sync-state columns
// and, when a Temporal client is given, its workflow's live state), its
// dependency chain and the dependents it holds, its workflow's attempts
// and next retry, and counts by state per model. The object view (package
// objectview) and the CLI's describe are built on it. Nothing here writes.
//
//	in := inspect.New(store, temporalClient, inspect.Options{Synchronizer: cfg.ObserverName})
//	obj, err := in.Object(ctx, "Slice", 7)
package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/models"
)

// Options are what an Inspector needs besides the store.
type Options struct {
	// Synchronizer is the synchronizer's name (observer_name): an object's
	// workflow ID is workflows.WorkflowID(Synchronizer, ref).
	Synchronizer string
	// Namespace is the Temporal namespace, for the Web UI links.
	Namespace string
	// UIURL is the base URL of the Temporal Web UI ("": unknown, no links).
	UIURL string
	// QueryTimeout bounds the workflow calls of Object (0: 3s); a query
	// no worker answers takes that long.
	QueryTimeout time.Duration
}

// Inspector reads the objects of a store and their workflows.
type Inspector struct {
	store    *models.Store
	temporal client.Client
	opts     Options
}

// New returns an Inspector of store's objects; temporal may be nil, and
// then Object tells nothing of workflows beyond their ID and link.
func New(store *models.Store, temporal client.Client, opts Options) *Inspector {
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 3 * time.Second
	}
	return &Inspector{store: store, temporal: temporal, opts: opts}
}

// Options returns the Inspector's options (with defaults filled in).
func (i *Inspector) Options() Options { return i.opts }

// Models returns the model names, dependencies first.
func (i *Inspector) Models() []string { return i.store.Graph().Order() }

// ResolveModel returns the model named name, compared case-insensitively.
func (i *Inspector) ResolveModel(name string) (string, error) {
	if _, ok := i.store.Graph().Model(name); ok {
		return name, nil
	}
	for _, m := range i.Models() {
		if strings.EqualFold(m, name) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown model %q, want one of %s", name, strings.Join(i.Models(), ", "))
}

// Node is one model of the dependency graph.
type Node struct {
	Model string
	// DependsOn are the models its links point to, sorted, each once.
	DependsOn []string
}

// Graph returns the model dependency graph, dependencies first.
func (i *Inspector) Graph() []Node {
	g := i.store.Graph()
	var out []Node
	for _, name := range g.Order() {
		n := Node{Model: name}
		for _, l := range g.Dependencies(name) {
			if !slices.Contains(n.DependsOn, l.Dest) {
				n.DependsOn = append(n.DependsOn, l.Dest)
			}
		}
		slices.Sort(n.DependsOn)
		out = append(out, n)
	}
	return out
}

// Filter selects the rows List returns.
type Filter struct {
	// Model is a model name (case-insensitive); "" for all.
	Model string
	// State is a State; "" for all.
	State State
	// Limit is the most rows returned; 0 for no limit.
	Limit int
}

const rowColumns = `id, backend_code, backend_status, deleted, no_sync, lazy_blocked, updated, enacted`

func scanRow(model string, row pgx.CollectableRow) (Row, error) {
	r := Row{Model: model}
	err := row.Scan(&r.ID, &r.Code, &r.Status, &r.Deleted, &r.NoSync, &r.LazyBlocked, &r.Updated, &r.Enacted)
	r.State = Classify(r)
	return r, err
}

// exists reports whether m's table exists (a model not migrated yet has
// no objects).
func (i *Inspector) exists(ctx context.Context, m *models.Model) (bool, error) {
	var ok bool
	if err := i.store.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, i.store.Table(m)).Scan(&ok); err != nil {
		return false, fmt.Errorf("table of %s: %w", m.Name, err)
	}
	return ok, nil
}

// rows returns every row of model, by id.
func (i *Inspector) rows(ctx context.Context, name string) ([]Row, error) {
	m, _ := i.store.Graph().Model(name)
	ok, err := i.exists(ctx, m)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := i.store.Pool().Query(ctx, `SELECT `+rowColumns+` FROM `+i.store.Table(m)+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("objects of %s: %w", name, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) { return scanRow(name, row) })
	if err != nil {
		return nil, fmt.Errorf("objects of %s: %w", name, err)
	}
	return out, nil
}

// List returns the rows f selects, models dependencies first, each by id.
// Their State comes from the columns only (Classify).
func (i *Inspector) List(ctx context.Context, f Filter) ([]Row, error) {
	names := i.Models()
	if f.Model != "" {
		m, err := i.ResolveModel(f.Model)
		if err != nil {
			return nil, err
		}
		names = []string{m}
	}
	if f.State != "" && !slices.Contains(States, f.State) {
		return nil, fmt.Errorf("unknown state %q", f.State)
	}
	var out []Row
	for _, name := range names {
		rows, err := i.rows(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if f.State != "" && r.State != f.State {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) == f.Limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// Count is the number of objects of a model in each State.
type Count struct {
	Model   string
	Total   int
	ByState map[State]int
}

// Counts returns the counts of every model, dependencies first (States
// from the columns only).
func (i *Inspector) Counts(ctx context.Context) ([]Count, error) {
	var out []Count
	for _, name := range i.Models() {
		rows, err := i.rows(ctx, name)
		if err != nil {
			return nil, err
		}
		c := Count{Model: name, ByState: map[State]int{}}
		for _, r := range rows {
			c.Total++
			c.ByState[r.State]++
		}
		out = append(out, c)
	}
	return out, nil
}

// Field is one content field of an object, as text.
type Field struct {
	Column string
	Value  string
	// Link is the model the column links to, or "".
	Link string
}

// Dep is an object of a dependency chain, or a dependent.
type Dep struct {
	// Row holds the object's columns; only Model and ID when Missing.
	Row
	// Depth is 1 for a direct link, 2 for a link of a link, and so on.
	Depth int
	// Via is the link column, on the depending side.
	Via string
	// Missing reports that the linked object does not exist.
	Missing bool
}

// Object is one object with everything operators look at.
type Object struct {
	Row
	Fields []Field
	// Dependencies is the chain through its links, depth first.
	Dependencies []Dep
	// Dependents are the objects depending on it, directly or through
	// others, that are not in sync: those it holds. Breadth first, at most
	// maxDependents.
	Dependents []Dep
	// MoreDependents counts the dependents not in Dependents.
	MoreDependents int
	Workflow       Workflow
}

// maxDependents is the most dependents Object lists.
const maxDependents = 200

// Object returns the object model id (model compared case-insensitively):
// its columns, fields, dependencies, held dependents and workflow. An
// object that does not exist gives models.ErrNotFound, wrapped.
func (i *Inspector) Object(ctx context.Context, model string, id int64) (*Object, error) {
	name, err := i.ResolveModel(model)
	if err != nil {
		return nil, err
	}
	row, obj, err := i.load(ctx, name, id)
	if err != nil {
		return nil, err
	}
	m, _ := i.store.Graph().Model(name)
	o := &Object{Row: row, Fields: fields(m, obj, i.store.Graph())}
	if o.Dependencies, err = i.dependencies(ctx, m, obj, 1); err != nil {
		return nil, err
	}
	if o.Dependents, o.MoreDependents, err = i.dependents(ctx, row.Ref()); err != nil {
		return nil, err
	}
	o.Workflow = i.workflow(ctx, row.Ref())
	if o.Workflow.Live != nil {
		o.State = merge(o.State, liveState(o.Workflow.Live.State))
	}
	return o, nil
}

// merge returns the State of an object whose columns say cols and whose
// running workflow says live: live when it is held, deferred or in error;
// pending rather than in sync while it runs; else cols.
func merge(cols, live State) State {
	switch live {
	case StateHeld, StateDeferred, StateError:
		return live
	case StatePending:
		if cols == StateInSync {
			return StatePending
		}
	}
	return cols
}

// load reads one object, as a Row and as its model's type.
func (i *Inspector) load(ctx context.Context, model string, id int64) (Row, models.Object, error) {
	obj, err := i.store.Get(ctx, model, id)
	if err != nil {
		return Row{}, nil, err
	}
	b := obj.SyncState()
	r := Row{Model: model, ID: id, Code: b.BackendCode, Status: b.BackendStatus, Deleted: b.Deleted,
		NoSync: b.NoSync, LazyBlocked: b.LazyBlocked, Updated: b.Updated, Enacted: b.Enacted}
	r.State = Classify(r)
	return r, obj, nil
}

// fields returns obj's content fields as text.
func fields(m *models.Model, obj models.Object, g *models.Graph) []Field {
	links := map[string]string{}
	for _, l := range g.Dependencies(m.Name) {
		links[l.Via] = l.Dest
	}
	v := reflect.ValueOf(obj).Elem()
	out := make([]Field, 0, len(m.Fields))
	for _, f := range m.Fields {
		value := text(v.FieldByName(f.GoName))
		if f.Secret {
			value = secretText(v.FieldByName(f.GoName))
		}
		out = append(out, Field{Column: f.Column, Value: value, Link: links[f.Column]})
	}
	return out
}

// secretText says whether a secret field is set, never what it holds.
func secretText(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return "null"
	}
	if v.IsZero() {
		return "(secret, empty)"
	}
	return "(secret, set)"
}

// text formats a field's value.
func text(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "null"
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case json.RawMessage:
		return string(x)
	case []byte:
		return fmt.Sprintf("%x", x)
	}
	if v.Kind() == reflect.Map || v.Kind() == reflect.Slice {
		if b, err := json.Marshal(v.Interface()); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v.Interface())
}

// dependencies returns the chain through obj's links, depth first.
func (i *Inspector) dependencies(ctx context.Context, m *models.Model, obj models.Object, depth int) ([]Dep, error) {
	var out []Dep
	for _, l := range i.store.Graph().Dependencies(m.Name) {
		target, ok := m.LinkTarget(obj, l)
		if !ok {
			continue
		}
		row, dobj, err := i.load(ctx, l.Dest, target)
		if errors.Is(err, models.ErrNotFound) {
			out = append(out, Dep{Row: Row{Model: l.Dest, ID: target, State: StatePending}, Depth: depth, Via: l.Via, Missing: true})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dependency %s of %s: %w", models.Ref{Model: l.Dest, ID: target}, m.Name, err)
		}
		out = append(out, Dep{Row: row, Depth: depth, Via: l.Via})
		dm, _ := i.store.Graph().Model(l.Dest)
		more, err := i.dependencies(ctx, dm, dobj, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// dependents returns the objects depending on ref, directly or not, that
// are not in sync, breadth first, at most maxDependents, and how many more.
func (i *Inspector) dependents(ctx context.Context, ref models.Ref) ([]Dep, int, error) {
	g := i.store.Graph()
	var out []Dep
	more := 0
	seen := map[models.Ref]bool{ref: true}
	frontier := []models.Ref{ref}
	for depth := 1; len(frontier) > 0; depth++ {
		var next []models.Ref
		for _, r := range frontier {
			for _, e := range g.Dependents(r.Model) {
				m, _ := g.Model(e.From)
				rows, err := i.store.Pool().Query(ctx, `SELECT `+rowColumns+` FROM `+i.store.Table(m)+` WHERE `+
					pgx.Identifier{e.Link.Via}.Sanitize()+` = $1 ORDER BY id`, r.ID)
				if err != nil {
					return nil, 0, fmt.Errorf("dependents of %s: %w", r, err)
				}
				deps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) { return scanRow(e.From, row) })
				if err != nil {
					return nil, 0, fmt.Errorf("dependents of %s: %w", r, err)
				}
				for _, d := range deps {
					if seen[d.Ref()] {
						continue
					}
					seen[d.Ref()] = true
					if d.State == StateInSync {
						continue
					}
					next = append(next, d.Ref())
					if len(out) == maxDependents {
						more++
						continue
					}
					out = append(out, Dep{Row: d, Depth: depth, Via: e.Link.Via})
				}
			}
		}
		frontier = next
	}
	return out, more, nil
}

// WorkflowURL returns the Temporal Web UI page of workflow workflowID in
// namespace, under the UI at uiURL; "" when uiURL is "".
func WorkflowURL(uiURL, namespace, workflowID string) string {
	if uiURL == "" {
		return ""
	}
	return strings.TrimSuffix(uiURL, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}
