package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of the environment variables that override
// configuration keys: key "temporal.host_port" is overridden by
// TSYNC_TEMPORAL_HOST_PORT.
const EnvPrefix = "TSYNC_"

// Config is the whole configuration of a tsync process.
//
// The mapstructure tag of each field is its configuration key; the keys of
// the nested structs are prefixed with the parent's key and a dot
// (temporal.host_port).
type Config struct {
	// ObserverDisabled turns the observer loop off.
	ObserverDisabled bool `mapstructure:"observer_disabled"`
	// ObserverStepsDir is the directory holding the sync steps.
	ObserverStepsDir string `mapstructure:"observer_steps_dir"`
	// ObserverSysDir is the directory for the observer's system files.
	ObserverSysDir string `mapstructure:"observer_sys_dir"`
	// ObserverPretend runs the steps without applying any change.
	ObserverPretend bool `mapstructure:"observer_pretend"`
	// ObserverProxySSH is an SSH jump host of the form "[user@]host[:port]",
	// or "" for none.
	ObserverProxySSH string `mapstructure:"observer_proxy_ssh"`
	// ObserverName names this synchronizer. It is required and must match
	// ^[A-Za-z][A-Za-z0-9_.-]*$ because it becomes part of Temporal
	// workflow IDs.
	ObserverName string `mapstructure:"observer_name"`
	// ObserverApplist lists the apps whose models are synchronized.
	ObserverApplist []string `mapstructure:"observer_applist"`
	// ObserverDependencyGraph is the model dependency graph file, or "".
	ObserverDependencyGraph string `mapstructure:"observer_dependency_graph"`
	// ObserverBackoffDisabled disables the backoff of failing objects.
	ObserverBackoffDisabled bool `mapstructure:"observer_backoff_disabled"`
	// ObserverLogstashHostport is the "host:port" of a logstash to ship
	// logs to, or "" for none.
	ObserverLogstashHostport string `mapstructure:"observer_logstash_hostport"`
	// ObserverLogFile is the log file, or "" to log to stderr.
	ObserverLogFile string `mapstructure:"observer_log_file"`
	// ObserverModelPoliciesDir is the directory of the model policies.
	ObserverModelPoliciesDir string `mapstructure:"observer_model_policies_dir"`
	// ObserverEnableWatchers enables the watchers.
	ObserverEnableWatchers bool `mapstructure:"observer_enable_watchers"`

	// Temporal says how to reach the Temporal server.
	Temporal TemporalConfig `mapstructure:"temporal"`

	// DatabaseURL is the postgres:// or postgresql:// URL of the database.
	// It may carry a password: log Redacted() rather than this field.
	DatabaseURL string `mapstructure:"database_url"`
	// DatabaseSchema is the PostgreSQL schema holding the models.
	DatabaseSchema string `mapstructure:"database_schema"`
	// RedisURL is the redis:// or rediss:// URL of Redis. It may carry a
	// password: log Redacted() rather than this field.
	RedisURL string `mapstructure:"redis_url"`

	// LoopInterval is the pause between two passes of the observer loop.
	LoopInterval time.Duration `mapstructure:"loop_interval"`
	// FetchBatch is the number of rows fetched per query.
	FetchBatch int `mapstructure:"fetch_batch"`

	// Concurrency bounds the work running at once.
	Concurrency ConcurrencyConfig `mapstructure:"concurrency"`
	// Retry is the retry policy of failing steps.
	Retry RetryConfig `mapstructure:"retry"`

	// StepTimeout bounds the run time of one step.
	StepTimeout time.Duration `mapstructure:"step_timeout"`
	// HeartbeatTimeout is the activity heartbeat timeout.
	HeartbeatTimeout time.Duration `mapstructure:"heartbeat_timeout"`

	// MetricsAddress is the "host:port" on which the worker and the starter
	// serve Prometheus metrics at /metrics, or "" for none.
	MetricsAddress string `mapstructure:"metrics_address"`

	// DemoDir is where the demo synchronizer's backend writes.
	DemoDir string `mapstructure:"demo_dir"`
}

// TemporalConfig says how to reach the Temporal server (keys temporal.*).
type TemporalConfig struct {
	// HostPort is the "host:port" of the Temporal frontend.
	HostPort string `mapstructure:"host_port"`
	// Namespace is the Temporal namespace.
	Namespace string `mapstructure:"namespace"`
	// TaskQueue is the Temporal task queue.
	TaskQueue string `mapstructure:"task_queue"`
}

