package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tsync/tsync"
)

// Names that reach the playbook, the inventory or ssh are checked against
// these (model names against models.ValidName), so that none can be read as
// anything but a name.
var (
	roleName     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	hostName     = regexp.MustCompile(`^[A-Za-z0-9_:][A-Za-z0-9_.:-]{0,252}$`)
	userName     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	pluginName   = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,127}$`)
	variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// Reserved variables, set by tsync for every run.
const (
	// VarState is "present" for a sync and "absent" for a delete.
	VarState = "state"
	// VarTsync is the object's reference: {model, id, operation, synchronizer}.
	VarTsync = "tsync"
)

// group is the inventory group the wrapper's play runs on.
const group = "tsync_targets"

// files is what one run writes in its directory.
type files struct {
	playbook, inventory, vars, config, script []byte
}

// target is a checked tsync.AnsibleTarget.
type target struct {
	hosts      []string
	connection string
	user       string
	port       int
	key        string
	become     bool
}

func checkTarget(t tsync.AnsibleTarget) (target, error) {
	out := target{hosts: t.Hosts, connection: t.Connection, user: t.User, port: t.Port, key: t.PrivateKeyFile, become: t.Become}
	if len(out.hosts) == 0 {
		out.hosts = []string{"localhost"}
	}
	for i, h := range out.hosts {
		if !hostName.MatchString(h) {
			return target{}, fmt.Errorf("invalid host %q: want letters, digits and .-_: only", h)
		}
		if slices.Contains(out.hosts[:i], h) {
			return target{}, fmt.Errorf("host %q is listed twice", h)
		}
	}
	if out.connection == "" {
		out.connection = "ssh"
	}
	if !pluginName.MatchString(out.connection) {
		return target{}, fmt.Errorf("invalid connection %q: want ssh, local or another connection plugin's name", out.connection)
	}
	if out.user != "" && !userName.MatchString(out.user) {
		return target{}, fmt.Errorf("invalid user %q", out.user)
	}
	if out.port < 0 || out.port > 65535 {
		return target{}, fmt.Errorf("invalid port %d", out.port)
	}
	if strings.ContainsAny(out.key, "\x00\n\r") {
		return target{}, fmt.Errorf("invalid private key file name %q", out.key)
	}
	return out, nil
}

// jump is a parsed observer_proxy_ssh.
type jump struct {
	user, host string
	port       int
}

// parseJump parses "[user@]host[:port]" (an IPv6 host in brackets).
func parseJump(s string) (*jump, error) {
	if s == "" {
		return nil, nil
	}
	bad := fmt.Errorf("invalid observer_proxy_ssh %q, want [user@]host[:port]", s)
	j := &jump{}
	if user, rest, ok := strings.Cut(s, "@"); ok {
		if !userName.MatchString(user) {
			return nil, bad
		}
		j.user, s = user, rest
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return nil, bad
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return nil, bad
			}
			port = p
		}
	} else if h, p, ok := strings.Cut(s, ":"); ok {
		host, port = h, p
	}
	if !hostName.MatchString(host) {
		return nil, bad
	}
	j.host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad
		}
		j.port = n
	}
	return j, nil
}

// proxyCommand is the ProxyCommand that reaches %h:%p through j.
func (j *jump) proxyCommand(sshArgs []string) string {
	argv := []string{"ssh", "-o", "BatchMode=yes"}
	argv = append(argv, sshArgs...)
	if j.port != 0 {
		argv = append(argv, "-p", strconv.Itoa(j.port))
	}
	if j.user != "" {
		argv = append(argv, "-l", j.user)
	}
	argv = append(argv, "-W", "[%h]:%p", j.host)
	return shellJoin(argv)
}

// shellQuote quotes s for a POSIX shell (and Python's shlex, which Ansible
// uses to split ssh arguments).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// normalizeVars turns the step's variables into plain JSON values (maps,
// slices, strings, json.Number, bools, nil) and adds the reserved ones.
func normalizeVars(vars map[string]any, state string, ref map[string]any) (map[string]any, error) {
	for k := range vars {
		switch {
		case k == VarState || k == VarTsync:
			return nil, fmt.Errorf("variable %q is reserved: tsync sets it", k)
		case !variableName.MatchString(k):
			return nil, fmt.Errorf("invalid variable name %q: want a letter or _ then letters, digits and _", k)
		}
	}
	data, err := json.Marshal(vars)
	if err != nil {
		return nil, fmt.Errorf("variables: %w", err)
	}
	out := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("variables: %w", err)
	}
	if out == nil {
		out = map[string]any{}
	}
	out[VarState] = state
	out[VarTsync] = ref
	return out, nil
}

// unsafeNode returns v (a normalized JSON value) as a YAML node whose every
// string, keys included, is tagged !unsafe, so that Ansible never templates
// it.
func unsafeNode(v any) *yaml.Node {
	switch v := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v.String()}
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: v.String()}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: v, Style: yaml.DoubleQuotedStyle}
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range v {
			n.Content = append(n.Content, unsafeNode(e))
		}
		return n
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
			if !variableName.MatchString(k) {
				key = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: k, Style: yaml.DoubleQuotedStyle}
			}
			n.Content = append(n.Content, key, unsafeNode(v[k]))
		}
		return n
	}
	// normalizeVars leaves nothing else.
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: fmt.Sprint(v), Style: yaml.DoubleQuotedStyle}
}

// plainNode returns v (strings, ints, bools, maps and slices of them) as a
// YAML node with plain tags, for the playbook and the inventory, which hold
// only names and numbers tsync checked.
func plainNode(v any) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		panic(fmt.Sprintf("ansible: encode %T: %v", v, err)) // only types Encode handles are passed
	}
	return n
}

// mapping builds a mapping node from key/value pairs, in order.
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i < len(kv); i += 2 {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv[i].(string)})
		v := kv[i+1]
		if node, ok := v.(*yaml.Node); ok {
			n.Content = append(n.Content, node)
		} else {
			n.Content = append(n.Content, plainNode(v))
		}
	}
	return n
}

func encode(doc *yaml.Node, comment string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	d := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}, HeadComment: comment}
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// render builds the files of one run.
func (r *Runner) render(job Job, t target, vars map[string]any) (files, error) {
	var f files
	var err error
	title := fmt.Sprintf("tsync: %s %d, %s: role %s", job.Model, job.ID, job.Operation, job.Role)
	rerun := "Re-run it by hand from anywhere: " + shellQuote(r.absDir(job)+"/run.sh")

	play := []any{
		"name", fmt.Sprintf("tsync %s %s %d", job.Operation, job.Model, job.ID),
		"hosts", group,
		"connection", t.connection,
	}
	if t.user != "" {
		play = append(play, "remote_user", t.user)
	}
	play = append(play,
		"become", t.become,
		"gather_facts", false,
		"roles", []any{map[string]any{"role": job.Role}},
	)
	doc := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{mapping(play...)}}
	if f.playbook, err = encode(doc, title+"\n"+rerun+"\nThe variables are in vars.yml (passed with -e @vars.yml), the hosts in inventory.yml."); err != nil {
		return files{}, err
	}

	hosts := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, h := range t.hosts {
		hosts.Content = append(hosts.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: h, Style: yaml.DoubleQuotedStyle}, mapping())
	}
	groupVars := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	addVar := func(k string, v *yaml.Node) {
		groupVars.Content = append(groupVars.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
	}
	if t.port != 0 {
		addVar("ansible_port", unsafeNode(int64(t.port)))
	}
	if t.key != "" {
		addVar("ansible_ssh_private_key_file", unsafeNode(t.key))
	}
	if args := r.sshCommonArgs(); args != "" {
		addVar("ansible_ssh_common_args", unsafeNode(args))
	}
	targets := mapping("hosts", hosts)
	if len(groupVars.Content) > 0 {
		targets.Content = append(targets.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "vars"}, groupVars)
	}
	inv := mapping("all", mapping("children", mapping(group, targets)))
	if f.inventory, err = encode(inv, title+"\nThe hosts the playbook runs on."); err != nil {
		return files{}, err
	}

	if f.vars, err = encode(unsafeNode(vars), title+"\nThe playbook's variables. Every string is !unsafe: Ansible treats it as text, never as a template."); err != nil {
		return files{}, err
	}

	rolesPath := append(slices.Clone(r.rolesPath), r.sharedDir("roles"))
	f.config = fmt.Appendf(nil, `# %s
