package watchers

import (
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync/models"
)

type fuzzSite struct {
	models.Base
	Name string `db:"name"`
}

type fuzzSlice struct {
	models.Base
	SiteID int64 `db:"site_id"`
}

// FuzzParseEntry: decoding a stream entry never panics; a malformed entry
// gives a reason and the zero event, a good one a complete event.
func FuzzParseEntry(f *testing.F) {
	reg := models.NewRegistry()
	models.MustRegister[fuzzSite](reg, "Site")
	models.MustRegister[fuzzSlice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	g, err := reg.Graph()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct {
		id, change    string
		hasEvent      bool
		event         string
		noChangeField bool
	}{
		{"1-0", `{"model":"Slice","id":1,"op":"update","fields":["name"]}`, false, "", false},
		{"2-0", `{"model":"Site","id":2,"op":"create"}`, true, "ev-1", false},
		{"3-0", `{"model":"Site","id":3,"op":"delete"}`, true, "not/an id", false},
		{"4-0", `{"model":"Slice","id":1,"op":"upd`, false, "", false},
		{"5-0", `{"model":"Nope","id":1,"op":"update"}`, false, "", false},
		{"6-0", `{"model":"Slice","op":"update"}`, false, "", false},
		{"7-0", `{"id":1,"op":"update"}`, false, "", false},
		{"8-0", `{"model":"Slice","id":1,"op":"rename"}`, false, "", false},
		{"9-0", ``, false, "", true},
		{"10-0", `{"model":"Site","id":1,"op":"create"}`, true, "", false},
		{"11-0", `null`, false, "", false},
		{"12-0", `{"model":"Site","id":3,"op":"policed","fields":["name"]}`, true, "ev-2", false},
		{"13-0", `{"model":"Site","id":3,"op":"policed"}`, false, "", false},
		{"14-0", `{"model":"Site;drop","id":1,"op":"create"}`, false, "", false},
	} {
		f.Add(s.id, s.change, s.hasEvent, s.event, s.noChangeField)
	}
	f.Fuzz(func(t *testing.T, id, change string, hasEvent bool, event string, noChangeField bool) {
		values := map[string]any{}
		if !noChangeField {
			values[FieldChange] = change
		}
		if hasEvent {
			values[FieldEvent] = event
		}
		ev, skip, bad := parseEntry(g, redis.XMessage{ID: id, Values: values})
		if bad != "" {
			if !reflect.ValueOf(ev).IsZero() || skip {
				t.Fatalf("malformed (%s) but a half-filled event %+v (skip %v)", bad, ev, skip)
			}
			return
		}
		if skip {
			// Only model policies that changed nothing tell watchers nothing.
			if !reflect.ValueOf(ev).IsZero() {
				t.Fatalf("skipped but a half-filled event %+v", ev)
			}
			if c, err := models.ParseChange(change); err != nil || c.Op != models.OpPoliced || len(c.Fields) != 0 {
				t.Fatalf("skipped %q", change)
			}
			return
		}
		if _, ok := g.Model(ev.Changed.Model); !ok || ev.Changed.ID <= 0 || ev.ID == "" {
			t.Fatalf("accepted a bad event %+v", ev)
		}
		switch ev.Op {
		case "create", "update", "delete":
		default:
			t.Fatalf("accepted op %q", ev.Op)
		}
		if hasEvent && ev.ID != event {
			t.Fatalf("event id %q, want %q", ev.ID, event)
		}
	})
}
