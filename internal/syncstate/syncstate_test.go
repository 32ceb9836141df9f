package syncstate_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

func TestBeginSync(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "a")
	require.False(t, load[Site](t, s, site.ID).BackendNeedDelete)

	obj, err := s.BeginSync(c, models.Ref{Model: "Site", ID: site.ID})
	require.NoError(t, err)
	got, ok := obj.(*Site)
	require.True(t, ok)
	require.Equal(t, "a", got.Name)
	require.True(t, got.BackendNeedDelete)
	require.True(t, got.Updated.Equal(site.Updated), "BeginSync must not bump updated")
	require.True(t, load[Site](t, s, site.ID).BackendNeedDelete)

	// Again: still set.
	_, err = s.BeginSync(c, models.Ref{Model: "Site", ID: site.ID})
	require.NoError(t, err)

	_, err = s.BeginSync(c, models.Ref{Model: "Site", ID: 999})
	require.ErrorIs(t, err, models.ErrNotFound)
	_, err = s.BeginSync(c, models.Ref{Model: "Nope", ID: 1})
	require.ErrorContains(t, err, `unknown model "Nope"`)
}

func TestRecordSuccess(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "a")
	ref := models.Ref{Model: "Site", ID: site.ID}

	obj, err := s.BeginSync(c, ref)
	require.NoError(t, err)
	began := obj.SyncState().Updated
	pending, err := s.RecordSuccess(c, ref, began, "OK")
	require.NoError(t, err)
	require.False(t, pending)
	got := load[Site](t, s, site.ID)
	require.NotNil(t, got.Enacted)
	require.True(t, got.Enacted.Equal(got.Updated))
	require.True(t, got.Updated.Equal(began), "RecordSuccess must not bump updated")
	require.Equal(t, models.CodeOK, got.BackendCode)
	require.Equal(t, "OK", got.BackendStatus)
	require.False(t, got.Pending())

	// A save during the sync leaves the object pending.
	obj, err = s.BeginSync(c, ref)
	require.NoError(t, err)
	began = obj.SyncState().Updated
	site.Name = "changed during sync"
	require.NoError(t, s.Save(c, site))
	pending, err = s.RecordSuccess(c, ref, began, "OK")
	require.NoError(t, err)
	require.True(t, pending)
	got = load[Site](t, s, site.ID)
	require.True(t, got.Enacted.Equal(began))
	require.True(t, got.Enacted.Before(got.Updated))
	require.True(t, got.Pending())
	ids, err := s.FetchPending(c, "Site", false, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{site.ID}, ids)

	// The status is recorded (and cut) as given.
	pending, err = s.RecordSuccess(c, ref, got.Updated, strings.Repeat("x", 3000))
	require.NoError(t, err)
	require.False(t, pending)
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(load[Site](t, s, site.ID).BackendStatus))

	_, err = s.RecordSuccess(c, models.Ref{Model: "Site", ID: 999}, time.Now(), "OK")
	require.ErrorIs(t, err, models.ErrNotFound)
}

func TestRecordErrorXOSRule(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "a")
	ref := models.Ref{Model: "Site", ID: site.ID}
	status := func() (int, string) {
		t.Helper()
		o := load[Site](t, s, site.ID)
		require.True(t, o.Updated.Equal(site.Updated), "sync-state writes must not bump updated")
		return o.BackendCode, o.BackendStatus
	}
	step := func(text string, want string) {
		t.Helper()
		require.NoError(t, s.RecordError(c, ref, text))
		code, st := status()
		require.Equal(t, models.CodeError, code)
		require.Equal(t, want, st)
	}
	step("e1", "e1")
	step("e1", "e1")
	step("e2", "e1 // e2")
	step("e3", "e2 // e3")
	step("e3", "e2 // e3")

	_, err := s.RecordSuccess(c, ref, site.Updated, "OK")
	require.NoError(t, err)
	code, st := status()
	require.Equal(t, models.CodeOK, code)
	require.Equal(t, "OK", st)
	step("e4", "e4") // fresh after a success
	step("e5", "e4 // e5")

	// A deferral (code 0) is not an error: the next error starts fresh too.
	require.NoError(t, s.RecordStatus(c, ref, models.CodePending, "deferred: waiting"))
	step("e6", "e6")

	// Metacharacters are data.
	step("'; DROP TABLE site; --", "e6 // '; DROP TABLE site; --")

	require.ErrorIs(t, s.RecordError(c, models.Ref{Model: "Site", ID: 999}, "x"), models.ErrNotFound)
}

