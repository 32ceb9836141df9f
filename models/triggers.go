package models

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Any writer: Migrate installs triggers on every model's table, so that a
// change made by any client (tsync's store, another service, psql, a
// migration script) is seen as if the store had made it:
//
//   - A content change (a field's column, no_sync, lazy_blocked,
//     write_protect or deleted) bumps updated, unless the statement itself
//     moved updated forward; a change of sync-state columns alone
//     (enacted, policed, backend_*) does not.
//   - Every insert, content update and delete is announced on the store's
//     channel (Channel) and, with the outbox on, written to the outbox, in
//     the writer's transaction. A statement that changes more than
//     ManyChanges rows announces them in one OpMany announcement (the
//     outbox still gets one entry per row).
//   - A hard DELETE of an object the backend has (backend_need_delete)
//     becomes a soft delete: the row stays, marked deleted, until its
//     DeleteRecord has run (in dependency order, with its last content);
//     then tsync purges it. Rows the backend never had go at once.
//   - TRUNCATE is refused: it would orphan backend objects and fire no row
//     trigger.
//   - The id of an object cannot change (it names the object's workflows).
//
// tsync's own purge sets the transaction-local setting tsync.purge, which
// lets its DELETE through unannounced; model policies set
// tsync.change_op to announce their changes as OpPoliced.

// ManyChanges is the most rows one statement announces one by one; a
// statement changing more announces them as one OpMany change, and the
// starter scans instead of starting each.
const ManyChanges = 100

// Settings read by the triggers (transaction-local, set with set_config).
const (
	// SettingPurge, "on", lets a DELETE through the triggers unannounced:
	// tsync's purge of an object its backend no longer has.
	SettingPurge = "tsync.purge"
	// SettingChangeOp overrides the operation announced for the updates
	// of the transaction (OpPoliced for model policies).
	SettingChangeOp = "tsync.change_op"
)

// triggerPrefix starts the name of every function and trigger tsync
// installs; nothing else in a model's schema may use it.
const triggerPrefix = "_tsync_"

// routineName names a function or trigger of table: prefix + table, cut and
// hashed to stay within PostgreSQL's 63 bytes.
func routineName(kind, table string) string {
	name := triggerPrefix + kind + "_" + table
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(table))
	return fmt.Sprintf("%s_%08x", name[:63-9], h.Sum32())
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on since PostgreSQL 9.1).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// watchedColumns are the columns whose change is a content change: the
// fields, the operator flags and deleted.
func (m *Model) watchedColumns() []string {
	cols := make([]string, 0, len(m.Fields)+4)
	for _, f := range m.Fields {
		cols = append(cols, f.Column)
	}
	return append(cols, "no_sync", "lazy_blocked", "write_protect", "deleted")
}

// rowOf is "(P.a, P.b, ...)" for the quoted columns of cols.
func rowOf(p string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = p + "." + pgx.Identifier{c}.Sanitize()
	}
	return "ROW(" + strings.Join(parts, ", ") + ")"
}

// trigger is one function tsync installs on a model's table, with its
// triggers.
type trigger struct {
	function string
	// body is the function's source (pg_proc.prosrc), compared by Plan.
	body     string
	triggers []triggerDef
}

type triggerDef struct {
	name string
	// def is what follows "CREATE TRIGGER name".
	def string
}

