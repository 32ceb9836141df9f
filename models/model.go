// Package models holds what tsync knows about a data model: the model
// definitions step authors register (a Go struct per model, embedding Base),
// the links between them, the dependency graph built from those links, and
// the PostgreSQL store that keeps the objects and their sync state. The
// store's engine halves (the sync-state writers and the outbox's stream
// bookkeeping) are in internal/syncstate and internal/outbox.
//
// A model is declared once, with its links:
//
//	type Site struct {
//		models.Base
//		Name string `db:"name"`
//	}
//
//	type Slice struct {
//		models.Base
//		Name   string `db:"name"`
//		SiteID int64  `db:"site_id"`
//	}
//
//	reg := models.NewRegistry()
//	models.MustRegister[Site](reg, "Site")
//	models.MustRegister[Slice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"})
//	graph, err := reg.Graph() // validates links, refuses cycles
package models

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Backend codes, as in XOS.
const (
	// CodePending marks an object that is pending, in progress or deferred.
	CodePending = 0
	// CodeOK marks an object whose last sync succeeded.
	CodeOK = 1
	// CodeError marks an object whose last sync failed, or that is held behind
	// a failed dependency.
	CodeError = 2
)

// Base holds the sync-state columns every synchronized model has. Embed it
// (not a pointer to it) as the first field of every model struct.
type Base struct {
	// ID is the object's primary key, assigned by the store on Insert.
	ID int64 `db:"id"`
	// Updated is when the content last changed; the store sets it on every save.
	Updated time.Time `db:"updated"`
	// Enacted is the Updated value the last successful sync saw when it began.
	Enacted *time.Time `db:"enacted"`
	// Policed is when model policies last ran for the object.
	Policed *time.Time `db:"policed"`
	// Deleted marks a soft-deleted object, purged once DeleteRecord succeeds.
	Deleted bool `db:"deleted"`
	// BackendCode is CodePending, CodeOK or CodeError.
	BackendCode int `db:"backend_code"`
	// BackendStatus is the text operators read: "OK", an error, "deferred: ...".
	BackendStatus string `db:"backend_status"`
	// BackendNeedDelete is set when a sync is first attempted: only such
	// objects need DeleteRecord when deleted.
	BackendNeedDelete bool `db:"backend_need_delete"`
	// NoSync objects are never synced.
	NoSync bool `db:"no_sync"`
	// LazyBlocked objects are never synced while it is set.
	LazyBlocked bool `db:"lazy_blocked"`
	// WriteProtect objects are never deleted from the backend.
	WriteProtect bool `db:"write_protect"`
}

// SyncState returns the object's sync state. It makes every struct embedding
// Base an Object.
func (b *Base) SyncState() *Base { return b }

// Object is a pointer to a model struct that embeds Base.
type Object interface {
	SyncState() *Base
}

// ObjectPtr is the constraint of tsync's typed adapters (tsync.StepOf and
// the like): PT is *T, a pointer to a model struct embedding Base. It is
// inferred: tsync.StepOf[Site](...) needs no second type argument.
type ObjectPtr[T any] interface {
	*T
	Object
}

// Link declares that objects of a model depend on the Dest object whose id
// is held in this model's column Via. Into names the column of Dest that a
// watcher cares about (empty: any column). LinkTo and LinkInto make a link
// from Dest's Go type, so no model name is typed twice.
type Link struct {
	Dest string
	Via  string
	Into string

	// destType is Dest's Go type, for links made by LinkTo; the graph
	// fills Dest from it.
	destType reflect.Type
}

// LinkTo returns a link to the model registered as T, through column via:
// models.LinkTo[Site]("site_id").
func LinkTo[T any](via string) Link {
	return Link{Via: via, destType: reflect.TypeFor[T]()}
}

// LinkInto is LinkTo whose watchers care only about column into of T.
func LinkInto[T any](via, into string) Link {
	return Link{Via: via, Into: into, destType: reflect.TypeFor[T]()}
}

// Op is what happened to an object.
type Op string

// Operations, as the store announces them and model policies and watchers
// receive them (the XOS handle_create, handle_update, handle_delete).
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Ref addresses one object.
type Ref struct {
	Model string `json:"model"`
	ID    int64  `json:"id"`
}

// String formats the reference as XOS statuses do: "model Site id 3".
func (r Ref) String() string { return fmt.Sprintf("model %s id %d", r.Model, r.ID) }

// Field is one content column of a model.
type Field struct {
	// Column is the column name (the db tag, or the Go name in snake_case).
	Column string
	// GoName is the struct field's name.
	GoName string
	// SQLType is the column's PostgreSQL type and constraints.
	SQLType string
	// Integer reports whether the column holds an integer (links need one).
	Integer bool
	// Secret is set by the struct tag `tsync:"secret"`: the value is never
	// shown by tsync (describe, the object view), only that it is set.
	Secret bool
	index  []int
}

// Model is one registered model: a Go struct type stored in one table.
type Model struct {
	// Name is the model's name, as used in links and workflow IDs ("Site").
	Name string
	// Table is the table's name ("site").
	Table string
	// Links are the model's dependencies.
	Links []Link
	// Fields are the content columns, in struct order (Base excluded).
	Fields []Field
	// Policies reports that the model has model policies: its objects are
	// synced only once policed at or after their last update.
	Policies bool

	typ reflect.Type
}

