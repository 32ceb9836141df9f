package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// 1. Chain Site <- Slice <- Instance, all pending: synced in order, each OK.
func TestChainSyncsInDependencyOrder(t *testing.T) {
	e := newEnv(t)
	site := e.insert(&Site{Name: "s"})
	slice := e.insert(&Slice{Name: "sl", SiteID: site.ID})
	inst := e.insert(&Instance{Name: "i", SliceID: slice.ID})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, site, slice, inst)
	e.assertInSync(site, slice, inst)
	require.Equal(t, []models.Ref{site, slice, inst}, syncOrder(e.rec.Calls()))
	require.Empty(t, e.rec.Violations())
}
