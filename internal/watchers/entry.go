package watchers

import (
	"fmt"
	"regexp"

	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

var eventID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// parse reads a change event; skip and bad are parseEntry's.
func (d *Dispatcher) parse(m redis.XMessage) (ev tsync.WatchEvent, skip bool, bad string) {
	return parseEntry(d.sync.Graph, m)
}

// parseEntry decodes a stream entry into a change event of a model of g. The
// change must be one the store announces (models.ParseChange). Model
// policies that ran (models.OpPoliced) are, for watchers, an update of the
// columns they changed; skip reports policies that changed none, which tell
// watchers nothing. bad says why the entry is malformed. When skip or bad
// is set, ev is the zero event.
func parseEntry(g *models.Graph, m redis.XMessage) (ev tsync.WatchEvent, skip bool, bad string) {
	ev, skip, bad = decodeEntry(g, m)
	switch {
	case bad != "":
		return tsync.WatchEvent{}, false, bad
	case skip:
		return tsync.WatchEvent{}, true, ""
	}
	return ev, false, ""
}

func decodeEntry(g *models.Graph, m redis.XMessage) (ev tsync.WatchEvent, skip bool, bad string) {
	raw, ok := m.Values[FieldChange].(string)
	if !ok {
		return ev, false, fmt.Sprintf("no %q field", FieldChange)
	}
	c, err := models.ParseChange(raw)
	if err != nil {
		return ev, false, err.Error()
	}
	if _, ok := g.Model(c.Model); !ok {
		return ev, false, fmt.Sprintf("unknown model %q", c.Model)
	}
	if c.Op == models.OpPoliced {
		skip = len(c.Fields) == 0
		c.Op = models.OpUpdate
	}
	ev = tsync.WatchEvent{ID: "s" + m.ID, Changed: models.Ref{Model: c.Model, ID: c.ID}, Op: c.Op, Fields: c.Fields}
	if v, present := m.Values[FieldEvent]; present {
		s, _ := v.(string)
		if !eventID.MatchString(s) {
			return ev, false, fmt.Sprintf("bad event id %q", s)
		}
		ev.ID = s
	}
	return ev, skip, ""
}
