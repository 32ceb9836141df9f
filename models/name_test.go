package models_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// ValidName is the rule Register applies to model names.
func TestValidName(t *testing.T) {
	for _, name := range []string{"Site", "s", "Site_2", strings.Repeat("a", 63)} {
		require.True(t, models.ValidName(name), name)
	}
	for _, name := range []string{"", "9lives", "_x", "a-b", "a.b", "../x", "Sité", strings.Repeat("a", 64)} {
		require.False(t, models.ValidName(name), name)
	}
}
