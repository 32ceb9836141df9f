package ansible

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/engine"
)

func TestParseJump(t *testing.T) {
	for in, want := range map[string]jump{
		"bastion":                {host: "bastion"},
		"ops@bastion.example":    {user: "ops", host: "bastion.example"},
		"ops@10.0.0.1:2222":      {user: "ops", host: "10.0.0.1", port: 2222},
		"[::1]:2200":             {host: "::1", port: 2200},
		"root@[fe80::1]":         {user: "root", host: "fe80::1"},
		"jump-1.example.org:22":  {host: "jump-1.example.org", port: 22},
		"svc_user@jump_host:222": {user: "svc_user", host: "jump_host", port: 222},
	} {
		j, err := parseJump(in)
		require.NoError(t, err, in)
		require.Equal(t, want, *j, in)
	}
	for _, in := range []string{"@host", "a b@host", "host:0", "host:x", "host:99999", "-oProxyCommand=x", "[::1", "[::1]x", "ho;st", "u@ho$t"} {
		_, err := parseJump(in)
		require.Error(t, err, in)
	}
	j, err := parseJump("")
	require.NoError(t, err)
	require.Nil(t, j)
}

func TestProxyCommandQuoting(t *testing.T) {
	j := &jump{user: "ops", host: "bastion", port: 2222}
	got := j.proxyCommand([]string{"-i", "/keys/my key", "-o", "UserKnownHostsFile=/dev/null"})
	require.Equal(t, `ssh -o BatchMode=yes -i '/keys/my key' -o UserKnownHostsFile=/dev/null -p 2222 -l ops -W '[%h]:%p' bastion`, got)
	require.Equal(t, `'it'"'"'s'`, shellQuote("it's"))
	require.Equal(t, `''`, shellQuote(""))
}

func TestCheckTarget(t *testing.T) {
	got, err := checkTarget(tsync.AnsibleTarget{})
	require.NoError(t, err)
	require.Equal(t, []string{"localhost"}, got.hosts)
	require.Equal(t, "ssh", got.connection)
	for _, bad := range []tsync.AnsibleTarget{
		{Hosts: []string{"web[1:3]"}},
		{Hosts: []string{"a b"}},
		{Hosts: []string{"-oProxyCommand=x"}},
		{Hosts: []string{"h", "h"}},
		{Connection: "ssh; rm"},
		{User: "root -o x"},
		{Port: 70000},
		{PrivateKeyFile: "key\nProxyCommand x"},
	} {
		_, err := checkTarget(bad)
		require.Error(t, err, "%+v", bad)
	}
}

func TestNormalizeVarsReservesNames(t *testing.T) {
	_, err := normalizeVars(map[string]any{"state": "x"}, "present", nil)
	require.ErrorContains(t, err, `variable "state" is reserved`)
	_, err = normalizeVars(map[string]any{"tsync": 1}, "present", nil)
	require.ErrorContains(t, err, "reserved")
	_, err = normalizeVars(map[string]any{"bad-name": 1}, "present", nil)
	require.ErrorContains(t, err, "invalid variable name")
	_, err = normalizeVars(map[string]any{"ch": make(chan int)}, "present", nil)
	require.Error(t, err)
}

