package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// badValues holds, for every configuration key, values of the right type
// that it refuses; a key that takes any string (a path) has none, and is
// listed in freeKeys instead. TestEveryKeyIsCovered keeps both complete.
var badValues = map[string][]string{
	"observer_disabled":           {"maybe", "2"},
	"observer_pretend":            {"maybe"},
	"observer_backoff_disabled":   {"maybe"},
	"observer_enable_watchers":    {"maybe"},
	"observer_proxy_ssh":          {"a b", "user@", "host:port"},
	"observer_name":               {"-x", "with space", "a/b"},
	"observer_applist":            {"a,a", "'a b'", "'core, x y'"},
	"observer_logstash_hostport":  {"nohost", "host:99999"},
	"temporal.host_port":          {"x", "'host:'", "':7233x'"},
	"temporal.namespace":          {"''"},
	"temporal.task_queue":         {"''"},
	"temporal.ui_url":             {"ftp://x", "'http://'", "localhost:8233"},
	"temporal.grpc_compression":   {"zstd", "''", "GZIP"},
	"temporal.tls":                {"maybe"},
	"temporal.tls_ca_file":        {"/nonexistent/ca.pem", ".", "config.yaml"}, // config.yaml: not PEM
	"temporal.tls_cert_file":      {"/nonexistent/cert.pem"},                   // and no key
	"temporal.tls_key_file":       {"/nonexistent/key.pem"},                    // and no certificate
	"temporal.tls_server_name":    {"'a b'", "host:7233", "a/b"},
	"temporal.api_key_file":       {"/nonexistent/key", ".", "config.yaml"}, // config.yaml: has spaces
	"temporal.api_key":            {"'a b'", "'clé'"},                       // and never in a file
	"database_url":                {"mysql://x/db", "''", "'postgres://%zz'"},
	"database_schema":             {"Bad-Name", "1abc", strings.Repeat("a", 64)},
	"database_auto_migrate":       {"maybe"},
	"redis_url":                   {"http://x:6379", "'redis://'"},
	"loop_interval":               {"0s", "-1s", "10"},
	"fetch_batch":                 {"0", "-3", "many"},
	"concurrency.workflows":       {"0", "x"},
	"concurrency.activities":      {"0", "-1"},
	"concurrency.starts":          {"0", "1.5"},
	"retry.initial_interval":      {"0s", "soon"},
	"retry.max_interval":          {"1ms", "-1s"},
	"retry.backoff_coefficient":   {"0.5", ".nan", ".inf", "x"},
	"step_timeout":                {"0s", "30"},
	"heartbeat_timeout":           {"-5s"},
	"shutdown_timeout":            {"0s", "-1s", "30"},
	"metrics_address":             {"nope", "host:port"},
	"ui_address":                  {"nope", "host:port"},
	"ui_token_file":               {"/nonexistent/token", ".", "config.yaml"}, // config.yaml: has spaces
	"observer_steps_dir":          nil,
	"observer_sys_dir":            nil,
	"observer_dependency_graph":   nil,
	"observer_log_file":           nil,
	"observer_model_policies_dir": nil,
	"demo_dir":                    nil,
}

// yamlFor writes key: value as YAML, nesting a dotted key.
func yamlFor(key, value string) string {
	y := "observer_name: demo\n"
	if key == "observer_name" {
		y = ""
	}
	if section, leaf, nested := strings.Cut(key, "."); nested {
		return y + section + ":\n  " + leaf + ": " + value + "\n"
	}
	return y + key + ": " + value + "\n"
}

// Every key is in badValues: a new key must say which values it refuses.
func TestEveryKeyIsCovered(t *testing.T) {
	var keys []string
	for _, f := range fields() {
		keys = append(keys, f.key)
		_, ok := badValues[f.key]
		require.True(t, ok, "key %s has no entry in badValues", f.key)
	}
	require.Len(t, badValues, len(keys), "badValues names keys that do not exist")
}

// Every key refuses a value of the wrong type (a mapping, and a list where
// it is not a list key) and each of its bad values, in the file and in the
// environment, with one line naming the key and where the value came from,
// and no configuration.
func TestEveryKeyRefusesWrongTypesAndValues(t *testing.T) {
	check := func(t *testing.T, key, yaml string, env []string, from string) {
		t.Helper()
		file := writeFile(t, "config.yaml", yaml)
		c, err := Load(file, env)
		require.Error(t, err, "accepted: %s %v", yaml, env)
		msg := err.Error()
		require.True(t, strings.HasPrefix(msg, "config: "+key+": "), "%s does not name %s", msg, key)
		require.True(t, strings.HasSuffix(msg, "("+from+")"), "%s does not say it came from %s", msg, from)
		require.NotContains(t, msg, "\n")
		require.Equal(t, Config{}, c)
	}
	for _, f := range fields() {
		t.Run(f.key, func(t *testing.T) {
			check(t, f.key, yamlFor(f.key, "{a: 1}"), nil, "in config.yaml")
			if f.value(&Config{}).Elem().Kind().String() != "slice" {
				check(t, f.key, yamlFor(f.key, "[1, 2]"), nil, "in config.yaml")
			}
			for _, v := range badValues[f.key] {
				check(t, f.key, yamlFor(f.key, v), nil, "in config.yaml")
				// An empty variable counts as unset, as in docker-compose.
				if ev := strings.Trim(v, "'"); ev != "" {
					env := envName(f.key)
					check(t, f.key, "observer_name: demo\n", []string{env + "=" + ev}, "from "+env)
				}
			}
			if badValues[f.key] == nil {
				// A path: any string goes.
				c, err := Load(writeFile(t, "config.yaml", yamlFor(f.key, "'./a dir/with spaces, ünïcode'")), nil)
				require.NoError(t, err)
				require.Equal(t, "./a dir/with spaces, ünïcode", f.value(&c).Elem().String())
			}
		})
	}
}