// ConcurrencyConfig bounds the work running at once (keys concurrency.*).
type ConcurrencyConfig struct {
	// Workflows is the number of workflow executions run at once.
	Workflows int `mapstructure:"workflows"`
	// Activities is the number of activity executions run at once.
	Activities int `mapstructure:"activities"`
	// Starts is the number of workflow starts in flight at once.
	Starts int `mapstructure:"starts"`
}

// RetryConfig is the retry policy of failing steps (keys retry.*).
type RetryConfig struct {
	// InitialInterval is the delay before the first retry.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	// MaxInterval is the largest delay between two retries.
	MaxInterval time.Duration `mapstructure:"max_interval"`
	// BackoffCoefficient multiplies the delay after each retry.
	BackoffCoefficient float64 `mapstructure:"backoff_coefficient"`
}

// Default returns the default configuration. Its ObserverName is empty, so
// it does not pass Validate until a name is set.
func Default() Config {
	return Config{
		ObserverSysDir:          "var/sys",
		ObserverApplist:         []string{"core"},
		ObserverBackoffDisabled: true,
		Temporal: TemporalConfig{
			HostPort:  "127.0.0.1:7233",
			Namespace: "default",
			TaskQueue: "tsync",
		},
		DatabaseURL:    "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		DatabaseSchema: "public",
		RedisURL:       "redis://127.0.0.1:6379/0",
		LoopInterval:   time.Second,
		FetchBatch:     500,
		Concurrency: ConcurrencyConfig{
			Workflows:  200,
			Activities: 100,
			Starts:     16,
		},
		Retry: RetryConfig{
			InitialInterval:    time.Second,
			MaxInterval:        time.Minute,
			BackoffCoefficient: 2.0,
		},
		StepTimeout:      10 * time.Minute,
		HeartbeatTimeout: 30 * time.Second,
		DemoDir:          "var/demo",
	}
}

// Load reads the YAML configuration file named file over the defaults, then
// applies the overrides found in environ (in os.Environ form, "KEY=VALUE"),
// then validates the result. If file is "", no file is read. A file that
// does not exist is an error.
func Load(file string, environ []string) (Config, error) {
	if file == "" {
		return load(source{hint: "a config file"}, nil, environ)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, fmt.Errorf("config: config file %s does not exist", file)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Config{}, fmt.Errorf("config: reading %s: %v", file, err)
	}
	return load(source{where: file, hint: file}, data, environ)
}

// Parse is Load with the YAML given as bytes rather than a file name, for
// example an embedded default configuration. Errors refer to it as "the
// YAML config".
func Parse(yaml []byte, environ []string) (Config, error) {
	if yaml == nil {
		yaml = []byte{}
	}
	const name = "the YAML config"
	return load(source{where: name, hint: name}, yaml, environ)
}

// Validate checks every key of c and returns an error describing the first
// bad one, in the order of the Config fields.
func (c Config) Validate() error {
	p := c.problem()
	if p == nil {
		return nil
	}
	return p.err(source{hint: "the config file"}, "")
}

// Redacted returns a copy of c whose DatabaseURL and RedisURL have their
// passwords (in the user info or in a password-like query parameter)
// replaced by "xxxxx". A URL that does not parse is replaced whole.
func (c Config) Redacted() Config {
	c.ObserverApplist = slices.Clone(c.ObserverApplist)
	c.DatabaseURL = redactURL(c.DatabaseURL)
	c.RedisURL = redactURL(c.RedisURL)
	return c
}

// plain has the fields of Config but none of its methods, so that it can be
// formatted without recursing into String.
type plain Config

// String formats the redacted configuration.
func (c Config) String() string {
	return fmt.Sprintf("%+v", plain(c.Redacted()))
}

// GoString formats the redacted configuration for the %#v verb.
func (c Config) GoString() string {
	return strings.Replace(fmt.Sprintf("%#v", plain(c.Redacted())), "config.plain", "config.Config", 1)
}

// LogValue implements slog.LogValuer: the redacted configuration as a group
// with one attribute per key.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	flds := fields()
	attrs := make([]slog.Attr, 0, len(flds))
	for _, f := range flds {
		attrs = append(attrs, slog.Any(f.key, f.value(&r).Elem().Interface()))
	}
	return slog.GroupValue(attrs...)
}

