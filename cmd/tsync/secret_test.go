package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
)

// A password in database_url never reaches the logs or the errors, at debug
// level, in text and JSON, when the database is reached and when it is not.
// (The test PostgreSQL trusts local connections: the password is ignored.)
func TestPasswordNeverLogged(t *testing.T) {
	const secret = "s3cret"
	_, schema := testenv.Schema(t)
	for _, tc := range []struct {
		name, url string
		code      int
	}{
		{"reachable", "postgres://postgres:" + secret + "@127.0.0.1:5432/test?sslmode=disable", 0},
		{"unreachable", "postgres://postgres:" + secret + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", 1},
	} {
		for _, format := range []string{"text", "json"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				env := []string{"TSYNC_DATABASE_URL=" + tc.url, "TSYNC_DATABASE_SCHEMA=" + schema,
					"TSYNC_REDIS_URL=redis://:" + secret + "@127.0.0.1:6379/0"}
				code, stdout, stderr := tsyncRun(t, env, "--log-level", "debug", "--log-format", format, "migrate")
				require.Equal(t, tc.code, code, "stdout %s\nstderr %s", stdout, stderr)
				require.NotEmpty(t, stderr, "debug logging logs the config")
				for _, out := range []string{stdout, stderr} {
					require.False(t, strings.Contains(out, secret), "the password leaked:\n%s", out)
				}
			})
		}
	}
}