// triggers returns the functions and triggers of m's table.
func (s *Store) triggers(m *Model) []trigger {
	t := s.table(m)
	watched := m.watchedColumns()
	before := `
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.id IS DISTINCT FROM OLD.id THEN
			RAISE EXCEPTION 'tsync: the id of a % object cannot change (% to %)', ` + quoteLiteral(m.Name) + `, OLD.id, NEW.id;
		END IF;
		IF NEW.updated <= OLD.updated AND ` + rowOf("NEW", watched) + ` IS DISTINCT FROM ` + rowOf("OLD", watched) + ` THEN
			NEW.updated := greatest(clock_timestamp(), OLD.updated + interval '1 microsecond');
		END IF;
		RETURN NEW;
	END IF;
	-- DELETE
	IF OLD.backend_need_delete AND current_setting(` + quoteLiteral(SettingPurge) + `, true) IS DISTINCT FROM 'on' THEN
		-- The backend has it: delete it there first (a soft delete).
		UPDATE ` + t + ` SET deleted = true WHERE id = OLD.id AND NOT deleted;
		RETURN NULL;
	END IF;
	RETURN OLD;
END`

	fields := make([]string, len(watched))
	for i, c := range watched {
		q := pgx.Identifier{c}.Sanitize()
		fields[i] = `CASE WHEN n.` + q + ` IS DISTINCT FROM o.` + q + ` THEN ` + quoteLiteral(c) + ` END`
	}
	model := quoteLiteral(m.Name)
	outbox := ""
	if s.outbox {
		outbox = `
	INSERT INTO ` + s.outboxTable() + ` (change) SELECT c::jsonb FROM unnest(changes) WITH ORDINALITY AS u(c, i) ORDER BY i;`
	}
	changed := `
DECLARE
	changes text[];
	op text := coalesce(nullif(current_setting(` + quoteLiteral(SettingChangeOp) + `, true), ''), 'update');
BEGIN
	IF TG_OP = 'INSERT' THEN
		SELECT array_agg(json_build_object('model', ` + model + `, 'id', n.id, 'op', 'create', 'updated', n.updated)::text ORDER BY n.id)
			INTO changes FROM new_rows n;
	ELSIF TG_OP = 'UPDATE' THEN
		SELECT array_agg(json_strip_nulls(json_build_object('model', ` + model + `, 'id', n.id, 'updated', n.updated,
				'op', CASE WHEN n.deleted AND NOT o.deleted THEN 'delete' ELSE op END,
				'fields', CASE WHEN n.deleted AND NOT o.deleted THEN NULL
					ELSE nullif(array_remove(ARRAY[` + strings.Join(fields, ",\n\t\t\t\t\t\t") + `]::text[], NULL), '{}') END))::text ORDER BY n.id)
			INTO changes
			FROM new_rows n JOIN old_rows o ON o.id = n.id
			WHERE n.updated IS DISTINCT FROM o.updated OR ` + rowOf("n", watched) + ` IS DISTINCT FROM ` + rowOf("o", watched) + `;
	ELSE
		IF current_setting(` + quoteLiteral(SettingPurge) + `, true) = 'on' THEN
			RETURN NULL;
		END IF;
		SELECT array_agg(json_build_object('model', ` + model + `, 'id', o.id, 'op', 'delete', 'updated', o.updated)::text ORDER BY o.id)
			INTO changes FROM old_rows o;
	END IF;
	IF changes IS NULL THEN
		RETURN NULL;
	END IF;` + outbox + `
	IF cardinality(changes) <= ` + fmt.Sprint(ManyChanges) + ` THEN
		PERFORM pg_notify(` + quoteLiteral(s.Channel()) + `, c) FROM unnest(changes) WITH ORDINALITY AS u(c, i) ORDER BY i;
	ELSE
		PERFORM pg_notify(` + quoteLiteral(s.Channel()) + `, json_build_object('model', ` + model + `, 'op', 'many', 'count', cardinality(changes))::text);
	END IF;
	RETURN NULL;
END`

	truncate := `
BEGIN
	IF current_setting(` + quoteLiteral(SettingPurge) + `, true) = 'on' THEN
		RETURN NULL;
	END IF;
	RAISE EXCEPTION 'tsync: TRUNCATE of %''s table is refused: it would leave its objects in the backend with no DeleteRecord; DELETE the rows instead (objects the backend has are then deleted from it first)', ` + model + `
		USING ERRCODE = 'feature_not_supported';
END`

	beforeFn := pgx.Identifier{s.schema, routineName("before", m.Table)}.Sanitize()
	changedFn := pgx.Identifier{s.schema, routineName("changed", m.Table)}.Sanitize()
	truncateFn := pgx.Identifier{s.schema, routineName("truncate", m.Table)}.Sanitize()
	return []trigger{
		{function: routineName("before", m.Table), body: before, triggers: []triggerDef{
			// Sync-state writes (most of tsync's own) skip the call.
			{routineName("before", m.Table), `BEFORE UPDATE ON ` + t + ` FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id OR ` +
				rowOf("NEW", watched) + ` IS DISTINCT FROM ` + rowOf("OLD", watched) + `) EXECUTE FUNCTION ` + beforeFn + `()`},
			{routineName("before_delete", m.Table), `BEFORE DELETE ON ` + t + ` FOR EACH ROW EXECUTE FUNCTION ` + beforeFn + `()`},
		}},
		{function: routineName("changed", m.Table), body: changed, triggers: []triggerDef{
			{routineName("inserted", m.Table), `AFTER INSERT ON ` + t + ` REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ` + changedFn + `()`},
			{routineName("updated", m.Table), `AFTER UPDATE ON ` + t + ` REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ` + changedFn + `()`},
			{routineName("deleted", m.Table), `AFTER DELETE ON ` + t + ` REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ` + changedFn + `()`},
		}},
		{function: routineName("truncate", m.Table), body: truncate, triggers: []triggerDef{
			{routineName("truncate", m.Table), `BEFORE TRUNCATE ON ` + t + ` FOR EACH STATEMENT EXECUTE FUNCTION ` + truncateFn + `()`},
		}},
	}
}

// source is tr's function source as installed: its body, then a comment
// naming a hash of its triggers' definitions, so that a change of either
// shows as a change of the source.
func (tr trigger) source() string {
	h := fnv.New64a()
	for _, d := range tr.triggers {
		h.Write([]byte(d.name + " " + d.def + "\n"))
	}
	return tr.body + fmt.Sprintf("\n-- triggers %016x\n", h.Sum64())
}

// triggerDDL returns the statements that install tr: its function when
// replace is set, and then all its triggers, else only those missing.
func (s *Store) triggerDDL(m *Model, tr trigger, replace bool, missing map[string]bool) []string {
	var stmts []string
	if replace {
		stmts = append(stmts, `CREATE OR REPLACE FUNCTION `+pgx.Identifier{s.schema, tr.function}.Sanitize()+`() RETURNS trigger LANGUAGE plpgsql AS $tsync$`+tr.source()+`$tsync$`)
	}
	for _, d := range tr.triggers {
		if !replace && !missing[d.name] {
			continue
		}
		name := pgx.Identifier{d.name}.Sanitize()
		stmts = append(stmts,
			`DROP TRIGGER IF EXISTS `+name+` ON `+s.table(m),
			`CREATE TRIGGER `+name+` `+d.def)
	}
	return stmts
}
