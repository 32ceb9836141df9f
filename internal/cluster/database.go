package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	gonet "net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
)

// visibilitySuffix names the visibility database after the persistence one.
const visibilitySuffix = "_visibility"

// database is the PostgreSQL server of a cluster and its two databases.
type database struct {
	// admin connects to the database DatabaseURL names, to create and drop
	// the cluster's.
	admin *pgx.ConnConfig
	// names are the persistence and the visibility database.
	names [2]string
	host  string
	port  uint16
	user  string
	pass  string
	// tls is set when the URL requires TLS; verify when it also verifies
	// the server's name (sslmode=verify-full).
	tls, verify bool
}

// newDatabase checks a cluster's PostgreSQL URL and database name.
func newDatabase(url, name string) (*database, error) {
	if url == "" {
		return nil, errors.New("cluster: Options.DatabaseURL is required")
	}
	if name == "" {
		return nil, errors.New("cluster: Options.Database is required")
	}
	if len(name)+len(visibilitySuffix) > 63 {
		return nil, fmt.Errorf("cluster: database name %q is too long (PostgreSQL allows 63 bytes with %q appended)", name, visibilitySuffix)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: database URL: %w", err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return nil, fmt.Errorf("cluster: database URL: the Temporal server needs a TCP address, not the socket %s", cfg.Host)
	}
	db := &database{
		admin: cfg,
		names: [2]string{name, name + visibilitySuffix},
		host:  cfg.Host,
		port:  cfg.Port,
		user:  cfg.User,
		pass:  cfg.Password,
	}
	// TLS is required when neither the config nor a fallback goes without.
	if cfg.TLSConfig != nil {
		db.tls = true
		for _, f := range cfg.Fallbacks {
			if f.TLSConfig == nil {
				db.tls = false
			}
		}
		db.verify = db.tls && !cfg.TLSConfig.InsecureSkipVerify
	}
	if cfg.Database == db.names[0] || cfg.Database == db.names[1] {
		return nil, fmt.Errorf("cluster: database URL names the cluster's own database %s: name another (e.g. postgres)", cfg.Database)
	}
	return db, nil
}

// connect connects to one of the cluster's databases ("" = the admin one).
func (d *database) connect(ctx context.Context, name string) (*pgx.Conn, error) {
	cfg := d.admin.Copy()
	if name != "" {
		cfg.Database = name
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to PostgreSQL at %s (database %s): %w", d.addr(), cfg.Database, err)
	}
	return conn, nil
}

func (d *database) addr() string { return d.host + ":" + strconv.Itoa(int(d.port)) }

// ensure creates the two databases when they are missing, sets their
// synchronous_commit (off with asyncCommit, else the server's), and brings their
// schemas to the versions in the schema directories, with the sql tool:
// setup-schema -v 0.0 on a fresh database, then update-schema. A database
// at the newest version is left alone.
func (d *database) ensure(ctx context.Context, schemaDir string, asyncCommit bool, sqlTool, toolLog string, log *slog.Logger) error {
	conn, err := d.connect(ctx, "")
	if err != nil {
		return err
	}
	setting := "RESET synchronous_commit"
	if asyncCommit {
		setting = "SET synchronous_commit = off"
	}
	for _, name := range d.names {
		if err := createDatabase(ctx, conn, name); err != nil {
			conn.Close(ctx)
			return err
		}
		// Sessions take it when they connect: the services connect later.
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" "+setting); err != nil {
			conn.Close(ctx)
			return fmt.Errorf("cluster: database %s: %s: %w", name, setting, err)
		}
	}
	conn.Close(ctx)

	var versions [2]string
	for i, name := range d.names {
		if versions[i], err = d.schemaVersion(ctx, name); err != nil {
			return err
		}
	}
	// The newest versions are those of the server's schema directories.
	// Without them, databases that have a schema are left as they are:
	// the server checks that it can run on them.
	var dirs, latest [2]string
	if dirs[0], dirs[1], err = schemaDirs(ctx, schemaDir); err != nil {
		if versions[0] == "" || versions[1] == "" {
			return err
		}
		log.Warn("cluster: schemas not checked for updates", "versions", versions, "error", err)
		return d.forgetDeadMembers(ctx, log)
	}
	for i := range dirs {
		if latest[i], err = latestVersion(dirs[i]); err != nil {
			return err
		}
	}
	if versions[0] != "" {
		if err := d.forgetDeadMembers(ctx, log); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range d.names {
		if versions[i] == latest[i] {
			continue
		}
		g.Go(func() error {
			begin := time.Now()
			if versions[i] == "" {
				if err := d.runTool(gctx, sqlTool, toolLog, name, "setup-schema", "-v", "0.0"); err != nil {
					return err
				}
			}
			if err := d.runTool(gctx, sqlTool, toolLog, name, "update-schema", "-d", dirs[i]); err != nil {
				return err
			}
			log.Info("cluster: schema migrated", "database", name, "from", cmp.Or(versions[i], "none"), "to", latest[i], "took", since(begin))
			return nil
		})
	}
	return g.Wait()
}

// createDatabase creates a database unless it exists.
func createDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("cluster: look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P04" {
		return nil // created by someone else meanwhile
	}
	if err != nil {
		return fmt.Errorf("cluster: create database %s: %w", name, err)
	}
	return nil
}

