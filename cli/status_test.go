package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// fixtureCLI is a Definition over the storetest models and a config.yaml,
// in a fresh directory, pointing at f's schema and at a Temporal address
// where nothing listens.
func fixtureCLI(t *testing.T, f *inspecttest.Fixture) Definition {
	t.Helper()
	t.Chdir(t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	require.NoError(t, os.WriteFile("config.yaml", []byte(fmt.Sprintf(
		"observer_name: fixture\ndatabase_url: %s\ndatabase_schema: %s\ntemporal:\n  host_port: %s\n",
		testenv.DatabaseURL(), f.Store.Schema(), closed)), 0o644))
	return Definition{
		Name:   "fixsync",
		Models: storetest.Registry(t),
		Synchronizer: func(config.Config, *models.Store) (tsync.Synchronizer, error) {
			return tsync.Synchronizer{}, nil
		},
	}
}

// refs returns "Model id" of every object of a status -o json output.
func refs(t *testing.T, out string) []string {
	t.Helper()
	var objs []ObjectState
	require.NoError(t, json.Unmarshal([]byte(out), &objs), out)
	var got []string
	for _, o := range objs {
		got = append(got, fmt.Sprintf("%s %d %s", o.Model, o.ID, o.State))
	}
	return got
}

// status --state lists the objects of one state, deferred and held ones
// included; model names ignore case; an unknown one gets a did-you-mean;
// -o json has snake_case keys; --fail-on-error exits 1 only when a listed
// object is in error; errors [MODEL] exits 1 when it lists any.
func TestStatusStatesAndErrors(t *testing.T) {
	f := inspecttest.New(t)
	def := fixtureCLI(t, f)
	ref := func(model string, id int64, state string) string { return fmt.Sprintf("%s %d %s", model, id, state) }

	code, stdout, stderr := runCLI(t, def, nil, "status", "--state", "deferred", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []string{ref("Slice", f.Deferred.ID, "deferred")}, refs(t, stdout))

	code, stdout, stderr = runCLI(t, def, nil, "status", "--state", "held", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []string{ref("Slice", f.Held.ID, "held"), ref("Instance", f.HeldToo.ID, "held"),
		ref("Instance", f.Dangling.ID, "held")}, refs(t, stdout))

	// Keys are snake_case.
	var raw []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	for _, k := range []string{"model", "id", "state", "code", "status", "deleted", "current", "updated", "enacted"} {
		require.Contains(t, raw[0], k)
	}
	require.NotContains(t, raw[0], "Model")
	require.Equal(t, "deferred: dependency model Image id 999 does not exist", raw[2]["status"])

	// Case-insensitive model names, and the table's STATE column.
	code, stdout, stderr = runCLI(t, def, nil, "status", "slice", "--state", "DEFERRED")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, fmt.Sprintf(`(?m)^Slice\s+%d\s+deferred\s+0\s+no\s+deferred: quota not granted yet$`, f.Deferred.ID), stdout)
	require.Contains(t, stdout, "1 objects, 0 in sync, 0 pending, 1 deferred, 0 held, 0 in error\n")
	code, stdout, stderr = runCLI(t, def, nil, "status")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "9 objects, 2 in sync, 1 pending, 1 deferred, 3 held, 2 in error\n")

	code, stdout, stderr = runCLI(t, def, nil, "status", "Slise")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, `unknown model "Slise" (did you mean Slice?); models: `+strings.Join(f.Store.Graph().Order(), ", ")+"\n", stderr)
	code, _, stderr = runCLI(t, def, nil, "status", "--state", "stuck")
	require.Equal(t, 1, code)
	require.Equal(t, `--state: unknown state "stuck", want one of in-sync, pending, deferred, held, error`+"\n", stderr)

	// --fail-on-error: exit 1 when a listed object has code 2, with the
	// output printed all the same.
	code, stdout, stderr = runCLI(t, def, nil, "status", "--fail-on-error")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stdout, "9 objects")
	require.NotContains(t, stderr, "exit status")
	code, _, stderr = runCLI(t, def, nil, "status", "--state", "in-sync", "--fail-on-error")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(t, def, nil, "status", "--watch", "--fail-on-error")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "do not go together")

	// errors [MODEL] lists code 2 (in error, or held behind an error) and
	// exits 1 when it lists any.
	code, stdout, stderr = runCLI(t, def, nil, "errors")
	require.Equal(t, 1, code, stderr)
	require.Equal(t, fmt.Sprintf("Site %d (error): %s\nSlice %d (held): Failed due to error in model Site id %d: %s\n"+
		"Instance %d (held): Failed due to error in model Site id %d: %s\nInstance %d (error): %s\n4 objects in error\n",
		f.Failed.ID, inspecttest.ErrorText, f.Held.ID, f.Failed.ID, inspecttest.ErrorText,
		f.HeldToo.ID, f.Failed.ID, inspecttest.ErrorText, f.Broken.ID, inspecttest.BrokenText), stdout)
	require.Empty(t, stderr)
	code, stdout, _ = runCLI(t, def, nil, "errors", "INSTANCE", "-o", "json")
	require.Equal(t, 1, code)
	require.Equal(t, []string{ref("Instance", f.HeldToo.ID, "held"), ref("Instance", f.Broken.ID, "error")}, refs(t, stdout))
	code, stdout, stderr = runCLI(t, def, nil, "errors", "image")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "0 objects in error\n", stdout)
}

