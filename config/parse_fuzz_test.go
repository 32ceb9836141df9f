package config

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; it either fails with a one-line error or
// returns a Config that passes Validate.
func FuzzParse(f *testing.F) {
	for _, s := range []struct{ yaml, env string }{
		{"", ""},
		{"observer_name: demo\n", ""},
		{"database_url: postgres://postgres@127.0.0.1:5432/test\nschema: public\n", ""},
		{"temporal:\n  host_port: 127.0.0.1:7233\n  namespace: default\n  task_queue: tsync\n", ""},
		{"step_timeout: 2s\nloop_interval: 500ms\n", ""},
		{"step_timeout: -1s\n", ""},
		{"step_timeout: forever\n", ""},
		{"nosuchkey: 1\n", ""},
		{"schema: [a, b]\n", ""},
		{"temporal: 3\n", ""},
		{": :\n\t- x", ""},
		{"a: &x [*x]\n", ""},
		{"log_level: debug\n", "TSYNC_LOG_LEVEL=warn"},
		{"", "TSYNC_DATABASE_URL=postgres://u:p@h/db\nTSYNC_STEP_TIMEOUT=3s"},
		{"", "TSYNC_STEP_TIMEOUT=banana"},
		{"", "TSYNC_TEMPORAL_HOST_PORT=\nTSYNC_SCHEMA=bad schema"},
		{"", "NOEQUALS\n=x\nTSYNC_=1"},
	} {
		f.Add([]byte(s.yaml), s.env)
	}
	f.Fuzz(func(t *testing.T, yaml []byte, env string) {
		var environ []string
		if env != "" {
			environ = strings.Split(env, "\n")
		}
		c, err := Parse(yaml, environ)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err.Error())
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that fails Validate: %v", err)
		}
	})
}
