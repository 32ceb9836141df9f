package models_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/models"
)

// Test models used across the store tests: a chain Site <- Slice <-
// Instance, an Image, and Everything (see internal/storetest).
type (
	Site       = storetest.Site
	Slice      = storetest.Slice
	Instance   = storetest.Instance
	Image      = storetest.Image
	Everything = storetest.Everything
)

var (
	chainRegistry  = storetest.Registry
	newStore       = storetest.NewStore
	ctx            = storetest.Ctx
	insertSite     = storetest.InsertSite
	insertSlice    = storetest.InsertSlice
	insertInstance = storetest.InsertInstance
)

func load[T any](t testing.TB, s *models.Store, id int64) *T {
	t.Helper()
	return storetest.Load[T](t, s, id)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