// Every string of vars.yml is !unsafe, keys included where they are not
// plain names; numbers, booleans and nulls keep their types.
func TestRenderedVarsAreUnsafeData(t *testing.T) {
	r := NewRunner(Options{SysDir: t.TempDir(), Synchronizer: "demo"})
	vars, err := normalizeVars(map[string]any{
		"banner": "{{ lookup('pipe', 'id') }}\n$(id); `id` 'q' \"dq\"",
		"port":   8080,
		"ratio":  1.5,
		"on":     true,
		"none":   nil,
		"list":   []any{"a", 2},
		"nested": map[string]any{"weird key {{x}}": "v"},
		"struct": struct {
			Name string `json:"name"`
		}{"n"},
	}, "present", map[string]any{"model": "M", "id": 1, "operation": "sync", "synchronizer": "demo"})
	require.NoError(t, err)
	tg, err := checkTarget(tsync.LocalTarget)
	require.NoError(t, err)
	f, err := r.render(Job{Model: "M", ID: 1, Operation: engine.OpSync, Role: "write_file"}, tg, vars)
	require.NoError(t, err)
	text := string(f.vars)
	require.Contains(t, text, `banner: !unsafe "{{ lookup('pipe', 'id') }}\n$(id); `+"`id`"+` 'q' \"dq\""`)
	require.Contains(t, text, "port: 8080\n")
	require.Contains(t, text, "ratio: 1.5\n")
	require.Contains(t, text, "on: true\n")
	require.Contains(t, text, "none: null\n")
	require.Contains(t, text, `!unsafe "weird key {{x}}": !unsafe "v"`)
	require.Contains(t, text, `name: !unsafe "n"`)
	require.Contains(t, text, "state: !unsafe \"present\"")

	// The strings come back exact.
	var back map[string]any
	require.NoError(t, yaml.Unmarshal(f.vars, &back))
	require.Equal(t, "{{ lookup('pipe', 'id') }}\n$(id); `id` 'q' \"dq\"", back["banner"])

	// The playbook holds no variable, only the wrapper.
	var play []map[string]any
	require.NoError(t, yaml.Unmarshal(f.playbook, &play))
	require.Equal(t, []map[string]any{{
		"name": "tsync sync M 1", "hosts": "tsync_targets", "connection": "local",
		"become": false, "gather_facts": false, "roles": []any{map[string]any{"role": "write_file"}},
	}}, play)
	require.NotContains(t, string(f.playbook), "lookup")
	require.True(t, strings.HasPrefix(string(f.script), "#!/bin/sh\n"))
	require.Contains(t, string(f.script), "ANSIBLE_CONFIG=./ansible.cfg exec ansible-playbook -i inventory.yml -e @vars.yml playbook.yml \"$@\"")
}

func TestRenderedInventory(t *testing.T) {
	r := NewRunner(Options{SysDir: t.TempDir(), ProxySSH: "ops@jump:2222", SSHArgs: []string{"-o", "UserKnownHostsFile=/k"}})
	tg, err := checkTarget(tsync.AnsibleTarget{Hosts: []string{"10.0.0.5", "web-1"}, User: "deploy", Port: 2200, PrivateKeyFile: "/keys/id", Become: true})
	require.NoError(t, err)
	f, err := r.render(Job{Model: "M", ID: 2, Operation: engine.OpDelete, Role: "r"}, tg, map[string]any{})
	require.NoError(t, err)
	var inv map[string]any
	require.NoError(t, yaml.Unmarshal(f.inventory, &inv))
	targets := inv["all"].(map[string]any)["children"].(map[string]any)["tsync_targets"].(map[string]any)
	require.Equal(t, map[string]any{"10.0.0.5": map[string]any{}, "web-1": map[string]any{}}, targets["hosts"])
	vars := targets["vars"].(map[string]any)
	require.Equal(t, 2200, vars["ansible_port"])
	require.Equal(t, "/keys/id", vars["ansible_ssh_private_key_file"])
	require.Equal(t, `-o UserKnownHostsFile=/k -o 'ProxyCommand=ssh -o BatchMode=yes -o UserKnownHostsFile=/k -p 2222 -l ops -W '"'"'[%h]:%p'"'"' jump'`,
		vars["ansible_ssh_common_args"])
	var play []map[string]any
	require.NoError(t, yaml.Unmarshal(f.playbook, &play))
	require.Equal(t, "ssh", play[0]["connection"])
	require.Equal(t, "deploy", play[0]["remote_user"])
	require.Equal(t, true, play[0]["become"])
}

func TestMessage(t *testing.T) {
	rc := 3
	require.Equal(t, "non-zero return code (rc 3): on stderr: x / second line",
		message(event{Msg: "non-zero return code", RC: &rc, Stderr: "on stderr: x\nsecond line\n"}))
	require.Equal(t, "just this", message(event{Msg: "just this"}))
	require.Equal(t, "no message", message(event{}))
	long := strings.Repeat("é", 400)
	got := message(event{Msg: long})
	require.LessOrEqual(t, len(got), maxMsg)
	require.True(t, strings.HasSuffix(got, "..."))
}
