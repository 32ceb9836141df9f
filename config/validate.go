package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Validate checks every key of c and returns an error describing the first
// bad one, in the order of the Config fields.
func (c Config) Validate() error {
	p := c.problem()
	if p == nil {
		return nil
	}
	return p.err(source{hint: "the config file"}, "")
}

// problem is the first bad key of a Config.
type problem struct {
	key      string
	msg      string
	required bool // the key is missing; msg is unused
}

// err formats p. from says where the bad value came from ("in config.yaml",
// "from TSYNC_FETCH_BATCH"), or is "" for a default or unknown origin.
func (p *problem) err(src source, from string) error {
	if p.required {
		return fmt.Errorf("config: %s is required (set it in %s or %s)", p.key, src.hint, envName(p.key))
	}
	if from != "" {
		return fmt.Errorf("config: %s: %s (%s)", p.key, p.msg, from)
	}
	return fmt.Errorf("config: %s: %s", p.key, p.msg)
}

func bad(key, format string, args ...any) *problem {
	return &problem{key: key, msg: fmt.Sprintf(format, args...)}
}

// problem returns the first bad key of c, in the order of the fields, or nil.
func (c Config) problem() *problem {
	if c.ObserverProxySSH != "" && !validJumpHost(c.ObserverProxySSH) {
		return bad("observer_proxy_ssh", "invalid jump host %q, want [user@]host[:port]", c.ObserverProxySSH)
	}
	if c.ObserverName == "" {
		return &problem{key: "observer_name", required: true}
	}
	if !validName(c.ObserverName) {
		return bad("observer_name", "invalid name %q, must match ^[A-Za-z][A-Za-z0-9_.-]*$", c.ObserverName)
	}
	if len(c.ObserverApplist) == 0 {
		return bad("observer_applist", "must name at least one app")
	}
	for i, app := range c.ObserverApplist {
		switch {
		case app == "":
			return bad("observer_applist", "entry %d is empty", i+1)
		case strings.ContainsFunc(app, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }):
			return bad("observer_applist", "invalid app name %q", app)
		case slices.Contains(c.ObserverApplist[:i], app):
			return bad("observer_applist", "app %q is listed twice", app)
		}
	}
	if c.MetricsAddress != "" && !validListenAddress(c.MetricsAddress) {
		return bad("metrics_address", "invalid address %q, want [host]:port", c.MetricsAddress)
	}
	if c.UIAddress != "" && !validListenAddress(c.UIAddress) {
		return bad("ui_address", "invalid address %q, want [host]:port", c.UIAddress)
	}
	if c.UITokenFile != "" {
		if _, p := c.uiToken(); p != nil {
			return p
		}
	}
	if c.ObserverLogstashHostport != "" && !validHostPort(c.ObserverLogstashHostport) {
		return bad("observer_logstash_hostport", "invalid address %q, want host:port", c.ObserverLogstashHostport)
	}
	if !validHostPort(c.Temporal.HostPort) {
		return bad("temporal.host_port", "invalid address %q, want host:port", c.Temporal.HostPort)
	}
	if c.Temporal.Namespace == "" {
		return bad("temporal.namespace", "must not be empty")
	}
	if c.Temporal.TaskQueue == "" {
		return bad("temporal.task_queue", "must not be empty")
	}
	if c.Temporal.UIURL != "" {
		if msg := checkURL(c.Temporal.UIURL, true, "http", "https"); msg != "" {
			return bad("temporal.ui_url", "%s", msg)
		}
	}
	switch c.Temporal.GRPCCompression {
	case CompressionAuto, CompressionGzip, CompressionNone:
	default:
		return bad("temporal.grpc_compression", "invalid value %q, want %s, %s or %s",
			c.Temporal.GRPCCompression, CompressionAuto, CompressionGzip, CompressionNone)
	}
	if p := c.Temporal.problem(); p != nil {
		return p // TLS files and API key: see temporal.go
	}
	if msg := checkURL(c.DatabaseURL, false, "postgres", "postgresql"); msg != "" {
		return bad("database_url", "%s", msg)
	}
	if !validSchema(c.DatabaseSchema) {
		return bad("database_schema", "invalid schema name %q, must match ^[a-z_][a-z0-9_]*$ and be at most 63 characters", c.DatabaseSchema)
	}
	if msg := checkURL(c.RedisURL, true, "redis", "rediss"); msg != "" {
		return bad("redis_url", "%s", msg)
	}
	if c.LoopInterval <= 0 {
		return bad("loop_interval", "must be > 0, got %s", c.LoopInterval)
	}
	if c.FetchBatch <= 0 {
		return bad("fetch_batch", "must be > 0, got %d", c.FetchBatch)
	}
	if c.Concurrency.Workflows <= 0 {
		return bad("concurrency.workflows", "must be > 0, got %d", c.Concurrency.Workflows)
	}
	if c.Concurrency.Activities <= 0 {
		return bad("concurrency.activities", "must be > 0, got %d", c.Concurrency.Activities)
	}
	if c.Concurrency.Starts <= 0 {
		return bad("concurrency.starts", "must be > 0, got %d", c.Concurrency.Starts)
	}
	if c.Retry.InitialInterval <= 0 {
		return bad("retry.initial_interval", "must be > 0, got %s", c.Retry.InitialInterval)
	}
	if c.Retry.MaxInterval < c.Retry.InitialInterval {
		return bad("retry.max_interval", "must be >= retry.initial_interval (%s), got %s", c.Retry.InitialInterval, c.Retry.MaxInterval)
	}
	if b := c.Retry.BackoffCoefficient; !(b >= 1) || math.IsInf(b, 0) {
		return bad("retry.backoff_coefficient", "must be >= 1, got %v", b)
	}
	if c.StepTimeout <= 0 {
		return bad("step_timeout", "must be > 0, got %s", c.StepTimeout)
	}
	if c.HeartbeatTimeout <= 0 {
		return bad("heartbeat_timeout", "must be > 0, got %s", c.HeartbeatTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown_timeout", "must be > 0, got %s", c.ShutdownTimeout)
	}
	return nil
}

