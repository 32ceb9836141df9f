// Package cluster runs a production-shaped Temporal cluster on this machine:
// the Temporal server's four services (frontend, history, matching, worker)
// as separate processes persisting to PostgreSQL with SQL visibility, and
// the Temporal Web UI server. `make cluster` and `tsync dev cluster` start
// one that outlives them; tests start one per test and kill and restart its
// services one by one.
//
// The binaries come from the Go module proxy (see the Makefile's cluster
// tools): bin/temporal-server (go.temporal.io/server/cmd/server),
// bin/temporal-sql-tool (go.temporal.io/server/cmd/tools/sql) and
// bin/temporal-ui-server (github.com/temporalio/ui-server/v2/cmd/server).
//
// Start creates the cluster's two databases when they are missing, brings
// their schemas to the server's version with the sql tool (skipped when they
// are there already), writes one server config and one UI config into
// Options.Dir, starts the processes, registers the namespace and returns
// once the namespace serves. Everything a cluster writes is in Dir: the
// configs (config/cluster.yaml, ui/cluster.yaml), a log and a pid file per
// process (history.log, history.pid, ..., ui.log, ui.pid), the sql tool's
// log (sql-tool.log) and cluster.json, which says where it listens.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// ServerVersion is the Temporal server release the cluster runs: the
// Makefile builds its binaries at this version, and the PostgreSQL schemas
// come from this version's module.
const ServerVersion = "v1.29.1"

// Services are the Temporal server's services, in start order.
var Services = []string{"history", "matching", "frontend", "worker"}

// UI is the name Kill and Restart know the Web UI server by.
const UI = "ui"

// Options say where and how a cluster runs. Zero values take the documented
// defaults.
type Options struct {
	// BinDir holds temporal-server, temporal-sql-tool and
	// temporal-ui-server (needed only with a UI). "": bin/ next to the
	// go.mod at or above the working directory.
	BinDir string
	// Dir holds the generated configs, the logs and the pid files
	// (required; created when missing).
	Dir string
	// DatabaseURL is a PostgreSQL URL whose role may CREATE DATABASE
	// (required). The cluster's databases live on the same server.
	DatabaseURL string
	// Database is the persistence database (required); visibility is
	// Database+"_visibility". Both are created when missing.
	Database string
	// Host is the address every process listens on. "": 127.0.0.1.
	Host string
	// Port is the frontend's gRPC port; the other services take the ports
	// after it (history Port+1, matching Port+2, worker Port+3) and their
	// membership ports are Port+100 to Port+103. 0: free ports for
	// everything (tests).
	Port int
	// UIPort is the Web UI's port. 0: a free port. -1: no Web UI.
	UIPort int
	// Namespace is registered at start. "": "default".
	Namespace string
	// Command is the command that manages the cluster, for hints such as
	// "`tsync dev cluster stop`". "": tsync.
	Command string
	// TLS, when set, makes the frontend require mTLS.
	TLS *TLS
	// Detached processes outlive the caller (make cluster; StopDir stops
	// them); otherwise they die with it.
	Detached bool
	// Log gets a line per step of Start, with its duration. nil: nothing.
	Log *slog.Logger
	// LogLevel is the Temporal services' log level. "": "info".
	LogLevel string
	// AsyncCommit turns synchronous_commit off in the cluster's two
	// databases, for speed: commits do not wait for the disk, and a crash
	// of PostgreSQL itself (not of a Temporal service) could lose the last
	// ones. For tests; false sets the server's default back.
	AsyncCommit bool
	// SchemaDir is the directory holding the PostgreSQL schemas
	// (postgresql/v12/temporal/versioned and .../visibility/versioned).
	// "": the schema directory of go.temporal.io/server@ServerVersion in
	// the Go module cache, downloaded when missing.
	SchemaDir string
}