func TestRecordErrorLongAndInvalidText(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "a")
	ref := models.Ref{Model: "Site", ID: site.ID}
	get := func() string {
		t.Helper()
		st := load[Site](t, s, site.ID).BackendStatus
		require.True(t, utf8.ValidString(st))
		require.LessOrEqual(t, utf8.RuneCountInString(st), syncstate.MaxStatusLen)
		return st
	}

	// Multi-byte characters: the limit is in characters, not bytes.
	long := strings.Repeat("é", 3000)
	require.NoError(t, s.RecordError(c, ref, long))
	st := get()
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(st))
	require.True(t, strings.HasPrefix(st, strings.Repeat("é", 1000)))
	// The same long error again is recognised as the same.
	require.NoError(t, s.RecordError(c, ref, long))
	require.Equal(t, st, get())

	// Invalid UTF-8 is made valid (PostgreSQL would refuse it otherwise).
	bad := "bad \xff\xfe byte"
	require.NoError(t, s.RecordError(c, ref, bad))
	st = get()
	require.Contains(t, st, "bad ")
	require.Contains(t, st, " byte")
	require.True(t, strings.HasSuffix(st, " byte"), st)
	// The same invalid error again is the same error, not a new one.
	require.NoError(t, s.RecordError(c, ref, bad))
	require.Equal(t, st, get())

	// Short statuses after a long one.
	require.NoError(t, s.RecordError(c, ref, "e1"))
	require.NoError(t, s.RecordError(c, ref, "e2"))
	require.Equal(t, "e1 // e2", get())

	// RecordStatus cuts and repairs as well.
	require.NoError(t, s.RecordStatus(c, ref, models.CodePending, "deferred: "+long))
	st = get()
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(st))
	require.True(t, strings.HasPrefix(st, "deferred: éé"))
	require.NoError(t, s.RecordStatus(c, ref, models.CodePending, "deferred: \xc3"))
	require.True(t, strings.HasPrefix(get(), "deferred: "))
}

func TestCombineErrors(t *testing.T) {
	cases := []struct{ prev, text, want string }{
		{"", "e1", "e1"},
		{"e1", "e1", "e1"},
		{"e1", "e2", "e1 // e2"},
		{"e1 // e2", "e3", "e2 // e3"},
		{"e1 // e2", "e2", "e1 // e2"},
		{"e1 // e2", "e1", "e2 // e1"}, // seen again: the latest of the two
		{"e2 // e3", "e4", "e3 // e4"},
		{"a // b // c", "d", "c // d"},
		{"", "", ""},
		{"e1", "", "e1 // "},
		{"Failed due to error in model Site id 1: boom", "mine", "Failed due to error in model Site id 1: boom // mine"},
	}
	for _, c := range cases {
		require.Equal(t, c.want, syncstate.CombineErrors(c.prev, c.text), "%q + %q", c.prev, c.text)
	}

	long := strings.Repeat("x", 5000)
	got := syncstate.CombineErrors("", long)
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(got))
	require.True(t, strings.HasPrefix(got, strings.Repeat("x", 1000)))
	require.Equal(t, got, syncstate.CombineErrors(got, long), "a long error repeated is the same error")

	// The latest error is always kept whole; the older one gives way.
	got = syncstate.CombineErrors("e1", long)
	require.Equal(t, syncstate.CombineErrors("", long), got)
	got = syncstate.CombineErrors(syncstate.CombineErrors("", long), "new")
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(got))
	require.True(t, strings.HasPrefix(got, "xxx"), got)
	require.True(t, strings.HasSuffix(got, "… // new"), got)
	got = syncstate.CombineErrors(strings.Repeat("o", 600), strings.Repeat("n", 600))
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(got))
	require.True(t, strings.HasSuffix(got, " // "+strings.Repeat("n", 600)))
	got = syncstate.CombineErrors(strings.Repeat("o", 500), strings.Repeat("n", 500))
	require.Equal(t, strings.Repeat("o", 500)+" // "+strings.Repeat("n", 500), got, "both fit: both kept whole")

	got = syncstate.CombineErrors("", "a\xffb")
	require.True(t, utf8.ValidString(got))
	require.Equal(t, got, syncstate.CombineErrors(got, "a\xffb"), "an invalid error repeated is the same error")

	exactly := strings.Repeat("ü", syncstate.MaxStatusLen)
	require.Equal(t, exactly, syncstate.CombineErrors("", exactly), "a status of exactly the limit is kept whole")
}