// New returns a new, zero object of the model.
func (m *Model) New() Object {
	return reflect.New(m.typ).Interface().(Object)
}

// Type returns the model's struct type.
func (m *Model) Type() reflect.Type { return m.typ }

// Field returns the content field of the given column.
func (m *Model) Field(column string) (Field, bool) {
	for _, f := range m.Fields {
		if f.Column == column {
			return f, true
		}
	}
	return Field{}, false
}

// value returns the value of a content field of obj.
func (m *Model) value(obj Object, f Field) any {
	return reflect.ValueOf(obj).Elem().FieldByIndex(f.index).Interface()
}

// LinkTarget returns the id held in obj's Via column of link l, and whether
// it names an object (0 or NULL name none).
func (m *Model) LinkTarget(obj Object, l Link) (int64, bool) {
	f, ok := m.Field(l.Via)
	if !ok {
		return 0, false
	}
	v := reflect.ValueOf(obj).Elem().FieldByIndex(f.index)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0, false
		}
		v = v.Elem()
	}
	id := v.Int()
	return id, id != 0
}

// identifier is the rule for model names and column names: a letter, then
// letters, digits and underscores, 63 characters at most (PostgreSQL's
// limit).
var identifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

// ValidName reports whether name is a valid model name, as Register takes
// them: ^[A-Za-z][A-Za-z0-9_]{0,62}$. It is the one rule of model names;
// whoever checks a model name taken from outside (an announcement, a job)
// uses it.
func ValidName(name string) bool { return identifier.MatchString(name) }

var baseColumns = map[string]bool{
	"id": true, "updated": true, "enacted": true, "policed": true, "deleted": true,
	"backend_code": true, "backend_status": true, "backend_need_delete": true,
	"no_sync": true, "lazy_blocked": true, "write_protect": true,
}

var baseType = reflect.TypeFor[Base]()

// newModel builds a Model from struct type t.
func newModel(name string, t reflect.Type, links []Link) (*Model, error) {
	if !identifier.MatchString(name) {
		return nil, fmt.Errorf("model %q: name must match %s", name, identifier)
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("model %s: %s is not a struct", name, t)
	}
	if t.NumField() == 0 || t.Field(0).Type != baseType || !t.Field(0).Anonymous {
		return nil, fmt.Errorf("model %s: %s must embed models.Base as its first field", name, t)
	}
	m := &Model{Name: name, Table: snake(name), Links: append([]Link(nil), links...), typ: t}
	seen := map[string]bool{}
	for i := 1; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("db")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		col := tag
		if col == "" {
			col = snake(sf.Name)
		}
		if !identifier.MatchString(col) || col != strings.ToLower(col) {
			return nil, fmt.Errorf("model %s field %s: column %q must be lower case and match %s", name, sf.Name, col, identifier)
		}
		if baseColumns[col] {
			return nil, fmt.Errorf("model %s field %s: column %q is reserved for sync state", name, sf.Name, col)
		}
		if seen[col] {
			return nil, fmt.Errorf("model %s field %s: duplicate column %q", name, sf.Name, col)
		}
		seen[col] = true
		sqlType, integer, err := sqlTypeOf(sf.Type)
		if err != nil {
			return nil, fmt.Errorf("model %s field %s: %w", name, sf.Name, err)
		}
		secret := false
		if opts, ok := sf.Tag.Lookup("tsync"); ok {
			for _, o := range strings.Split(opts, ",") {
				if o != "secret" {
					return nil, fmt.Errorf("model %s field %s: unknown tsync tag option %q (known: secret)", name, sf.Name, o)
				}
				secret = true
			}
		}
		m.Fields = append(m.Fields, Field{Column: col, GoName: sf.Name, SQLType: sqlType, Integer: integer, Secret: secret, index: sf.Index})
	}
	return m, nil
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// sqlTypeOf maps a Go field type to a PostgreSQL column type.
func sqlTypeOf(t reflect.Type) (string, bool, error) {
	nullable := t.Kind() == reflect.Pointer
	if nullable {
		t = t.Elem()
	}
	var typ string
	integer := false
	switch {
	case t == timeType:
		typ = "timestamptz"
	case t == rawType:
		typ = "jsonb"
	case t.Kind() == reflect.String:
		typ = "text"
	case t.Kind() == reflect.Bool:
		typ = "boolean"
	case t.Kind() == reflect.Int64 || t.Kind() == reflect.Int:
		typ, integer = "bigint", true
	case t.Kind() == reflect.Int32:
		typ, integer = "integer", true
	case t.Kind() == reflect.Float64:
		typ = "double precision"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		typ = "bytea"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		typ = "text[]"
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		typ = "jsonb"
	default:
		return "", false, fmt.Errorf("unsupported type %s", t)
	}
	if nullable {
		return typ, integer, nil
	}
	switch typ {
	case "text":
		return "text NOT NULL DEFAULT ''", integer, nil
	case "boolean":
		return "boolean NOT NULL DEFAULT false", integer, nil
	case "bigint", "integer", "double precision":
		return typ + " NOT NULL DEFAULT 0", integer, nil
	}
	return typ, integer, nil
}

// snake turns "NetworkSlice" into "network_slice".
func snake(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i, r := range runes {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(runes[i-1]) || (i+1 < len(runes) && unicode.IsLower(runes[i+1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
