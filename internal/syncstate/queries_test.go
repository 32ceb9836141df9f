package syncstate_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFetchPendingUnknownModel(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	_, err := s.FetchPending(ctx(t), "Nope", false, 0, 10)
	require.ErrorContains(t, err, `unknown model "Nope"`)
}

func TestReferrers(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	a, b := insertSite(t, s, "a"), insertSite(t, s, "b")
	s1 := insertSlice(t, s, "s1", a.ID)
	s2 := insertSlice(t, s, "s2", a.ID)
	s3 := insertSlice(t, s, "s3", b.ID)
	insertSlice(t, s, "other", insertSite(t, s, "c").ID)
	require.NoError(t, s.Delete(c, "Slice", s2.ID))

	ids, err := s.Referrers(c, "Slice", "site_id", []int64{b.ID, a.ID, a.ID})
	require.NoError(t, err)
	require.Equal(t, []int64{s1.ID, s2.ID, s3.ID}, ids, "deleted ones included, each once, in id order")
	ids, err = s.Referrers(c, "Slice", "site_id", nil)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.Referrers(c, "Slice", "name", []int64{1})
	require.ErrorContains(t, err, `no integer column "name"`)
	_, err = s.Referrers(c, "Nope", "site_id", []int64{1})
	require.ErrorContains(t, err, "unknown model")
}

// StillPending keeps those of the ids given that are still pending for
// sync: not those synced or deleted since, nor pending objects between
// them that were not asked about.
func TestStillPending(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	var asked, want []int64
	for i := range 12 {
		o := insertSite(t, s, fmt.Sprint(i))
		switch i % 4 {
		case 0: // not asked about, pending
		case 1:
			markSynced(t, s, "Site", o.ID)
			asked = append(asked, o.ID)
		case 2:
			require.NoError(t, s.Delete(c, "Site", o.ID))
			asked = append(asked, o.ID)
		default:
			asked = append(asked, o.ID)
			want = append(want, o.ID)
		}
	}
	ids, err := s.StillPending(c, "Site", asked)
	require.NoError(t, err)
	require.Equal(t, want, ids)
	ids, err = s.StillPending(c, "Site", nil)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.StillPending(c, "Nope", []int64{1})
	require.ErrorContains(t, err, `unknown model "Nope"`)
}