func TestRecordStatus(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "a")
	ref := models.Ref{Model: "Site", ID: site.ID}

	require.NoError(t, s.RecordStatus(c, ref, models.CodePending, "deferred: network down"))
	got := load[Site](t, s, site.ID)
	require.Equal(t, models.CodePending, got.BackendCode)
	require.Equal(t, "deferred: network down", got.BackendStatus)
	require.True(t, got.Updated.Equal(site.Updated))
	require.Nil(t, got.Enacted)

	require.NoError(t, s.RecordStatus(c, ref, models.CodeOK, "innocuous: already there"))
	got = load[Site](t, s, site.ID)
	require.Equal(t, models.CodeOK, got.BackendCode)
	require.Equal(t, "innocuous: already there", got.BackendStatus)
	require.Nil(t, got.Enacted, "RecordStatus does not enact")

	// Same again: no change, no error.
	require.NoError(t, s.RecordStatus(c, ref, models.CodeOK, "innocuous: already there"))
	// A missing object is not an error for RecordStatus.
	require.NoError(t, s.RecordStatus(c, models.Ref{Model: "Site", ID: 999}, 1, "x"))
	require.ErrorContains(t, s.RecordStatus(c, models.Ref{Model: "Nope", ID: 1}, 1, "x"), "unknown model")
}

func TestHoldDependents(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "site")
	require.Equal(t, int64(1), site.ID)
	slice := insertSlice(t, s, "slice", site.ID)
	inst := insertInstance(t, s, "inst", slice.ID)

	// An in-sync slice of the same site, with a pending instance below it:
	// neither is held (the instance waits on an in-sync slice).
	okSlice := insertSlice(t, s, "ok-slice", site.ID)
	markSynced(t, s, "Slice", okSlice.ID)
	instUnderOK := insertInstance(t, s, "inst-under-ok", okSlice.ID)
	// An in-sync instance of the failing slice.
	okInst := insertInstance(t, s, "ok-inst", slice.ID)
	markSynced(t, s, "Instance", okInst.ID)
	// A pending slice of another site.
	other := insertSite(t, s, "other")
	otherSlice := insertSlice(t, s, "other-slice", other.ID)
	// A no_sync slice of the site is not pending, so it is not held, and is no
	// path to the pending instance below it.
	frozen := &Slice{Name: "frozen", SiteID: site.ID}
	frozen.NoSync = true
	require.NoError(t, s.Insert(c, frozen))
	instUnderFrozen := insertInstance(t, s, "inst-under-frozen", frozen.ID)

	require.NoError(t, s.RecordError(c, models.Ref{Model: "Site", ID: site.ID}, "boom"))
	held, err := s.HoldDependents(c, models.Ref{Model: "Site", ID: site.ID}, "boom")
	require.NoError(t, err)
	require.Equal(t, []models.Ref{{Model: "Slice", ID: slice.ID}, {Model: "Instance", ID: inst.ID}}, held)

	const want = "Failed due to error in model Site id 1: boom"
	gotSlice := load[Slice](t, s, slice.ID)
	require.Equal(t, models.CodeError, gotSlice.BackendCode)
	require.Equal(t, want, gotSlice.BackendStatus)
	require.True(t, gotSlice.Updated.Equal(slice.Updated), "holding must not bump updated")
	require.True(t, gotSlice.Pending(), "a held object stays pending")
	gotInst := load[Instance](t, s, inst.ID)
	require.Equal(t, models.CodeError, gotInst.BackendCode)
	require.Equal(t, want, gotInst.BackendStatus)

	for _, o := range []*Slice{load[Slice](t, s, okSlice.ID)} {
		require.Equal(t, models.CodeOK, o.BackendCode)
		require.Equal(t, "OK", o.BackendStatus)
	}
	for _, id := range []int64{instUnderOK.ID, instUnderFrozen.ID} {
		o := load[Instance](t, s, id)
		require.Equal(t, models.CodePending, o.BackendCode, o.Name)
		require.Empty(t, o.BackendStatus, o.Name)
	}
	o := load[Instance](t, s, okInst.ID)
	require.Equal(t, models.CodeOK, o.BackendCode)
	require.Equal(t, "OK", o.BackendStatus)
	os := load[Slice](t, s, otherSlice.ID)
	require.Equal(t, models.CodePending, os.BackendCode)
	require.Empty(t, os.BackendStatus)
	fr := load[Slice](t, s, frozen.ID)
	require.Equal(t, models.CodePending, fr.BackendCode)

	// The site's own status is its error, untouched by holding.
	st := load[Site](t, s, site.ID)
	require.Equal(t, "boom", st.BackendStatus)

	// Holding again (a retry failing the same way) gives the same result.
	held2, err := s.HoldDependents(c, models.Ref{Model: "Site", ID: site.ID}, "boom")
	require.NoError(t, err)
	require.Equal(t, held, held2)

	// From the middle of the chain.
	held3, err := s.HoldDependents(c, models.Ref{Model: "Slice", ID: slice.ID}, "slice broke")
	require.NoError(t, err)
	require.Equal(t, []models.Ref{{Model: "Instance", ID: inst.ID}}, held3)
	require.Equal(t, fmt.Sprintf("Failed due to error in model Slice id %d: slice broke", slice.ID), load[Instance](t, s, inst.ID).BackendStatus)

	// A leaf holds nothing.
	held4, err := s.HoldDependents(c, models.Ref{Model: "Instance", ID: inst.ID}, "x")
	require.NoError(t, err)
	require.Empty(t, held4)

	// A long error is cut.
	_, err = s.HoldDependents(c, models.Ref{Model: "Site", ID: site.ID}, strings.Repeat("z", 2000))
	require.NoError(t, err)
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(load[Slice](t, s, slice.ID).BackendStatus))
}

