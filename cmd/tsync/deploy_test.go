package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tsync/tsync/cli"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/text"
)

// The deployment files (docker-compose.yml, deploy/) checked against the
// tsync command they run: their command lines are real commands and flags
// of the tsync binary, their environment variables real config variables,
// their config valid, their ports and probes those of metrics_address, and
// their grace periods longer than shutdown_timeout. Each check is shown to
// catch a typo.

// The processes a deployment runs, one service or Deployment each.
var processes = []string{"worker", "starter", "dispatcher"}

// graceMargin is how much longer than shutdown_timeout a process may take
// to stop before it is killed: beyond the steps' shutdown_timeout, the
// worker tells the server it stops and closes its connections.
const graceMargin = 10 * time.Second

// commandLine parses args (after the binary) with the tsync command's own
// cobra tree, as the binary would, and returns the command it runs, its
// flags parsed.
func commandLine(args []string) (*cobra.Command, error) {
	root := cli.Command(definition())
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, err
	}
	if cmd == root {
		return nil, fmt.Errorf("%q names no command", args)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.Name(), err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.Name(), err)
	}
	if !cmd.Runnable() {
		return nil, fmt.Errorf("%s runs nothing", cmd.CommandPath())
	}
	return cmd, nil
}

// problems collects what is wrong, one line each.
type problems []string

func (p *problems) add(where, format string, args ...any) {
	*p = append(*p, where+": "+text.OneLine(fmt.Sprintf(format, args...), " "))
}

// envNames are the environment variables that change tsync's config.
func envNames() map[string]bool {
	m := map[string]bool{}
	for _, n := range config.EnvVars() {
		m[n] = true
	}
	return m
}

// listenPort returns the port of a metrics_address.
func listenPort(address string) (int, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return 0, fmt.Errorf("metrics_address %q: %w", address, err)
	}
	return strconv.Atoi(port)
}

// entrypoint returns the binary the Dockerfile's image runs.
func entrypoint(dockerfile []byte) (string, error) {
	m := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]$`).FindSubmatch(dockerfile)
	if m == nil {
		return "", errors.New("Dockerfile: no ENTRYPOINT [\"...\"]")
	}
	return string(m[1]), nil
}

// makeVersion returns the value of a version variable of the Makefile,
// without its "v".
func makeVersion(makefile []byte, name string) (string, error) {
	m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*v(\S+)$`).FindSubmatch(makefile)
	if m == nil {
		return "", fmt.Errorf("Makefile: no %s", name)
	}
	return string(m[1]), nil
}

// repoFiles are the files the checks read, by path from the module root.
type repoFiles map[string][]byte

func readRepoFiles(t *testing.T) repoFiles {
	t.Helper()
	files := repoFiles{}
	for _, name := range []string{"docker-compose.yml", "Dockerfile", "Makefile"} {
		data, err := os.ReadFile(filepath.Join("..", "..", name))
		require.NoError(t, err)
		files[name] = data
	}
	manifests, err := filepath.Glob(filepath.Join("..", "..", "deploy", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, manifests)
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		require.NoError(t, err)
		files["deploy/"+filepath.Base(m)] = data
	}
	return files
}

// --- docker-compose.yml ---

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Expose      []string          `yaml:"expose"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// interpolate expands compose's ${NAME:-default} (to default), ${NAME} (to
// nothing) and $$: the values a checkout without an .env file runs with.
func interpolate(s string) string {
	s = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:-([^}]*))?\}`).ReplaceAllString(s, "$2")
	return strings.ReplaceAll(s, "$$", "$")
}

