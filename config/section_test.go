package config

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncOpts is a synchronizer's own section.
type syncOpts struct {
	TargetDir string        `mapstructure:"target_dir"`
	Retries   int           `mapstructure:"retries"`
	Timeout   time.Duration `mapstructure:"timeout"`
	Tags      []string      `mapstructure:"tags"`
	API       struct {
		URL string `mapstructure:"url"`
	} `mapstructure:"api"`
}

func (o *syncOpts) Validate() error {
	if o.Retries < 0 {
		return errors.New("retries must not be negative")
	}
	return nil
}

func defaultOpts() syncOpts {
	return syncOpts{TargetDir: "var/mysync", Retries: 3, Timeout: time.Second}
}

const base = "observer_name: x\n"

func TestSectionDecodesFileThenEnvironment(t *testing.T) {
	opts := defaultOpts()
	c, err := Parse([]byte(base+"mysync:\n  target_dir: /srv/a\n  tags: [a, b]\n  api:\n    url: http://x\n"),
		[]string{"TSYNC_MYSYNC_RETRIES=5", "TSYNC_MYSYNC_API_URL=http://y"}, Section{Name: "mysync", Ptr: &opts})
	require.NoError(t, err)
	require.Equal(t, named("x"), c)
	want := syncOpts{TargetDir: "/srv/a", Retries: 5, Timeout: time.Second, Tags: []string{"a", "b"}}
	want.API.URL = "http://y"
	require.Equal(t, want, opts)

	// Without the section in the file, the defaults stay.
	opts = defaultOpts()
	_, err = Parse([]byte(base), nil, Section{Name: "mysync", Ptr: &opts})
	require.NoError(t, err)
	require.Equal(t, defaultOpts(), opts)
}

// A mistake in the section is one line naming the key and where the value
// came from, and leaves the struct as it was.
func TestSectionErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml    string
		environ []string
		want    string
	}{
		{base + "mysync:\n  target_url: x\n", nil, `config: unknown key "mysync.target_url" in the YAML config`},
		{base + "mysync:\n  target_dri: x\n", nil, `config: unknown key "mysync.target_dri" in the YAML config (did you mean "mysync.target_dir"?)`},
		{base + "target_dir: x\n", nil, `config: unknown key "target_dir" in the YAML config (did you mean "mysync.target_dir"?)`},
		{base + "mysync:\n  retries: many\n", nil, `config: mysync.retries: invalid integer "many" (in the YAML config)`},
		{base + "mysync: 3\n", nil, `config: mysync: must be a mapping with keys target_dir, retries, timeout, tags, api.url, got the integer 3 (in the YAML config)`},
		{base, []string{"TSYNC_MYSYNC_TIMEOUT=5"}, `config: mysync.timeout: invalid duration "5", missing a unit such as "s" or "ms" (from TSYNC_MYSYNC_TIMEOUT)`},
		{base, []string{"TSYNC_MYSYNC_RETRIES=-1"}, `config: mysync: retries must not be negative`},
	} {
		opts := defaultOpts()
		_, err := Parse([]byte(tc.yaml), tc.environ, Section{Name: "mysync", Ptr: &opts})
		require.EqualError(t, err, tc.want, "%q %q", tc.yaml, tc.environ)
		require.Equal(t, defaultOpts(), opts, "the struct is left as it was")
	}
}

// A section that cannot work is the program's mistake, reported as such.
func TestSectionRefusesBadSections(t *testing.T) {
	opts := defaultOpts()
	var bad struct {
		Ch chan int `mapstructure:"ch"`
	}
	var untagged struct{ Dir string }
	var demo struct {
		Dir string `mapstructure:"dir"`
	}
	for _, tc := range []struct {
		s    Section
		want string
	}{
		{Section{Name: "temporal", Ptr: &opts}, `config: section "temporal" clashes with tsync's section temporal`},
		{Section{Name: "database_url", Ptr: &opts}, `config: section "database_url" clashes with tsync's key database_url`},
		{Section{Name: "demo", Ptr: &demo}, `config: section "demo": key demo.dir has the variable TSYNC_DEMO_DIR of tsync's key demo_dir`},
		{Section{Name: "My-Sync", Ptr: &opts}, `config: section name "My-Sync" must match ^[a-z][a-z0-9_]*$`},
		{Section{Name: "mysync", Ptr: opts}, `config: section "mysync": Ptr must be a non-nil pointer to a struct, got config.syncOpts`},
		{Section{Name: "mysync", Ptr: &bad}, `config: section "mysync": key mysync.ch: type chan int is not string, bool, int, float64, time.Duration, []string or a struct`},
		{Section{Name: "mysync", Ptr: &untagged}, `config: section "mysync": field Dir needs to be exported, with a lower-case mapstructure tag`},
	} {
		_, err := Parse([]byte(base), nil, tc.s)
		require.EqualError(t, err, tc.want)
	}
}

func TestUnknownEnv(t *testing.T) {
	opts := defaultOpts()
	environ := []string{
		"TSYNC_DATABASE_URLL=postgres://x", // a typo of a key
		"TSYNC_MYSYNC_TARGET_DR=/srv",      // a typo of a section key
		"TSYNC_WHATEVER=1",                 // nothing close
		"TSYNC_DATABASE_URL=postgres://y",  // known
		"TSYNC_MYSYNC_TARGET_DIR=/srv",     // known: the section's
		"DATABASE_URL=postgres://z",        // known, not TSYNC_
		"HOME=/root",
		"TSYNC_TEMPORAL_BIN=bin/temporal", // the tests' and tools' own
		"TSYNC_TEST_DATABASE_URL=postgres://t",
		"TSYNC_HELPER_CALLS=calls",
		"TSYNC_CLUSTER_BIN=/tmp/b",
		"TSYNC_RECORD_HISTORIES=1",
	}
	require.Equal(t, []string{
		"TSYNC_DATABASE_URLL is not a tsync variable: ignored (did you mean TSYNC_DATABASE_URL?)",
		"TSYNC_MYSYNC_TARGET_DR is not a tsync variable: ignored (did you mean TSYNC_MYSYNC_TARGET_DIR?)",
		"TSYNC_WHATEVER is not a tsync variable: ignored",
	}, UnknownEnv(environ, Section{Name: "mysync", Ptr: &opts}))
	// Without the section, its variables are unknown too.
	require.Contains(t, UnknownEnv(environ), "TSYNC_MYSYNC_TARGET_DIR is not a tsync variable: ignored")
	require.Empty(t, UnknownEnv(nil))
}