// Diamond: a Port depends on its Site directly and through its Network.
type (
	Network struct {
		models.Base
		SiteID int64
	}
	Port struct {
		models.Base
		SiteID    int64
		NetworkID int64
	}
)

func TestHoldDependentsDiamondListsEachOnce(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[Site](reg, "Site"))
	require.NoError(t, models.Register[Network](reg, "Network", models.Link{Dest: "Site", Via: "site_id"}))
	require.NoError(t, models.Register[Port](reg, "Port", models.Link{Dest: "Site", Via: "site_id"}, models.Link{Dest: "Network", Via: "network_id"}))
	s := newStore(t, reg)
	c := ctx(t)
	site := insertSite(t, s, "s")
	net := &Network{SiteID: site.ID}
	require.NoError(t, s.Insert(c, net))
	port := &Port{SiteID: site.ID, NetworkID: net.ID}
	require.NoError(t, s.Insert(c, port))

	held, err := s.HoldDependents(c, models.Ref{Model: "Site", ID: site.ID}, "boom")
	require.NoError(t, err)
	require.ElementsMatch(t, []models.Ref{{Model: "Network", ID: net.ID}, {Model: "Port", ID: port.ID}}, held)
	p := load[Port](t, s, port.ID)
	require.Equal(t, "Failed due to error in model Site id 1: boom", p.BackendStatus)
}

