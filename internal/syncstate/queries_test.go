package syncstate_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
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

// LinkTargets reads the objects each object links to, one per link whose
// column is set; an id with no row is left out.
func TestLinkTargets(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "a")
	slice := insertSlice(t, s, "s", site.ID)
	img := &Image{Name: "img"}
	require.NoError(t, s.Insert(c, img))
	plain := insertInstance(t, s, "plain", slice.ID)
	withImage := &Instance{Name: "with image", SliceID: slice.ID, ImageID: &img.ID}
	require.NoError(t, s.Insert(c, withImage))

	m, ok := s.Graph().Model("Instance")
	require.True(t, ok)
	got, err := s.LinkTargets(c, "Instance", []int64{plain.ID, withImage.ID, withImage.ID + 100}, m.Links)
	require.NoError(t, err)
	require.Equal(t, map[int64][]models.Ref{
		plain.ID:     {{Model: "Slice", ID: slice.ID}},
		withImage.ID: {{Model: "Slice", ID: slice.ID}, {Model: "Image", ID: img.ID}},
	}, got)

	got, err = s.LinkTargets(c, "Site", []int64{site.ID}, nil)
	require.NoError(t, err)
	require.Equal(t, map[int64][]models.Ref{site.ID: nil}, got)
	_, err = s.LinkTargets(c, "Nope", []int64{1}, nil)
	require.ErrorContains(t, err, `unknown model "Nope"`)
}