// schemaVersion is a database's schema version as the sql tool recorded
// it, "" when it has none yet.
func (d *database) schemaVersion(ctx context.Context, name string) (string, error) {
	conn, err := d.connect(ctx, name)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, "SELECT curr_version FROM schema_version WHERE version_partition = 0 AND db_name = $1", name).Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.Code == "42P01":
		return "", nil
	case err != nil:
		return "", fmt.Errorf("cluster: schema version of database %s: %w", name, err)
	}
	return v, nil
}

// latestVersion is the newest version in a schema directory (its vX.Y
// subdirectories).
func latestVersion(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("cluster: schema directory: %w", err)
	}
	best, bestKey := "", [2]int{-1, -1}
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), "v")
		if !e.IsDir() || !ok {
			continue
		}
		major, minor, ok := strings.Cut(v, ".")
		ma, err1 := strconv.Atoi(major)
		mi, err2 := strconv.Atoi(minor)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		if k := [2]int{ma, mi}; k[0] > bestKey[0] || (k[0] == bestKey[0] && k[1] > bestKey[1]) {
			best, bestKey = v, k
		}
	}
	if best == "" {
		return "", fmt.Errorf("cluster: schema directory %s has no vX.Y versions", dir)
	}
	return best, nil
}

// runTool runs the sql tool on one database; its output goes to logFile.
// The password goes in its environment, not on its command line.
func (d *database) runTool(ctx context.Context, tool, logFile, name string, args ...string) error {
	full := []string{"--plugin", "postgres12", "--ep", d.host, "-p", strconv.Itoa(int(d.port)), "-u", d.user, "--db", name}
	if d.tls {
		full = append(full, "--tls")
		if !d.verify {
			full = append(full, "--tls-disable-host-verification")
		}
	}
	full = append(full, args...)
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: sql tool log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s: %s %s\n", time.Now().Format(time.RFC3339Nano), tool, strings.Join(full, " "))
	cmd := exec.CommandContext(ctx, tool, full...)
	cmd.Dir = filepath.Dir(logFile)
	cmd.Env = append(os.Environ(), "SQL_PASSWORD="+d.pass)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cluster: %s %s on database %s: %w (log %s:\n%s)", filepath.Base(tool), args[0], name, err, logFile, logTail(logFile, 10))
	}
	return nil
}

// drop drops the two databases (and any session still on them).
func (d *database) drop(ctx context.Context) error {
	conn, err := d.connect(ctx, "")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, name := range d.names {
		drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
		_, err := conn.Exec(ctx, drop+" WITH (FORCE)")
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42601" {
			_, err = conn.Exec(ctx, drop) // before PostgreSQL 13
		}
		if err != nil {
			return fmt.Errorf("cluster: drop database %s: %w", name, err)
		}
	}
	return nil
}

// seedCutoff is how recent a member's heartbeat must be for the server
// to try to join it at start (ringpop's healthyHostLastHeartbeatCutoff).
const seedCutoff = 20 * time.Second

// forgetDeadMembers deletes the membership records of the service hosts
// of a cluster that ran on these databases moments ago and no longer
// listen: the first service to start would otherwise try to join them for
// up to membership.maxJoinDuration (30 s), owning no shard meanwhile. It
// fails when hosts that heartbeat and listen remain: a cluster runs on
// these databases, and two would fight over its shards.
func (d *database) forgetDeadMembers(ctx context.Context, log *slog.Logger) error {
	conn, err := d.connect(ctx, d.names[0])
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT rpc_address, rpc_port, max(last_heartbeat) FROM cluster_membership GROUP BY 1, 2")
	if err != nil {
		return fmt.Errorf("cluster: membership of database %s: %w", d.names[0], err)
	}
	type member struct {
		host      string
		port      int16 // a SMALLINT: ports above 32767 wrap
		heartbeat time.Time
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (member, error) {
		var m member
		return m, r.Scan(&m.host, &m.port, &m.heartbeat)
	})
	if err != nil {
		return fmt.Errorf("cluster: membership of database %s: %w", d.names[0], err)
	}
	// The server writes UTC into a column without time zone.
	now := time.Now().UTC()
	members = slices.DeleteFunc(members, func(m member) bool {
		hb := time.Date(m.heartbeat.Year(), m.heartbeat.Month(), m.heartbeat.Day(), m.heartbeat.Hour(),
			m.heartbeat.Minute(), m.heartbeat.Second(), m.heartbeat.Nanosecond(), time.UTC)
		return now.Sub(hb) > seedCutoff
	})
	listens := make([]bool, len(members))
	var g errgroup.Group
	for i, m := range members {
		g.Go(func() error {
			c, err := (&gonet.Dialer{Timeout: 500 * time.Millisecond}).DialContext(ctx, "tcp", addr(m.host, int(uint16(m.port))))
			if err == nil {
				listens[i] = true
				c.Close()
			}
			return nil
		})
	}
	_ = g.Wait()
	var live []string
	forgot := 0
	for i, m := range members {
		if listens[i] {
			live = append(live, addr(m.host, int(uint16(m.port))))
			continue
		}
		tag, err := conn.Exec(ctx, "DELETE FROM cluster_membership WHERE rpc_address = $1 AND rpc_port = $2", m.host, m.port)
		if err != nil {
			return fmt.Errorf("cluster: membership of database %s: %w", d.names[0], err)
		}
		forgot += int(tag.RowsAffected())
	}
	if len(live) > 0 {
		return fmt.Errorf("cluster: database %s is in use by a running cluster (its services' membership ports %s listen): stop it first",
			d.names[0], strings.Join(live, ", "))
	}
	if forgot > 0 {
		log.Info("cluster: forgot the membership of hosts that are gone", "records", forgot)
	}
	return nil
}
