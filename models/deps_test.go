package models_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

func TestDepsFileRoundTrip(t *testing.T) {
	g, err := chainRegistry(t).Graph()
	require.NoError(t, err)
	data := g.DepsFile()
	deps, err := models.ParseDepsFile(data)
	require.NoError(t, err)
	require.Equal(t, []string{}, deps["Site"])
	require.Equal(t, []string{"Site"}, deps["Slice"])
	require.NoError(t, g.CheckDepsFile(data))

	require.EqualError(t, g.CheckDepsFile([]byte(`{"Site": [], "Slice": [], "Image": [], "Instance": ["Image", "Slice"], "Everything": [], "Ghost": []}`)),
		"model-deps file disagrees with the code: model Slice: the file says [], the code says [Site]; model Ghost is in the file but not registered")
	require.EqualError(t, g.CheckDepsFile([]byte(`{"Site": []}`)),
		"model-deps file disagrees with the code: model Everything is missing from the file; model Image is missing from the file; model Instance is missing from the file; model Slice is missing from the file")
	for _, bad := range []string{``, `[]`, `{"Site": "x"}`, `{"Site": []} {}`, `{"a b": []}`, `null`, `{"Site": ["x;y"]}`} {
		_, err := models.ParseDepsFile([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
}