// composeProblems checks docker-compose.yml's tsync services (those of the
// tsync image) and the Temporal images' versions.
func composeProblems(files repoFiles) problems {
	var p problems
	var f composeFile
	if err := yaml.Unmarshal(files["docker-compose.yml"], &f); err != nil {
		p.add("docker-compose.yml", "%v", err)
		return p
	}
	bin, err := entrypoint(files["Dockerfile"])
	if err != nil {
		p.add("Dockerfile", "%v", err)
		return p
	}
	names := envNames()
	var found []string
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		s := f.Services[name]
		where := "docker-compose.yml: service " + name
		image, tag, _ := strings.Cut(s.Image, ":")
		switch image {
		case "temporalio/server", "temporalio/ui":
			v, err := makeVersion(files["Makefile"], map[string]string{
				"temporalio/server": "TEMPORAL_SERVER_VERSION", "temporalio/ui": "TEMPORAL_UI_VERSION",
			}[image])
			if err != nil {
				p.add(where, "%v", err)
			} else if tag != v {
				p.add(where, "image %s, but the project runs version %s (Makefile)", s.Image, v)
			}
		case "temporalio/admin-tools":
			v, err := makeVersion(files["Makefile"], "TEMPORAL_SERVER_VERSION")
			if err == nil && !strings.HasPrefix(tag, v+"-") && tag != v {
				p.add(where, "image %s, but the project runs server version %s (Makefile)", s.Image, v)
			}
		}
		if image != "tsync" {
			continue
		}
		found = append(found, name)
		cmd, err := commandLine(s.Command)
		if err != nil {
			p.add(where, "command %q: %v", s.Command, err)
		} else if cmd.Name() != name {
			p.add(where, "runs %q, not %q", cmd.Name(), name)
		}
		env := []string{}
		for k, v := range s.Environment {
			if !names[k] {
				p.add(where, "environment variable %s is not a tsync config variable", k)
			}
			env = append(env, k+"="+interpolate(v))
		}
		sort.Strings(env)
		// The image has no config file: the sample built into it applies.
		cfg, err := config.Parse(config.Sample, env)
		if err != nil {
			p.add(where, "%v", err)
			continue
		}
		port, err := listenPort(cfg.MetricsAddress)
		if err != nil {
			p.add(where, "%v", err)
		} else if !slices.Contains(s.Expose, strconv.Itoa(port)) {
			p.add(where, "exposes %q, not the port of metrics_address %q", s.Expose, cfg.MetricsAddress)
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" || s.Healthcheck.Test[1] != bin {
			p.add(where, "no healthcheck [\"CMD\", %q, \"health\"]", bin)
		} else if hc, err := commandLine(s.Healthcheck.Test[2:]); err != nil {
			p.add(where, "healthcheck %q: %v", s.Healthcheck.Test, err)
		} else if hc.Name() != "health" {
			p.add(where, "healthcheck runs %q, not health", hc.Name())
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil {
			p.add(where, "stop_grace_period %q: %v (Docker's default, 10s, is shorter than shutdown_timeout)", s.StopGracePeriod, err)
		} else if grace < cfg.ShutdownTimeout+graceMargin {
			p.add(where, "stop_grace_period %s, not %s longer than shutdown_timeout %s", grace, graceMargin, cfg.ShutdownTimeout)
		}
	}
	if !slices.Equal(found, slices.Sorted(slices.Values(processes))) {
		p.add("docker-compose.yml", "services of the tsync image %q, want %q", found, processes)
	}
	return p
}

