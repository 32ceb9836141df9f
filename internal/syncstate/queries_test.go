package syncstate_test

import (
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