// describe shows an object's state, its dependency chain (a missing object
// marked) and the dependents it holds; with Temporal unreachable it says
// the workers are unknown rather than failing.
func TestDescribeWithoutTemporal(t *testing.T) {
	f := inspecttest.New(t)
	def := fixtureCLI(t, f)

	code, stdout, stderr := runCLI(t, def, nil, "describe", "instance", fmt.Sprint(f.Dangling.ID))
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, fmt.Sprintf(`^Instance %d\nState:\s+held\nCode:\s+0\nStatus:\s+deferred: dependency model Image id 999 does not exist\n`, f.Dangling.ID), stdout)
	require.Regexp(t, `(?m)^Retries:\s+\S`, stdout)
	require.Regexp(t, `(?m)^Workflow:\s+fixture/Instance/\d+ \(status unknown`, stdout)
	require.Regexp(t, fmt.Sprintf(`(?m)^  Slice %d\s+via slice_id\s+deferred\s+deferred: quota not granted yet$`, f.Deferred.ID), stdout)
	require.Regexp(t, fmt.Sprintf(`(?m)^    Site %d\s+via site_id\s+in-sync\s`, f.InSync.ID), stdout)
	require.Regexp(t, `(?m)^  Image 999\s+via image_id\s+missing\s+does not exist$`, stdout)
	require.Contains(t, stdout, "Holds (depending on it, not in sync):\n  nothing\n")
	require.Regexp(t, `(?m)^  workers unknown: temporal at 127\.0\.0\.1:\d+ is unreachable$`, stdout)

	code, stdout, stderr = runCLI(t, def, nil, "describe", "Site", fmt.Sprint(f.Failed.ID))
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^State:\s+error$`, stdout)
	require.Contains(t, stdout, "Depends on:\n  nothing\n")
	require.Regexp(t, fmt.Sprintf(`(?m)^  Slice %d\s+via site_id\s+held\s+Failed due to error in model Site id %d`, f.Held.ID, f.Failed.ID), stdout)
	require.Regexp(t, fmt.Sprintf(`(?m)^    Instance %d\s+via slice_id\s+held\s`, f.HeldToo.ID), stdout)

	code, stdout, stderr = runCLI(t, def, nil, "describe", "Site", "424242")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "object not found")
}

// syncWriter is a stdout that tells, under a lock, how often a line was
// written.
type syncWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	line string
	seen chan struct{}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), w.line) >= 2 {
		select {
		case <-w.seen:
		default:
			close(w.seen)
		}
	}
	return len(p), nil
}

// status --watch refreshes until its context is cancelled, then exits 0.
func TestStatusWatch(t *testing.T) {
	f := inspecttest.New(t)
	def := fixtureCLI(t, f)
	out := &syncWriter{line: "2 objects, 2 in sync", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- Main(ctx, def, []string{"status", "-w", "--interval", "50ms", "--state", "in-sync"}, out, &stderr, nil)
	}()
	select {
	case <-out.seen:
	case <-time.After(30 * time.Second):
		out.mu.Lock()
		t.Fatalf("status --watch did not refresh twice in 30s: stdout:\n%s\nstderr:\n%s", out.buf.String(), stderr.String())
	}
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(time.Minute):
		t.Fatal("status --watch did not stop within a minute of its context's end")
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	require.Regexp(t, regexp.MustCompile(`^Every 50ms: fixsync status \(Ctrl-C to stop\)  \d\d:\d\d:\d\d\n`), out.buf.String())
}

// missingSchema writes, in a new working directory, the config of a schema
// that does not exist yet, and drops it after the test.
func missingSchema(t *testing.T) string {
	t.Helper()
	t.Chdir(t.TempDir())
	schema := "t_missing_" + testenv.Random(6)
	require.NoError(t, os.WriteFile("config.yaml", []byte("observer_name: gizmos\ndatabase_url: "+testenv.DatabaseURL()+"\ndatabase_schema: "+schema+"\n"), 0o644))
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), testenv.DatabaseURL())
		require.NoError(t, err)
		defer pool.Close()
		_, err = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		require.NoError(t, err)
	})
	return schema
}

// status and errors on a schema that does not exist say so; with
// database_auto_migrate off a worker stops; migrate --dry-run prints DDL
// that creates it.
func TestMissingSchemaAndMigrate(t *testing.T) {
	def := userDefinition()
	schema := missingSchema(t)
	for _, args := range [][]string{{"status"}, {"errors"}, {"describe", "widget", "1"}} {
		code, stdout, stderr := runCLI(t, def, nil, args...)
		require.Equal(t, 1, code, args)
		require.Empty(t, stdout)
		require.Equal(t, "schema "+schema+" does not exist: run `gizmos migrate` to create it (or set database_schema)\n", stderr, args)
	}
	// With database_auto_migrate off, a process does not migrate: it stops.
	code, stdout, stderr := runCLI(t, def, []string{"TSYNC_DATABASE_AUTO_MIGRATE=false"}, "worker")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Regexp(t, `^schema `+schema+` is not up to date with the models \(\d+ DDL statements to run\) and database_auto_migrate is off: `+
		"run `gizmos migrate`, or the DDL that `gizmos migrate --dry-run` prints\n$", stderr)

	// --dry-run prints the DDL and changes nothing; an operator may run it.
	code, ddl, stderr := runCLI(t, def, nil, "migrate", "--dry-run")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^-- schema `+schema+`: \d+ statements to run\nCREATE SCHEMA IF NOT EXISTS "`+schema+`";\nCREATE TABLE IF NOT EXISTS "`+schema+`"."widget" \(`, ddl)
	require.Contains(t, ddl, `CREATE TRIGGER "_tsync_before_delete_gadget" BEFORE DELETE ON "`+schema+`"."gadget" FOR EACH ROW`)
	code, _, stderr = runCLI(t, def, nil, "status")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "does not exist")
	pool, err := pgxpool.New(context.Background(), testenv.DatabaseURL())
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(context.Background(), ddl)
	require.NoError(t, err)
	code, stdout, stderr = runCLI(t, def, nil, "migrate", "--dry-run")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "-- schema "+schema+" is up to date: nothing to run\n", stdout)
	code, stdout, stderr = runCLI(t, def, nil, "migrate")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "schema "+schema+" is up to date: tables widget, gadget\n", stdout)
}