// TLS are the PEM files of the frontend's mTLS.
type TLS struct {
	// CAFile is the CA that signed the server and client certificates.
	CAFile string
	// CertFile and KeyFile are the frontend's server certificate (its SANs
	// must cover Host, or ServerName when set).
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are the certificate the cluster's
	// own services (and Start's checks, and the Web UI) present to the
	// frontend.
	ClientCertFile, ClientKeyFile string
	// ServerName is the name clients verify the frontend's certificate
	// against. "": the host they dial.
	ServerName string
}

// Cluster is a running cluster Start started.
type Cluster struct {
	opts     Options
	dir      string
	bins     binaries
	ports    ports
	db       *database
	tls      *clientTLS
	log      *slog.Logger
	hostPort string
	uiURL    string

	mu    sync.Mutex
	procs map[string]*process
}

// Start creates and migrates the cluster's databases, starts its services
// and the Web UI, registers the namespace and returns once the namespace
// serves: it describes, and lists workflows. When Start fails it stops what
// it started; the databases stay.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	if st, err := ReadStatus(c.dir); err != nil {
		return nil, err
	} else if st.Running() > 0 {
		return nil, fmt.Errorf("cluster: a cluster started in %s still runs (%d processes): stop it first", c.dir, st.Running())
	}
	if err := c.prepare(ctx); err != nil {
		return nil, err
	}
	c.log.Info("cluster: databases ready", "database", c.db.names[0], "visibility", c.db.names[1], "took", since(begin))
	if err := c.launch(ctx); err != nil {
		c.stopAll()
		return nil, err
	}
	if err := writeState(c.dir, c.state()); err != nil {
		c.stopAll()
		return nil, err
	}
	c.log.Info("cluster: serving", "frontend", c.hostPort, "ui", c.uiURL, "namespace", c.opts.Namespace, "dir", c.dir, "took", since(begin))
	return c, nil
}

// newCluster validates opts, fills in their defaults and picks the ports.
func newCluster(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("cluster: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cluster: dir %s: %w", opts.Dir, err)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if ip := net.ParseIP(opts.Host); ip == nil {
		return nil, fmt.Errorf("cluster: host %q is not an IP address", opts.Host)
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Port < 0 || opts.Port > 65535-103 {
		return nil, fmt.Errorf("cluster: port %d out of range", opts.Port)
	}
	if opts.UIPort < -1 || opts.UIPort > 65535 {
		return nil, fmt.Errorf("cluster: UI port %d out of range", opts.UIPort)
	}
	db, err := newDatabase(opts.DatabaseURL, opts.Database)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, dir: dir, db: db, log: opts.Log, procs: map[string]*process{}}
	if opts.TLS != nil {
		if c.tls, err = loadClientTLS(*opts.TLS); err != nil {
			return nil, err
		}
	}
	if c.bins, err = findBinaries(opts.BinDir, opts.UIPort >= 0); err != nil {
		return nil, err
	}
	if c.ports, err = pickPorts(opts.Host, opts.Port, opts.UIPort, opts.Command); err != nil {
		return nil, err
	}
	c.hostPort = net.JoinHostPort(dialHost(opts.Host), strconv.Itoa(c.ports.grpc["frontend"]))
	if c.ports.ui > 0 {
		c.uiURL = fmt.Sprintf("http://%s/namespaces/%s/workflows", net.JoinHostPort(dialHost(opts.Host), strconv.Itoa(c.ports.ui)), url.PathEscape(opts.Namespace))
	}
	return c, nil
}

// prepare makes Dir, the databases and their schemas, and the configs.
func (c *Cluster) prepare(ctx context.Context) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := c.db.ensure(ctx, c.opts.SchemaDir, c.opts.AsyncCommit, c.bins.sqlTool, filepath.Join(c.dir, "sql-tool.log"), c.log); err != nil {
		return err
	}
	if err := writeServerConfig(c.dir, c.serverConfig()); err != nil {
		return err
	}
	if c.ports.ui > 0 {
		if err := writeUIConfig(c.dir, c.uiConfig()); err != nil {
			return err
		}
	}
	for _, name := range append(slices.Clone(Services), UI) {
		if name == UI && c.ports.ui <= 0 {
			continue
		}
		c.procs[name] = c.newProcess(name)
	}
	return nil
}

