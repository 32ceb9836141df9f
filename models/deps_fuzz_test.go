package models_test

import (
	"regexp"
	"testing"

	"github.com/tsync/tsync/models"
)

var identRule = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

// FuzzParseDepsFile: ParseDepsFile never panics; what it accepts names only
// valid models.
func FuzzParseDepsFile(f *testing.F) {
	for _, s := range []string{
		`{"Site": [], "Slice": ["Site"], "Instance": ["Network", "Slice"]}`,
		"{\n  \"Site\": []\n}\n",
		`{}`, `null`, `[]`, ``, `{"Site": null}`,
		`{"Site": []} {"x": []}`, `{"Site": []} trailing`,
		`{"1bad": []}`, `{"Site": ["no-dash"]}`, `{"Site": [""]}`,
		`{"Site": [1]}`, `{"Site": "Slice"}`, `{"Site": ["Slice"`,
		`{"Site\u0000": []}`, `{"Ünïcode": []}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, err := models.ParseDepsFile(data)
		if err != nil {
			if deps != nil {
				t.Fatalf("error %v with deps %v", err, deps)
			}
			return
		}
		if deps == nil {
			t.Fatal("nil deps without an error")
		}
		for m, list := range deps {
			if !identRule.MatchString(m) {
				t.Fatalf("accepted model name %q", m)
			}
			for _, d := range list {
				if !identRule.MatchString(d) {
					t.Fatalf("accepted dependency name %q of %s", d, m)
				}
			}
		}
	})
}
