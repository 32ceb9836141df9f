package ansible

import (
	"encoding/json"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzVarsRoundTrip checks the vars file's safety property on any field
// value: every string, as a value, a list element or a map key, is written
// tagged !unsafe (Ansible never templates it) and reads back exactly as the
// step gave it (after JSON's replacement of invalid UTF-8, which Ansible's
// JSON-based variables would do too).
func FuzzVarsRoundTrip(f *testing.F) {
	for _, s := range []string{"", "plain", "{{ lookup('pipe', 'id') }}", "{% raw %}", "a: b", "- x", "'\"", "\x00\x01\n\t\r",
		"\xff\xfe", "!unsafe", "&anchor *alias", "%TAG ! x", "---", "...", "#comment", "héllo 🚀", "\u2028\u2029\ufeff", "null", "~", "0x1F", "1e3", "yes"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, key, val string) {
		vars := map[string]any{"v": val, "l": []any{val, 1}, "m": map[string]any{key: val}}
		norm, err := normalizeVars(vars, "present", map[string]any{"model": "X", "id": 1})
		if err != nil {
			t.Fatalf("normalizeVars: %v", err)
		}
		data, err := encode(unsafeNode(norm), "vars")
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("the vars file is not YAML: %v\n%s", err, data)
		}
		wantKey, wantVal := viaJSON(t, key), viaJSON(t, val)
		top := mappingOf(t, doc.Content[0])
		check := func(what string, n *yaml.Node, want string) {
			t.Helper()
			if n.Kind != yaml.ScalarNode || n.Tag != "!unsafe" || n.Value != want {
				t.Fatalf("%s: got %v %q %q, want !unsafe %q\n%s", what, n.Kind, n.Tag, n.Value, want, data)
			}
		}
		check("value", top["v"], wantVal)
		if l := top["l"]; l.Kind != yaml.SequenceNode || len(l.Content) != 2 {
			t.Fatalf("list: %v\n%s", l.Kind, data)
		}
		check("list element", top["l"].Content[0], wantVal)
		m := top["m"]
		if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
			t.Fatalf("map: %v\n%s", m.Kind, data)
		}
		if variableName.MatchString(wantKey) {
			if m.Content[0].Value != wantKey {
				t.Fatalf("key %q read back as %q", wantKey, m.Content[0].Value)
			}
		} else {
			check("key", m.Content[0], wantKey)
		}
		check("map value", m.Content[1], wantVal)
	})
}

// viaJSON is s after a JSON round trip.
func viaJSON(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// mappingOf indexes a mapping node's values by key.
func mappingOf(t *testing.T, n *yaml.Node) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		t.Fatalf("not a mapping: %v", n.Kind)
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}