# ansible-playbook reads this through ANSIBLE_CONFIG (run.sh sets it).
[defaults]
roles_path = %s
callback_plugins = %s
callbacks_enabled = tsync_events
retry_files_enabled = False
interpreter_python = auto_silent

[ssh_connection]
# ssh ControlPersist sockets: one set per sys dir, so that runs with another
# jump host or sys dir never share a connection.
control_path_dir = %s
`, title, strings.Join(rolesPath, ":"), r.sharedDir("callback_plugins"), r.sharedDir("cp"))

	f.script = fmt.Appendf(nil, `#!/bin/sh
# %s
# Re-runs the playbook as tsync last ran it (tsync writes the output to run.log;
# this prints it). Extra arguments go to ansible-playbook, e.g. ./run.sh --check --diff
cd "$(dirname "$0")" || exit 1
ANSIBLE_CONFIG=./ansible.cfg exec %s %s "$@"
`, title, shellQuote(r.command), shellJoin(playbookArgs))
	return f, nil
}

// playbookArgs are ansible-playbook's arguments, relative to the run's
// directory; the same for tsync and for run.sh.
var playbookArgs = []string{"-i", "inventory.yml", "-e", "@vars.yml", "playbook.yml"}

// sshCommonArgs is ansible_ssh_common_args: Options.SSHArgs and the jump
// host's ProxyCommand.
func (r *Runner) sshCommonArgs() string {
	args := slices.Clone(r.opts.SSHArgs)
	if r.jump != nil {
		args = append(args, "-o", "ProxyCommand="+r.jump.proxyCommand(r.opts.SSHArgs))
	}
	return shellJoin(args)
}