// source describes where the YAML came from, for error messages.
type source struct {
	where string // "config.yaml" in "unknown key ... in config.yaml"; "" if there is no YAML
	hint  string // where to set a required key: "set it in <hint> or TSYNC_..."
}

func load(src source, data []byte, environ []string) (Config, error) {
	c := Default()
	flds := fields()

	var v *viper.Viper
	if data != nil {
		v = viper.New()
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			var pe viper.ConfigParseError
			if errors.As(err, &pe) && pe.Unwrap() != nil {
				err = pe.Unwrap()
			}
			return Config{}, fmt.Errorf("config: invalid YAML in %s: %s", src.where, oneLine(err.Error()))
		}
		if err := checkKeys(v, flds, src.where); err != nil {
			return Config{}, err
		}
	}

	env := envMap(environ)
	from := make(map[string]string) // key -> where its value came from
	for _, f := range flds {
		ptr := f.value(&c).Interface()
		if v != nil {
			if raw := v.Get(f.key); raw != nil {
				if err := decode(ptr, raw); err != nil {
					return Config{}, fmt.Errorf("config: %s: %v (in %s)", f.key, err, src.where)
				}
				from[f.key] = "in " + src.where
			}
		}
		for _, name := range f.envNames() {
			s := env[name]
			if s == "" {
				continue
			}
			if err := decode(ptr, s); err != nil {
				return Config{}, fmt.Errorf("config: %s: %v (from %s)", f.key, err, name)
			}
			from[f.key] = "from " + name
		}
	}

	if p := c.problem(); p != nil {
		return Config{}, p.err(src, from[p.key])
	}
	return c, nil
}

// field is one configuration key and the Config field holding it.
type field struct {
	key   string
	index []int
}

// value returns a pointer to the field of c.
func (f field) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index).Addr()
}

// envNames returns the environment variables overriding f, lowest
// precedence first.
func (f field) envNames() []string {
	names := []string{envName(f.key)}
	switch f.key {
	case "database_url":
		names = []string{"DATABASE_URL", names[0]}
	case "redis_url":
		names = []string{"REDIS_URL", names[0]}
	}
	return names
}

// Environ returns c as TSYNC_* environment entries, one a key, which Load
// and Parse turn back into c: the way to hand a configuration to a child
// process. A key holding an empty string is left out (an empty variable
// counts as unset), so it comes back as its default.
func (c Config) Environ() []string {
	var out []string
	for _, f := range fields() {
		var s string
		switch v := f.value(&c).Interface().(type) {
		case *string:
			s = *v
		case *bool:
			s = strconv.FormatBool(*v)
		case *int:
			s = strconv.Itoa(*v)
		case *float64:
			s = strconv.FormatFloat(*v, 'g', -1, 64)
		case *time.Duration:
			s = v.String()
		case *[]string:
			s = strings.Join(*v, ",")
		default:
			panic(fmt.Sprintf("config: key %s has a type Environ does not know: %T", f.key, v))
		}
		if s != "" {
			out = append(out, envName(f.key)+"="+s)
		}
	}
	return out
}

// envName returns the TSYNC_ environment variable overriding key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// fields lists the configuration keys in the order of the Config fields,
// as given by their mapstructure tags.
func fields() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			key := prefix + sf.Tag.Get("mapstructure")
			idx := append(slices.Clone(index), i)
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, key+".", idx)
				continue
			}
			out = append(out, field{key: key, index: idx})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// checkKeys reports the first (in sorted order) key of the YAML that is not
// a configuration key, or a section (temporal, ...) that is not a mapping.
func checkKeys(v *viper.Viper, flds []field, where string) error {
	leaves := make(map[string]bool)
	sections := make(map[string][]string)
	for _, f := range flds {
		leaves[f.key] = true
		if sec, sub, ok := strings.Cut(f.key, "."); ok {
			sections[sec] = append(sections[sec], sub)
		}
	}
	keys := v.AllKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if leaves[k] || underLeaf(k, leaves) {
			continue // a leaf holding a mapping is reported when decoded
		}
		if subs, ok := sections[k]; ok {
			return fmt.Errorf("config: %s: must be a mapping with keys %s, got %s (in %s)",
				k, strings.Join(subs, ", "), describe(v.Get(k)), where)
		}
		first, rest, _ := strings.Cut(k, ".")
		unknown := first
		if _, ok := sections[first]; ok {
			sub, _, _ := strings.Cut(rest, ".")
			unknown = first + "." + sub
		}
		msg := fmt.Sprintf("config: unknown key %q in %s", unknown, where)
		if s := suggest(unknown, flds); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return errors.New(msg)
	}
	return nil
}

