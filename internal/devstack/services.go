package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync/config"
)

// Services checks (and on a development machine starts) the PostgreSQL and
// Redis a config points at.
type Services struct {
	// Notify receives one line for each service started. nil: discarded.
	Notify func(line string)
	// NoStart only checks: a service that is down is an error.
	NoStart bool
	// ReadyTimeout bounds the wait for a started service. 0: 20 s.
	ReadyTimeout time.Duration
}

// EnsureServices checks that cfg's PostgreSQL and Redis are reachable. When
// one is not, it listens nowhere, its address is this machine's default port
// (5432, 6379), and we are root with Debian's pg_ctlcluster / redis-server at
// hand, it starts it. Otherwise it returns one error saying how to start
// them.
func EnsureServices(ctx context.Context, cfg config.Config) error {
	return Services{}.Ensure(ctx, cfg)
}

// Ensure is EnsureServices with s's settings.
func (s Services) Ensure(ctx context.Context, cfg config.Config) error {
	var problems []string
	if err := s.postgres(ctx, cfg.DatabaseURL); err != nil {
		problems = append(problems, err.Error())
	}
	if err := s.redis(ctx, cfg.RedisURL); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (s Services) notify(line string) {
	if s.Notify != nil {
		s.Notify(line)
	}
}

func (s Services) readyTimeout() time.Duration {
	if s.ReadyTimeout <= 0 {
		return 20 * time.Second
	}
	return s.ReadyTimeout
}

// PostgresStartHint says how to start PostgreSQL on this kind of machine.
const PostgresStartHint = "start it (Debian, as root: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; or `make services`), or set database_url / TSYNC_DATABASE_URL to a running server"

// RedisStartHint says how to start Redis on this kind of machine.
const RedisStartHint = "start it (redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no; or `make services`), or set redis_url / TSYNC_REDIS_URL to a running server"

func (s Services) postgres(ctx context.Context, url string) error {
	pc, err := pgconn.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("PostgreSQL: bad database_url: %v", err)
	}
	addr := net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port)))
	tcp := !strings.HasPrefix(pc.Host, "/")
	if tcp && !Listening(addr) {
		if !s.canStart(addr, 5432, "pg_ctlcluster") {
			return fmt.Errorf("PostgreSQL at %s is not running: %s", addr, PostgresStartHint)
		}
		if err := startPostgres(ctx); err != nil {
			return fmt.Errorf("PostgreSQL at %s is not running and starting it failed (%v): %s", addr, err, PostgresStartHint)
		}
		if err := waitListening(ctx, addr, s.readyTimeout()); err != nil {
			return fmt.Errorf("PostgreSQL at %s was started but %v: %s", addr, err, PostgresStartHint)
		}
		s.notify("started PostgreSQL at " + addr)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var conn *pgx.Conn
	for {
		// Right after a start the server may still refuse connections.
		conn, err = pgx.Connect(cctx, url)
		if err == nil || cctx.Err() != nil || !strings.Contains(err.Error(), "starting up") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return fmt.Errorf("PostgreSQL at %s refuses the connection: %s (check database_url / TSYNC_DATABASE_URL)", addr, pe.Message)
		}
		return fmt.Errorf("PostgreSQL at %s is unreachable (%v): %s", addr, err, PostgresStartHint)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.Ping(cctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s does not answer: %v", addr, err)
	}
	return nil
}

func (s Services) redis(ctx context.Context, url string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("redis: bad redis_url: %v", err)
	}
	addr := opts.Addr
	if opts.Network == "tcp" && !Listening(addr) {
		if !s.canStart(addr, 6379, "redis-server") {
			return fmt.Errorf("redis at %s is not running: %s", addr, RedisStartHint)
		}
		_, port, _ := net.SplitHostPort(addr)
		if err := startRedis(ctx, port); err != nil {
			return fmt.Errorf("redis at %s is not running and starting it failed (%v): %s", addr, err, RedisStartHint)
		}
		if err := waitListening(ctx, addr, s.readyTimeout()); err != nil {
			return fmt.Errorf("redis at %s was started but %v: %s", addr, err, RedisStartHint)
		}
		s.notify("started Redis at " + addr)
	}
	opts.DialTimeout = 3 * time.Second
	opts.MaxRetries = -1
	rc := redis.NewClient(opts)
	defer rc.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rc.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("redis at %s does not answer PING (%v): check redis_url / TSYNC_REDIS_URL", addr, err)
	}
	return nil
}

// canStart reports whether a service down at addr is this machine's, on its
// default port, and can be started here: we are root and tool is on PATH.
func (s Services) canStart(addr string, defaultPort int, tool string) bool {
	if s.NoStart || os.Geteuid() != 0 {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != strconv.Itoa(defaultPort) {
		return false
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	_, err = exec.LookPath(tool)
	return err == nil
}

// startPostgres starts every Debian cluster named main.
func startPostgres(ctx context.Context) error {
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil {
		return err
	}
	started := 0
	for _, v := range versions {
		if _, err := os.Stat(filepath.Join("/etc/postgresql", v.Name(), "main")); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", v.Name(), "main", "start").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctlcluster %s main start: %v: %s", v.Name(), err, strings.TrimSpace(string(out)))
		}
		started++
	}
	if started == 0 {
		return errors.New("no cluster under /etc/postgresql/*/main")
	}
	return nil
}

func startRedis(ctx context.Context, port string) error {
	for _, dir := range []string{"/var/lib/redis", "/var/log/redis"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
		"--port", port, "--save", "", "--appendonly", "no",
		"--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log").CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-server: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !Listening(addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("does not listen after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