func TestDependentsAndPurge(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	site := insertSite(t, s, "site")
	live := insertSlice(t, s, "live", site.ID)
	gone := insertSlice(t, s, "gone", site.ID)
	require.NoError(t, s.Delete(c, "Slice", gone.ID))
	prot := &Slice{Name: "protected", SiteID: site.ID}
	prot.WriteProtect = true
	require.NoError(t, s.Insert(c, prot))
	other := insertSite(t, s, "other")
	insertSlice(t, s, "elsewhere", other.ID)
	img := &Image{Name: "img"}
	require.NoError(t, s.Insert(c, img))
	inst := &Instance{Name: "i", SliceID: live.ID, ImageID: &img.ID}
	require.NoError(t, s.Insert(c, inst))
	noImage := insertInstance(t, s, "no-image", live.ID)

	deps, err := s.Dependents(c, models.Ref{Model: "Site", ID: site.ID})
	require.NoError(t, err)
	require.Equal(t, []syncstate.Dependent{
		{Ref: models.Ref{Model: "Slice", ID: live.ID}},
		{Ref: models.Ref{Model: "Slice", ID: gone.ID}, Deleted: true},
		{Ref: models.Ref{Model: "Slice", ID: prot.ID}, WriteProtect: true},
	}, deps)

	deps, err = s.Dependents(c, models.Ref{Model: "Image", ID: img.ID})
	require.NoError(t, err)
	require.Equal(t, []syncstate.Dependent{{Ref: models.Ref{Model: "Instance", ID: inst.ID}}}, deps)

	deps, err = s.Dependents(c, models.Ref{Model: "Slice", ID: live.ID})
	require.NoError(t, err)
	require.Equal(t, []syncstate.Dependent{
		{Ref: models.Ref{Model: "Instance", ID: inst.ID}},
		{Ref: models.Ref{Model: "Instance", ID: noImage.ID}},
	}, deps)

	deps, err = s.Dependents(c, models.Ref{Model: "Instance", ID: inst.ID})
	require.NoError(t, err)
	require.Empty(t, deps)

	// Purge removes only deleted rows.
	require.NoError(t, s.Purge(c, models.Ref{Model: "Slice", ID: live.ID}))
	require.Equal(t, "live", load[Slice](t, s, live.ID).Name)
	require.NoError(t, s.Purge(c, models.Ref{Model: "Slice", ID: gone.ID}))
	_, err = s.Get(c, "Slice", gone.ID)
	require.ErrorIs(t, err, models.ErrNotFound)
	// Purging again, or a missing row, is harmless.
	require.NoError(t, s.Purge(c, models.Ref{Model: "Slice", ID: gone.ID}))
	require.NoError(t, s.Purge(c, models.Ref{Model: "Slice", ID: 999}))

	deps, err = s.Dependents(c, models.Ref{Model: "Site", ID: site.ID})
	require.NoError(t, err)
	require.Equal(t, []syncstate.Dependent{
		{Ref: models.Ref{Model: "Slice", ID: live.ID}},
		{Ref: models.Ref{Model: "Slice", ID: prot.ID}, WriteProtect: true},
	}, deps)

	// A purged object is no longer pending for deletion.
	ids, err := s.FetchPending(c, "Slice", true, 0, 10)
	require.NoError(t, err)
	require.Empty(t, ids)
}

// An attempt that outlived its timeout, failing after the attempt that
// replaced it succeeded for the same content, records nothing over that
// success; for newer content it records as usual.
func TestRecordSyncErrorAfterSuccess(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	site := insertSite(t, s, "a")
	st := s
	ref := models.Ref{Model: "Site", ID: site.ID}
	_, err := st.RecordSuccess(ctx(t), ref, site.Updated, "OK")
	require.NoError(t, err)
	recorded, err := st.RecordSyncError(ctx(t), ref, site.Updated, "late failure")
	require.NoError(t, err)
	require.False(t, recorded)
	got := load[Site](t, s, site.ID)
	require.Equal(t, models.CodeOK, got.BackendCode)
	require.Equal(t, "OK", got.BackendStatus)

	require.NoError(t, s.Store.Touch(ctx(t), "Site", site.ID))
	got = load[Site](t, s, site.ID)
	recorded, err = st.RecordSyncError(ctx(t), ref, got.Updated, "new failure")
	require.NoError(t, err)
	require.True(t, recorded)
	got = load[Site](t, s, site.ID)
	require.Equal(t, models.CodeError, got.BackendCode)
	require.Equal(t, "new failure", got.BackendStatus)
}

// So does a deferral: the one of an attempt that outlived its timeout does
// not overwrite the success of its replacement; for newer content, or with
// no content known (zero), it is recorded.
func TestRecordDeferralAfterSuccess(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	site := insertSite(t, s, "a")
	ref := models.Ref{Model: "Site", ID: site.ID}
	_, err := s.RecordSuccess(ctx(t), ref, site.Updated, "OK")
	require.NoError(t, err)
	recorded, err := s.RecordDeferral(ctx(t), ref, site.Updated, "deferred: late")
	require.NoError(t, err)
	require.False(t, recorded)
	got := load[Site](t, s, site.ID)
	require.Equal(t, models.CodeOK, got.BackendCode)
	require.Equal(t, "OK", got.BackendStatus)

	require.NoError(t, s.Store.Touch(ctx(t), "Site", site.ID))
	got = load[Site](t, s, site.ID)
	recorded, err = s.RecordDeferral(ctx(t), ref, got.Updated, "deferred: not yet")
	require.NoError(t, err)
	require.True(t, recorded)
	got = load[Site](t, s, site.ID)
	require.Equal(t, models.CodePending, got.BackendCode)
	require.Equal(t, "deferred: not yet", got.BackendStatus)

	recorded, err = s.RecordDeferral(ctx(t), ref, time.Time{}, "deferred: policy")
	require.NoError(t, err)
	require.True(t, recorded)
	require.Equal(t, "deferred: policy", load[Site](t, s, site.ID).BackendStatus)
}