// launch starts the processes and waits until the namespace serves. The
// history service goes first, alone, until it answers: a process that
// starts initializes (or updates) the cluster's metadata record, and
// concurrent first writers would fail each other.
func (c *Cluster) launch(ctx context.Context) error {
	begin := time.Now()
	history := c.procs["history"]
	if err := history.spawn(); err != nil {
		return err
	}
	if err := history.waitUntil(ctx, c.answers("history")); err != nil {
		return err
	}
	for _, name := range Services[1:] {
		if err := c.procs[name].spawn(); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range Services {
		p := c.procs[name]
		g.Go(func() error {
			if err := p.waitUntil(gctx, p.ready); err != nil {
				return err
			}
			c.log.Info("cluster: service serving", "service", name, "pid", p.pid(), "took", since(begin))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	c.log.Info("cluster: services serving", "took", since(begin))

	begin = time.Now()
	g, gctx = errgroup.WithContext(ctx)
	if ui := c.procs[UI]; ui != nil {
		g.Go(func() error { return ui.start(gctx) })
	}
	g.Go(func() error { return c.registerNamespace(gctx) })
	if err := g.Wait(); err != nil {
		return err
	}
	c.log.Info("cluster: namespace serving", "namespace", c.opts.Namespace, "took", since(begin))
	return nil
}

// HostPort is the frontend's gRPC address.
func (c *Cluster) HostPort() string { return c.hostPort }

// UIURL is the Web UI's URL of the namespace's workflows; "" without UI.
func (c *Cluster) UIURL() string { return c.uiURL }

// Namespace is the namespace Start registered.
func (c *Cluster) Namespace() string { return c.opts.Namespace }

// Dir is the directory holding the configs, logs and pid files.
func (c *Cluster) Dir() string { return c.dir }

// LogFile is the log of a service (or UI).
func (c *Cluster) LogFile(service string) string { return logFile(c.dir, service) }

// PID is the process id of a service (or UI), 0 when it does not run.
func (c *Cluster) PID(service string) int {
	p, err := c.process(service)
	if err != nil {
		return 0
	}
	return p.pid()
}

// Kill kills one service (or UI) with SIGKILL, as a crash would, and waits
// until it has exited. Killing a service that does not run does nothing.
func (c *Cluster) Kill(service string) error {
	p, err := c.process(service)
	if err != nil {
		return err
	}
	return p.kill()
}

// Restart starts a service (or UI) again, after Kill, and waits until it
// serves (for the frontend: until the namespace serves through it too).
// It fails if the service runs.
func (c *Cluster) Restart(ctx context.Context, service string) error {
	p, err := c.process(service)
	if err != nil {
		return err
	}
	if err := p.start(ctx); err != nil {
		return err
	}
	if service == "frontend" {
		return c.waitNamespace(ctx)
	}
	return nil
}

// Stop stops every process of the cluster (SIGTERM, then SIGKILL after
// 20 s) and removes its pid files and cluster.json. The databases stay.
func (c *Cluster) Stop() error {
	err := c.stopAll()
	if rerr := os.Remove(stateFile(c.dir)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// stopAll stops the processes, all at once.
func (c *Cluster) stopAll() error {
	c.mu.Lock()
	procs := make([]*process, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.stop(stopGrace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Drop drops the cluster's two databases; call it after Stop (tests).
func (c *Cluster) Drop(ctx context.Context) error {
	return c.db.drop(ctx)
}

func (c *Cluster) process(service string) (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[service]
	if !ok {
		if service == UI {
			return nil, errors.New("cluster: it runs without a Web UI")
		}
		return nil, fmt.Errorf("cluster: no service %q (services: %v, and %q)", service, Services, UI)
	}
	return p, nil
}

// stopGrace is how long Stop waits for a process after SIGTERM.
const stopGrace = 20 * time.Second

// dialHost is the host to dial for a listen host: a wildcard listens on
// the loopback too.
func dialHost(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return host
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
