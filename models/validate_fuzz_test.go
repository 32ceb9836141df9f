package models_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tsync/tsync/models"
)

// FuzzCheck checks Model.Check on any string in every place a string can
// be: it refuses exactly the strings PostgreSQL's text and jsonb cannot
// hold (invalid UTF-8, a NUL byte), with a FieldError naming the field; and
// what it accepts survives the JSON encoding of a jsonb column unchanged.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "ok", "\x00", "a\xffb", "\xc3", "héllo 🚀", "\ufffd", "\xed\xa0\x80", "\u2028", `\u0000`} {
		f.Add(s)
	}
	reg := models.NewRegistry()
	models.MustRegister[Everything](reg, "Everything")
	g, err := reg.Graph()
	if err != nil {
		f.Fatal(err)
	}
	m, _ := g.Model("Everything")
	f.Fuzz(func(t *testing.T, s string) {
		bad := !utf8.ValidString(s) || strings.ContainsRune(s, 0)
		for name, obj := range map[string]*Everything{
			"text":  {Text: s},
			"opt":   {OptText: &s},
			"tags":  {Tags: []string{"x", s}},
			"value": {Attrs: map[string]any{"k": []any{s}}},
			"key":   {Attrs: map[string]any{s: 1}},
		} {
			err := m.Check(obj)
			var fe *models.FieldError
			if bad != (err != nil) || (err != nil && !errors.As(err, &fe)) {
				t.Fatalf("%s %q: bad=%v, Check: %v", name, s, bad, err)
			}
			if err == nil && obj.Attrs != nil {
				data, err := json.Marshal(obj.Attrs)
				if err != nil {
					t.Fatalf("%s %q: %v", name, s, err)
				}
				var back map[string]any
				if err := json.Unmarshal(data, &back); err != nil {
					t.Fatalf("%s %q: %v", name, s, err)
				}
				if _, ok := back[s]; name == "key" && !ok {
					t.Fatalf("key %q changed in JSON: %s", s, data)
				}
				if name == "value" && back["k"].([]any)[0] != s {
					t.Fatalf("value %q changed in JSON: %s", s, data)
				}
			}
		}
	})
}