// validName reports whether s matches ^[A-Za-z][A-Za-z0-9_.-]*$.
func validName(s string) bool {
	for i, r := range s {
		letter := ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if i == 0 && !letter {
			return false
		}
		if !letter && !('0' <= r && r <= '9') && r != '_' && r != '.' && r != '-' {
			return false
		}
	}
	return s != ""
}

// validSchema reports whether s matches ^[a-z_][a-z0-9_]*$ and fits in a
// PostgreSQL identifier (63 bytes).
func validSchema(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		ok := ('a' <= r && r <= 'z') || r == '_' || (i > 0 && '0' <= r && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// validHost reports whether h is a plausible host name or IP address.
func validHost(h string) bool {
	return h != "" && !strings.ContainsFunc(h, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune("/@?#[]", r)
	})
}

// validPort reports whether p is a port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p[0] != '+'
}

// validListenAddress reports whether s is "host:port" or ":port" (all
// interfaces).
func validListenAddress(s string) bool {
	if strings.HasPrefix(s, ":") {
		return validPort(s[1:])
	}
	return validHostPort(s)
}

// validHostPort reports whether s is "host:port" ("[ipv6]:port").
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && validHost(host) && validPort(port)
}

// validJumpHost reports whether s is "[user@]host[:port]".
func validJumpHost(s string) bool {
	if user, rest, ok := strings.Cut(s, "@"); ok {
		if user == "" || strings.ContainsFunc(user, unicode.IsSpace) {
			return false
		}
		s = rest
	}
	if strings.HasPrefix(s, "[") { // [ipv6] or [ipv6]:port
		if strings.HasSuffix(s, "]") {
			return validHost(s[1 : len(s)-1])
		}
		return validHostPort(s)
	}
	if strings.Contains(s, ":") {
		return validHostPort(s)
	}
	return validHost(s)
}

// checkURL returns what is wrong with the URL s, or "". The message never
// contains s, which may hold a password.
func checkURL(s string, needHost bool, schemes ...string) string {
	want := "want a " + strings.Join(schemes, ":// or ") + ":// URL"
	if s == "" {
		return "must not be empty, " + want
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("invalid URL (%v), %s", err, want)
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		if u.Scheme == "" {
			return "missing scheme, " + want
		}
		return fmt.Sprintf("unsupported scheme %q, %s", u.Scheme, want)
	}
	if u.Opaque != "" {
		return "invalid URL, " + want
	}
	if needHost && u.Host == "" {
		return "missing host, " + want
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return fmt.Sprintf("invalid port %q", p)
	}
	return ""
}
