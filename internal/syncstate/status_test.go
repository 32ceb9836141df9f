package syncstate_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// LastError reads back the latest error CombineErrors kept; FailedDueTo
// names a failed dependency as XOS does.
func TestLastErrorAndFailedDueTo(t *testing.T) {
	require.Equal(t, "", syncstate.LastError(""))
	require.Equal(t, "boom", syncstate.LastError("boom"))
	require.Equal(t, "quota exceeded", syncstate.LastError(syncstate.CombineErrors("boom", "quota exceeded")))
	require.Equal(t, "Failed due to error in model Site id 3: quota exceeded",
		syncstate.FailedDueTo(models.Ref{Model: "Site", ID: 3}, "quota exceeded"))
}