// migrate creates the tables it finds missing, then says they are up to
// date.
func TestMigrateCreates(t *testing.T) {
	def := userDefinition()
	schema := missingSchema(t)
	code, stdout, stderr := runCLI(t, def, nil, "migrate")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "schema "+schema+": created tables widget, gadget\nschema "+schema+" is up to date: tables widget, gadget\n", stdout)
	code, stdout, stderr = runCLI(t, def, nil, "migrate")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "schema "+schema+" is up to date: tables widget, gadget\n", stdout)
}

// version needs no config and prints the Go and Temporal SDK versions;
// completion bash prints cobra's script for the binary's name.
func TestVersionAndCompletion(t *testing.T) {
	t.Chdir(t.TempDir()) // no config.yaml, and no DefaultConfig
	def := userDefinition()
	code, stdout, stderr := runCLI(t, def, []string{"TSYNC_LOOP_INTERVAL=bad"}, "version")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^gizmos \S+`, stdout)
	require.Contains(t, stdout, "\ngo "+runtime.Version()+"\n")
	require.Regexp(t, `(?m)^temporal sdk v1\.\d+\.\d+`, stdout)

	code, stdout, stderr = runCLI(t, def, []string{"TSYNC_LOOP_INTERVAL=bad"}, "completion", "bash")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "# bash completion V2 for gizmos")
	require.Contains(t, stdout, "__start_gizmos")
	code, stdout, stderr = runCLI(t, def, nil, "completion", "zsh")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "#compdef gizmos")
}
