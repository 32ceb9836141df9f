package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/cli"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/objectview"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testenv/certs"
	"github.com/tsync/tsync/models"
)

// account holds a secret field.
type account struct {
	models.Base
	Name     string `db:"name"`
	Password string `db:"password" tsync:"secret"`
}

const (
	fieldSecret = "PLANTED-FIELD-7f3a91"
	dbSecret    = "PLANTED-DB-9c1e22"
	keySecret   = "PLANTED-KEY-2b8d05"
)

func accountSynchronizer() tsync.Synchronizer {
	reg := models.NewRegistry()
	models.MustRegister[account](reg, "Account")
	return tsync.Synchronizer{Models: reg, Steps: []tsync.Step{tsync.StepOf[account](tsync.StepFuncs[account]{
		Sync: func(_ context.Context, a *account) error {
			if a.Name == "refused" {
				return errors.New("backend refused account " + a.Name)
			}
			return nil
		},
		Delete: func(context.Context, *account) error { return nil },
	})}}
}

// A secret in a model field, the database URL's password and the Temporal
// API key appear in no workflow history, memo, search attribute, log line
// (at debug level), tsync output or object view page, for a run with syncs,
// an error, an update and a delete.
func TestSecretsStaySecret(t *testing.T) {
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	u, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), dbSecret) // trust auth: any password
	cfg.DatabaseURL = u.String()
	// An API key goes only over TLS: the dev server behind a TLS proxy,
	// which passes the key on (the dev server takes any).
	cfg.Temporal.HostPort, cfg.Temporal.TLSCAFile = tlsProxy(t, temporalServer.HostPort())
	cfg.Temporal.TLSServerName = certs.ServerName
	cfg.Temporal.APIKey = keySecret
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := openEnv(t, cfg, accountSynchronizer(), log)
	e.background(e.app.Run)

	ok := e.insert(&account{Name: "ok", Password: fieldSecret})
	refused := e.insert(&account{Name: "refused", Password: fieldSecret + "-2"})
	gone := e.insert(&account{Name: "gone", Password: fieldSecret + "-3"})
	e.waitInSync(15*time.Second, ok, gone)
	require.Eventually(t, func() bool { return e.get(refused).BackendCode == models.CodeError }, 15*time.Second, 20*time.Millisecond)
	obj, err := models.Load[account](e.ctx, e.app.Store, ok.ID)
	require.NoError(t, err)
	obj.Password = fieldSecret + "-new"
	require.NoError(t, e.app.Store.Save(e.ctx, obj))
	require.NoError(t, e.app.Store.Delete(e.ctx, "Account", gone.ID))
	e.waitInSync(15*time.Second, ok)
	e.waitGone(15*time.Second, gone)

	var scanned []string
	scan := func(what, text string) {
		t.Helper()
		for _, secret := range []string{fieldSecret, dbSecret, keySecret} {
			require.NotContains(t, text, secret, "%s shows a secret", what)
		}
		scanned = append(scanned, what)
	}

	// Every workflow's history, memo and search attributes.
	c := e.app.Client
	list, err := c.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf(`TaskQueue = %q`, cfg.Temporal.TaskQueue)})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(list.Executions), 3)
	refusedSeen := false
	for _, ex := range list.Executions {
		id, run := ex.Execution.WorkflowId, ex.Execution.RunId
		scan("list entry of "+id, protoText(t, ex))
		desc, err := c.DescribeWorkflow(e.ctx, id, run)
		require.NoError(t, err)
		scan("memo and search attributes of "+id, protoText(t, desc.RawResponse))
		var history strings.Builder
		it := c.GetWorkflowHistory(e.ctx, id, run, false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			history.WriteString(protoText(t, ev))
		}
		if strings.HasSuffix(id, fmt.Sprintf("/Account/%d", refused.ID)) {
			// Payloads are shown as text: the scan sees what they carry.
			require.Contains(t, history.String(), "backend refused account refused", "a real history")
			refusedSeen = true
		}
		scan("history of "+id, history.String())
	}

	require.True(t, refusedSeen)

	// The command line, with the same secrets in its environment.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(fmt.Sprintf(
		"observer_name: %s\ndatabase_schema: %s\ntemporal:\n  host_port: %s\n  task_queue: %s\n  tls_ca_file: %s\n  tls_server_name: %s\n",
		cfg.ObserverName, schema, cfg.Temporal.HostPort, cfg.Temporal.TaskQueue, cfg.Temporal.TLSCAFile, certs.ServerName)), 0o644))
	t.Chdir(dir)
	env := []string{"TSYNC_DATABASE_URL=" + cfg.DatabaseURL, "TSYNC_TEMPORAL_API_KEY=" + keySecret}
	def := cli.Definition{Name: "accounts", Models: accountSynchronizer().Models,
		Synchronizer: func(config.Config, *models.Store) (tsync.Synchronizer, error) { return accountSynchronizer(), nil }}
	for _, args := range [][]string{
		{"status"}, {"status", "-o", "json"}, {"errors"}, {"errors", "-o", "json"},
		{"describe", "account", fmt.Sprint(ok.ID)}, {"describe", "account", fmt.Sprint(refused.ID)},
		{"deps"}, {"health"}, {"migrate", "--dry-run"}, {"resync", "account", fmt.Sprint(ok.ID)},
	} {
		var stdout, stderr bytes.Buffer
		code := cli.Main(e.ctx, def, args, &stdout, &stderr, env)
		out := stdout.String() + stderr.String()
		scan(fmt.Sprintf("accounts %s (exit %d)", strings.Join(args, " "), code), out)
		if args[0] == "describe" {
			require.Equal(t, 0, code, out)
			require.Contains(t, out, "(secret, set)")
		}
	}
	// A bad config names the URL without its password.
	var stdout, stderr bytes.Buffer
	cli.Main(e.ctx, def, []string{"status"}, &stdout, &stderr, append(env, "TSYNC_DATABASE_URL=postgres://u:"+dbSecret+"@127.0.0.1:1/x"))
	require.Contains(t, stderr.String(), "127.0.0.1:1")
	scan("status against an unreachable database", stdout.String()+stderr.String())

	// The object view's pages.
	in := inspect.New(e.app.Store, c, inspect.Options{Synchronizer: cfg.ObserverName, Namespace: cfg.Temporal.Namespace})
	v, err := objectview.New(in, objectview.Options{Title: "accounts"})
	require.NoError(t, err)
	srv := httptest.NewServer(v)
	defer srv.Close()
	for _, p := range []string{"/", "/objects", "/objects?state=error", fmt.Sprintf("/objects/Account/%d", ok.ID), fmt.Sprintf("/objects/Account/%d", refused.ID), "/graph"} {
		resp, err := http.Get(srv.URL + p)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		scan("object view "+p, string(body))
	}

	// Every log line, at debug level, last: after everything above.
	require.Contains(t, logs.String(), `"msg":"step"`, "the logs are real")
	scan("the logs", logs.String())
	t.Logf("scanned %d sources for 3 planted secrets: none found", len(scanned))
}

// tlsProxy serves TLS (HTTP/2) at the address it returns, with a server
// certificate signed by the CA file it returns, and passes the plain bytes
// on to backend, until the test ends.
func tlsProxy(t *testing.T, backend string) (addr, caFile string) {
	t.Helper()
	files, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(files.ServerCertFile, files.ServerKeyFile)
	require.NoError(t, err)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }() //nolint:errcheck
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return l.Addr().String(), files.CAFile
}

// protoText is m as text, bytes fields (payloads) included as text.
func protoText(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := prototext.Marshal(m)
	require.NoError(t, err)
	return string(b)
}
