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

// ParseChange decodes a change announcement, as the store makes them on its
// channel and in its outbox: a JSON Change with a model name (as Register
// takes them), an id > 0 and an operation the store announces (OpCreate,
// OpUpdate, OpDelete, OpPoliced). It returns the zero Change and an error
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
	case c.ID <= 0:
		return Change{}, fmt.Errorf("missing or bad id (%d)", c.ID)
	}
	switch c.Op {
	case OpCreate, OpUpdate, OpDelete, OpPoliced:
		return c, nil
	}
	return Change{}, fmt.Errorf("unknown operation %q", c.Op)
}