func underLeaf(k string, leaves map[string]bool) bool {
	for i := range len(k) {
		if k[i] == '.' && leaves[k[:i]] {
			return true
		}
	}
	return false
}

// suggest returns the configuration key closest to the unknown key, or ""
// if none is close.
func suggest(unknown string, flds []field) string {
	best, bestDist := "", 3
	for _, f := range flds {
		if strings.HasSuffix(f.key, "."+unknown) {
			return f.key // a nested key given at the top level
		}
		if d := editDistance(unknown, f.key); d < bestDist && d < len(unknown)/2 {
			best, bestDist = f.key, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envMap turns os.Environ-style entries into a map; a later entry wins.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, e := range environ {
		if k, v, ok := strings.Cut(e, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// decode stores raw, a value from the YAML or an environment string, into
// ptr, a pointer to a Config field. The error does not name the key.
func decode(ptr any, raw any) error {
	switch p := ptr.(type) {
	case *string:
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("must be a string, got %s", describe(raw))
		}
		*p = s
	case *bool:
		switch x := raw.(type) {
		case bool:
			*p = x
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf("invalid boolean %q, want true or false", x)
			}
			*p = b
		default:
			return fmt.Errorf("must be true or false, got %s", describe(raw))
		}
	case *int:
		switch x := raw.(type) {
		case int:
			*p = x
		case int64:
			if x < math.MinInt || x > math.MaxInt {
				return fmt.Errorf("integer %d out of range", x)
			}
			*p = int(x)
		case uint64:
			if x > math.MaxInt {
				return fmt.Errorf("integer %d out of range", x)
			}
			*p = int(x)
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf("invalid integer %q", x)
			}
			*p = n
		default:
			return fmt.Errorf("must be an integer, got %s", describe(raw))
		}
	case *time.Duration:
		switch x := raw.(type) {
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				if _, nerr := strconv.ParseFloat(strings.TrimSpace(x), 64); nerr == nil {
					return fmt.Errorf("invalid duration %q, missing a unit such as \"s\" or \"ms\"", x)
				}
				return fmt.Errorf("invalid duration %q", x)
			}
			*p = d
		case int, int64, uint64, float64:
			return fmt.Errorf("invalid duration %v, missing a unit such as \"s\" or \"ms\"", x)
		default:
			return fmt.Errorf("must be a duration such as \"1s\", got %s", describe(raw))
		}
	case *float64:
		switch x := raw.(type) {
		case float64:
			*p = x
		case int:
			*p = float64(x)
		case int64:
			*p = float64(x)
		case uint64:
			*p = float64(x)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return fmt.Errorf("invalid number %q", x)
			}
			*p = f
		default:
			return fmt.Errorf("must be a number, got %s", describe(raw))
		}
	case *[]string:
		switch x := raw.(type) {
		case string:
			*p = splitList(x)
		case []any:
			list := make([]string, 0, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("entry %d must be a string, got %s", i+1, describe(e))
				}
				list = append(list, s)
			}
			*p = list
		default:
			return fmt.Errorf("must be a list or a comma-separated string, got %s", describe(raw))
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %T", ptr))
	}
	return nil
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty entries.
func splitList(s string) []string {
	list := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			list = append(list, e)
		}
	}
	return list
}

// describe names the type (and for scalars the value) of a YAML value.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case int, int64, uint64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	default:
		return fmt.Sprintf("a %T", x)
	}
}

// oneLine joins the lines of s with "; " and squeezes their indentation.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	s = strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "; ")
	return strings.ReplaceAll(s, ":; ", ": ")
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

// validHostPort reports whether s is "host:port" ("[ipv6]:port").
// validListenAddress accepts host:port and :port (all interfaces).
func validListenAddress(s string) bool {
	if strings.HasPrefix(s, ":") {
		return validPort(s[1:])
	}
	return validHostPort(s)
}

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

// redactURL hides the password of the URL s. A URL that does not parse is
// replaced whole, since it may hold a password anywhere.
func redactURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[REDACTED]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "[REDACTED]"
		} else {
			changed := false
			for k, vs := range q {
				lk := strings.ToLower(k)
				if strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
					for i := range vs {
						vs[i] = "xxxxx"
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}