// --- deploy/ (Kubernetes) ---

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data      map[string]string `yaml:"data"`
	Resources []string          `yaml:"resources"`
	Spec      struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string    `yaml:"name"`
		Value     *string   `yaml:"value"`
		ValueFrom yaml.Node `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// manifestProblems checks the Kubernetes manifests of deploy/.
func manifestProblems(files repoFiles) problems {
	var p problems
	bin, err := entrypoint(files["Dockerfile"])
	if err != nil {
		p.add("Dockerfile", "%v", err)
		return p
	}
	type located struct {
		file string
		obj  k8sObject
	}
	var objs []located
	var yamlFiles []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !strings.HasPrefix(name, "deploy/") {
			continue
		}
		yamlFiles = append(yamlFiles, path.Base(name))
		dec := yaml.NewDecoder(bytes.NewReader(files[name]))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				p.add(name, "%v", err)
				break
			}
			objs = append(objs, located{name, o})
		}
	}
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		if o.obj.Kind == "ConfigMap" {
			configMaps[o.obj.Metadata.Name] = o.obj.Data
		}
	}
	names := envNames()
	var found []string
	for _, o := range objs {
		where := o.file + ": " + o.obj.Kind + " " + o.obj.Metadata.Name
		switch o.obj.Kind {
		case "Kustomization":
			want := slices.DeleteFunc(slices.Clone(yamlFiles), func(f string) bool { return f == path.Base(o.file) })
			if got := slices.Sorted(slices.Values(o.obj.Resources)); !slices.Equal(got, want) {
				p.add(where, "resources %q, but deploy/ holds %q", got, want)
			}
			continue
		case "Deployment":
		default:
			continue
		}
		spec := o.obj.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			p.add(where, "%d containers, want the tsync one", len(spec.Containers))
			continue
		}
		c := spec.Containers[0]
		component := o.obj.Metadata.Labels["app.kubernetes.io/component"]
		found = append(found, component)
		args := c.Args
		if len(c.Command) > 0 {
			if c.Command[0] != bin && c.Command[0] != path.Base(bin) {
				p.add(where, "command %q does not run %s", c.Command, bin)
				continue
			}
			args = append(slices.Clone(c.Command[1:]), c.Args...)
		}
		cmd, err := commandLine(args)
		if err != nil {
			p.add(where, "command line %q: %v", args, err)
			continue
		}
		if cmd.Name() != component {
			p.add(where, "runs %q, but is the %q", cmd.Name(), component)
		}
		if component == "worker" && (o.obj.Spec.Replicas == nil || *o.obj.Spec.Replicas < 2) {
			p.add(where, "fewer than 2 worker replicas")
		}

		// The config: --config, in a ConfigMap mounted there.
		file := cmd.Flags().Lookup("config").Value.String()
		if file == "" {
			p.add(where, "no --config: the ConfigMap's config is not read")
			continue
		}
		var data string
		var ok bool
		for _, m := range c.VolumeMounts {
			if m.MountPath != path.Dir(file) {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					data, ok = configMaps[v.ConfigMap.Name][path.Base(file)]
					if !ok {
						p.add(where, "ConfigMap %s (mounted at %s) has no %s", v.ConfigMap.Name, m.MountPath, path.Base(file))
					}
				}
			}
		}
		if !ok {
			p.add(where, "--config %s: no ConfigMap with that file is mounted at %s", file, path.Dir(file))
			continue
		}
		var env []string
		for _, e := range c.Env {
			if !names[e.Name] {
				p.add(where, "environment variable %s is not a tsync config variable", e.Name)
			}
			if e.Value != nil {
				env = append(env, e.Name+"="+*e.Value)
			}
		}
		cfg, err := config.Parse([]byte(data), env)
		if err != nil {
			p.add(where, "%v", err)
			continue
		}

		// Probes on metrics_address's port.
		port, err := listenPort(cfg.MetricsAddress)
		if err != nil {
			p.add(where, "%v", err)
			continue
		}
		portOf := func(v any) int {
			switch v := v.(type) {
			case int:
				return v
			case string:
				for _, cp := range c.Ports {
					if cp.Name == v {
						return cp.ContainerPort
					}
				}
			}
			return 0
		}
		for _, pr := range []struct {
			name  string
			probe *k8sProbe
			path  string
			need  bool
		}{
			{"startupProbe", c.StartupProbe, "/healthz", false},
			{"livenessProbe", c.LivenessProbe, "/healthz", true},
			{"readinessProbe", c.ReadinessProbe, "/readyz", true},
		} {
			switch {
			case pr.probe == nil && pr.need:
				p.add(where, "no %s", pr.name)
			case pr.probe == nil:
			case pr.probe.HTTPGet == nil:
				p.add(where, "%s is not an httpGet of %s", pr.name, pr.path)
			default:
				if pr.probe.HTTPGet.Path != pr.path {
					p.add(where, "%s path %q, want %s", pr.name, pr.probe.HTTPGet.Path, pr.path)
				}
				if got := portOf(pr.probe.HTTPGet.Port); got != port {
					p.add(where, "%s port %v (%d), but metrics_address is %q", pr.name, pr.probe.HTTPGet.Port, got, cfg.MetricsAddress)
				}
			}
		}

		grace := spec.TerminationGracePeriodSeconds
		if grace == nil {
			p.add(where, "no terminationGracePeriodSeconds (Kubernetes' default, 30s, leaves no time beyond shutdown_timeout %s)", cfg.ShutdownTimeout)
		} else if g := time.Duration(*grace) * time.Second; g < cfg.ShutdownTimeout+graceMargin {
			p.add(where, "terminationGracePeriodSeconds %d, not %s longer than shutdown_timeout %s", *grace, graceMargin, cfg.ShutdownTimeout)
		}
	}
	if got := slices.Sorted(slices.Values(found)); !slices.Equal(got, slices.Sorted(slices.Values(processes))) {
		p.add("deploy/", "Deployments of %q, want %q", got, processes)
	}
	return p
}

// The real files pass.
func TestDeploymentFiles(t *testing.T) {
	files := readRepoFiles(t)
	require.Empty(t, composeProblems(files))
	require.Empty(t, manifestProblems(files))
}

// Each check catches a typo: the real files with one change each.
func TestDeploymentFilesTypos(t *testing.T) {
	for _, tc := range []struct {
		file, old, new string
		want           string
	}{
		// docker-compose.yml
		{"docker-compose.yml", `command: ["starter"]`, `command: ["sarter"]`,
			`docker-compose.yml: service starter: command ["sarter"]: unknown command "sarter" for "tsync" Did you mean this? starter`},
		{"docker-compose.yml", `command: ["dispatcher"]`, `command: ["dispatcher", "--verbose"]`,
			`docker-compose.yml: service dispatcher: command ["dispatcher" "--verbose"]: dispatcher: unknown flag: --verbose`},
		{"docker-compose.yml", `command: ["worker"]`, `command: ["starter"]`,
			`docker-compose.yml: service worker: runs "starter", not "worker"`},
		{"docker-compose.yml", `TSYNC_SHUTDOWN_TIMEOUT: 30s`, `TSYNC_SHUTDOWN_TIMEOUTS: 30s`,
			`docker-compose.yml: service dispatcher: environment variable TSYNC_SHUTDOWN_TIMEOUTS is not a tsync config variable`},
		{"docker-compose.yml", `TSYNC_SHUTDOWN_TIMEOUT: 30s`, `TSYNC_SHUTDOWN_TIMEOUT: 30`,
			`docker-compose.yml: service dispatcher: config: shutdown_timeout: invalid duration "30", missing a unit such as "s" or "ms" (from TSYNC_SHUTDOWN_TIMEOUT)`},
		{"docker-compose.yml", `TSYNC_METRICS_ADDRESS: ":9464"`, `TSYNC_METRICS_ADDRESS: ":9465"`,
			`docker-compose.yml: service dispatcher: exposes ["9464"], not the port of metrics_address ":9465"`},
		{"docker-compose.yml", `"/usr/local/bin/tsync", "health"]`, `"/usr/local/bin/tsync", "helth"]`,
			`docker-compose.yml: service dispatcher: healthcheck ["CMD" "/usr/local/bin/tsync" "helth"]: unknown command "helth" for "tsync" Did you mean this? health`},
		{"docker-compose.yml", `"/usr/local/bin/tsync", "health"]`, `"/usr/bin/tsync", "health"]`,
			`docker-compose.yml: service dispatcher: no healthcheck ["CMD", "/usr/local/bin/tsync", "health"]`},
		{"docker-compose.yml", `stop_grace_period: 45s`, `stop_grace_period: 35s`,
			`docker-compose.yml: service dispatcher: stop_grace_period 35s, not 10s longer than shutdown_timeout 30s`},
		{"docker-compose.yml", `image: temporalio/server:1.29.1`, `image: temporalio/server:1.29.0`,
			`docker-compose.yml: service temporal: image temporalio/server:1.29.0, but the project runs version 1.29.1 (Makefile)`},
		// deploy/
		{"deploy/worker.yaml", `args: ["worker",`, `args: ["wroker",`,
			`deploy/worker.yaml: Deployment tsync-worker: command line ["wroker" "--config" "/etc/tsync/config/config.yaml" "--log-format" "json"]: unknown command "wroker" for "tsync" Did you mean this? worker`},
		{"deploy/starter.yaml", `"--log-format", "json"`, `"--log-fromat", "json"`,
			`deploy/starter.yaml: Deployment tsync-starter: command line ["starter" "--config" "/etc/tsync/config/config.yaml" "--log-fromat" "json"]: starter: unknown flag: --log-fromat`},
		{"deploy/dispatcher.yaml", `args: ["dispatcher",`, `args: ["dispatcher", "extra",`,
			`deploy/dispatcher.yaml: Deployment tsync-dispatcher: command line ["dispatcher" "extra" "--config" "/etc/tsync/config/config.yaml" "--log-format" "json"]: dispatcher: unknown command "extra" for "tsync dispatcher"`},
		{"deploy/worker.yaml", `- name: TSYNC_DATABASE_URL`, `- name: TSYNC_DATABSE_URL`,
			`deploy/worker.yaml: Deployment tsync-worker: environment variable TSYNC_DATABSE_URL is not a tsync config variable`},
		{"deploy/worker.yaml", `path: /readyz`, `path: /ready`,
			`deploy/worker.yaml: Deployment tsync-worker: readinessProbe path "/ready", want /readyz`},
		{"deploy/worker.yaml", `livenessProbe:`, `livenesProbe:`,
			`deploy/worker.yaml: Deployment tsync-worker: no livenessProbe`},
		{"deploy/starter.yaml", `containerPort: 9464`, `containerPort: 9465`,
			`deploy/starter.yaml: Deployment tsync-starter: livenessProbe port metrics (9465), but metrics_address is ":9464"`},
		{"deploy/config.yaml", `metrics_address: ":9464"`, `metrics_address: ":9465"`,
			`deploy/dispatcher.yaml: Deployment tsync-dispatcher: livenessProbe port metrics (9464), but metrics_address is ":9465"`},
		{"deploy/config.yaml", `shutdown_timeout: 30s`, `shutdown_timeout: 55s`,
			`deploy/dispatcher.yaml: Deployment tsync-dispatcher: terminationGracePeriodSeconds 60, not 10s longer than shutdown_timeout 55s`},
		{"deploy/config.yaml", `shutdown_timeout: 30s`, `shutdwn_timeout: 30s`,
			`deploy/dispatcher.yaml: Deployment tsync-dispatcher: config: unknown key "shutdwn_timeout" in the YAML config (did you mean "shutdown_timeout"?)`},
		{"deploy/worker.yaml", `terminationGracePeriodSeconds: 60`, `terminationGracePeriodSeconds: 30`,
			`deploy/worker.yaml: Deployment tsync-worker: terminationGracePeriodSeconds 30, not 10s longer than shutdown_timeout 30s`},
		{"deploy/worker.yaml", `replicas: 2`, `replicas: 1`,
			`deploy/worker.yaml: Deployment tsync-worker: fewer than 2 worker replicas`},
		{"deploy/starter.yaml", `"/etc/tsync/config/config.yaml"`, `"/etc/tsync/conf/config.yaml"`,
			`deploy/starter.yaml: Deployment tsync-starter: --config /etc/tsync/conf/config.yaml: no ConfigMap with that file is mounted at /etc/tsync/conf`},
		{"deploy/kustomization.yaml", "  - dispatcher.yaml\n", "",
			`deploy/kustomization.yaml: Kustomization : resources ["config.yaml" "starter.yaml" "worker.yaml"], but deploy/ holds ["config.yaml" "dispatcher.yaml" "starter.yaml" "worker.yaml"]`},
	} {
		t.Run(tc.file+": "+tc.new, func(t *testing.T) {
			files := readRepoFiles(t)
			orig := string(files[tc.file])
			require.Contains(t, orig, tc.old, "the change does not apply")
			files[tc.file] = []byte(strings.Replace(orig, tc.old, tc.new, 1))
			all := append(composeProblems(files), manifestProblems(files)...)
			require.Contains(t, all, tc.want)
		})
	}
}
