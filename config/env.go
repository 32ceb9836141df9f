package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix is the prefix of the environment variables that override
// configuration keys: key "temporal.host_port" is overridden by
// TSYNC_TEMPORAL_HOST_PORT.
const EnvPrefix = "TSYNC_"

// Environ returns c as TSYNC_* environment entries, one a key, which Load
// and Parse turn back into c: the way to hand a configuration to a child
// process. A key holding an empty string is left out (an empty variable
// counts as unset), so it comes back as its default. The entries carry the
// secrets (URL passwords, TSYNC_TEMPORAL_API_KEY): never print them.
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

// EnvVars returns the names of every environment variable that overrides
// a configuration key, in the order of the keys: TSYNC_* one a key, and
// DATABASE_URL and REDIS_URL. Checks of deployment manifests use it to
// catch a misspelt variable, which would otherwise be ignored.
func EnvVars() []string {
	var out []string
	for _, f := range fields() {
		out = append(out, f.envNames()...)
	}
	return out
}

// envName returns the TSYNC_ environment variable overriding key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
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
