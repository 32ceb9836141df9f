package models_test

import (
	"regexp"
	"testing"

	"github.com/tsync/tsync/models"
)

var ident = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

// FuzzParseChange: ParseChange never panics; it either fails with the zero
// Change or returns a valid one.
func FuzzParseChange(f *testing.F) {
	for _, s := range []string{
		`{"model":"Site","id":1,"op":"create"}`,
		`{"model":"Slice","id":42,"op":"update","fields":["name","site_id"]}`,
		`{"model":"Instance","id":7,"op":"delete"}`,
		`{"model":"Site","id":3,"op":"policed","fields":["name"]}`,
		`{"model":"","id":1,"op":"create"}`,
		`{"model":"Site","id":0,"op":"create"}`,
		`{"model":"Site","id":-5,"op":"update"}`,
		`{"model":"Site","id":1,"op":"rename"}`,
		`{"model":"Site;drop","id":1,"op":"create"}`,
		`{"model":"Site","id":1.5,"op":"create"}`,
		`{"model":"Site","id":99999999999999999999,"op":"create"}`,
		`{"model":"Site","id":1,"op":"upd`,
		`[]`, `null`, `""`, ``, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		c, err := models.ParseChange(payload)
		if err != nil {
			if c.Model != "" || c.ID != 0 || c.Op != "" || c.Fields != nil {
				t.Fatalf("error %v with a half-filled change %+v", err, c)
			}
			return
		}
		if !ident.MatchString(c.Model) || c.ID <= 0 {
			t.Fatalf("accepted a bad change %+v", c)
		}
		switch c.Op {
		case "create", "update", "delete", "policed":
		default:
			t.Fatalf("accepted op %q", c.Op)
		}
	})
}
