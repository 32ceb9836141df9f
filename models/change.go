package models

import (
	"encoding/json"
	"fmt"
)

// OpPoliced is the operation the store announces when model policies ran
// for an object (see Model.Policies); the announcement's Fields are the
// columns the policies changed. Model policies and watchers never receive
// it.
const OpPoliced Op = "policed"

// OpMany is the operation announced, with the model, the row count and
// no id, for a statement that changed more than ManyChanges rows of one
// model's table: listeners scan the model rather than look at each object
// (the outbox still holds one change per row).
const OpMany Op = "many"

// ParseChange decodes a change announcement, as the store makes them on its
// channel and in its outbox: a JSON Change with a model name (as Register
// takes them), an id > 0 and an operation the store announces (OpCreate,
// OpUpdate, OpDelete, OpPoliced), or an OpMany announcement with a count
// and no id. It returns the zero Change and an error
// saying what is wrong otherwise. Whether the model is one of a graph's is
// the caller's to check.
func ParseChange(payload string) (Change, error) {
	var c Change
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		return Change{}, fmt.Errorf("bad JSON: %w", err)
	}
	switch {
	case c.Model == "":
		return Change{}, fmt.Errorf("no model")
	case !identifier.MatchString(c.Model):
		return Change{}, fmt.Errorf("bad model name %q", c.Model)
	case c.Op == OpMany:
		if c.ID != 0 || c.Count <= 0 {
			return Change{}, fmt.Errorf("bad %q announcement (id %d, count %d)", OpMany, c.ID, c.Count)
		}
		return c, nil
	case c.ID <= 0:
		return Change{}, fmt.Errorf("missing or bad id (%d)", c.ID)
	}
	switch c.Op {
	case OpCreate, OpUpdate, OpDelete, OpPoliced:
		return c, nil
	}
	return Change{}, fmt.Errorf("unknown operation %q", c.Op)
}
