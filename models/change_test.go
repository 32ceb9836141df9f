package models_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// ParseChange accepts what the store announces, and says what is wrong
// with anything else.
func TestParseChange(t *testing.T) {
	for payload, want := range map[string]models.Change{
		`{"model":"Site","id":1,"op":"create"}`:                   {Model: "Site", ID: 1, Op: models.OpCreate},
		`{"model":"Site","id":2,"op":"update","fields":["name"]}`: {Model: "Site", ID: 2, Op: models.OpUpdate, Fields: []string{"name"}},
		`{"model":"Site","id":3,"op":"delete"}`:                   {Model: "Site", ID: 3, Op: models.OpDelete},
		`{"model":"Site","id":4,"op":"policed"}`:                  {Model: "Site", ID: 4, Op: models.OpPoliced},
	} {
		got, err := models.ParseChange(payload)
		require.NoError(t, err, payload)
		require.Equal(t, want, got, payload)
	}
	for payload, reason := range map[string]string{
		`{"model": "Slice", "id": 1, "op": "upd`: "bad JSON",
		`[]`:                                     "bad JSON",
		`{"model": "Slice", "op": "update"}`:     "missing or bad id (0)",
		`{"model": "Slice", "id": -2, "op": "update"}`: "missing or bad id (-2)",
		`{"id": 1, "op": "update"}`:                    "no model",
		`null`:                                         "no model",
		`{"model": "Site;drop", "id": 1, "op": "create"}`: `bad model name "Site;drop"`,
		`{"model": "Slice", "id": 1, "op": "rename"}`:     `unknown operation "rename"`,
		`{"model": "Slice", "id": 1}`:                     `unknown operation ""`,
	} {
		got, err := models.ParseChange(payload)
		require.ErrorContains(t, err, reason, payload)
		require.Zero(t, got, payload)
	}
}
