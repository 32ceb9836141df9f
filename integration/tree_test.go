package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// TNode is a tree: each node links to its parent (0 for a root).
type TNode struct {
	models.Base
	Name     string `db:"name"`
	ParentID int64  `db:"parent_id"`
}

// treeCall is one step call on a TNode.
type treeCall struct {
	Op         string
	ID         int64
	Start, End time.Time
}

// treeStep syncs TNodes, recording each call.
type treeStep struct {
	mu    sync.Mutex
	calls []treeCall
	// slow is a node name whose syncs take 2 s.
	slow string
}

func (s *treeStep) Synchronizes() []models.Object { return []models.Object{new(TNode)} }

func (s *treeStep) call(op string, obj models.Object) error {
	c := treeCall{Op: op, ID: obj.SyncState().ID, Start: time.Now()}
	s.mu.Lock()
	slow := s.slow != "" && obj.(*TNode).Name == s.slow
	s.mu.Unlock()
	if slow {
		time.Sleep(2 * time.Second)
	}
	time.Sleep(20 * time.Millisecond)
	c.End = time.Now()
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return nil
}

func (s *treeStep) SyncRecord(_ context.Context, obj models.Object) error {
	return s.call("sync", obj)
}

func (s *treeStep) DeleteRecord(_ context.Context, obj models.Object) error {
	return s.call("delete", obj)
}

// last returns the last call of op on id.
func (s *treeStep) last(op string, id int64) (treeCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.calls) - 1; i >= 0; i-- {
		if c := s.calls[i]; c.Op == op && c.ID == id {
			return c, true
		}
	}
	return treeCall{}, false
}

func newTreeEnv(t *testing.T) (*env, *treeStep) {
	t.Helper()
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	reg := models.NewRegistry()
	models.MustRegister[TNode](reg, "TNode", models.Link{Dest: "TNode", Via: "parent_id"})
	step := &treeStep{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e := openEnv(t, cfg, tsync.Synchronizer{Models: reg, Steps: []tsync.Step{step}}, log)
	e.startWorker()
	e.startStarter()
	return e, step
}

func (e *env) setParent(ref models.Ref, parent int64) {
	e.t.Helper()
	n := e.getObj(ref).(*TNode)
	n.ParentID = parent
	n.Name += "'" // a content change even when the parent stays
	require.NoError(e.t, e.app.Store.Save(e.ctx, n))
}

func (e *env) getObj(ref models.Ref) models.Object {
	e.t.Helper()
	obj, err := e.app.Store.Get(e.ctx, ref.Model, ref.ID)
	require.NoError(e.t, err)
	return obj
}

// A tree four deep, three children per node (40 nodes): each node's sync
// starts after its parent's ends; a cycle made of three nodes puts each in
// error naming the cycle from itself, holds the subtree below, and fixing
// it brings all in sync; a re-parented node syncs after its new parent; a
// subtree deleted goes children first.
func TestTreeParentsFirstCycleAndDelete(t *testing.T) {
	e, step := newTreeEnv(t)
	parent := map[int64]int64{}
	var refs []models.Ref
	var add func(p int64, depth int)
	add = func(p int64, depth int) {
		if depth == 4 {
			return
		}
		width := 3
		if depth == 0 {
			width = 1
		}
		for i := range width {
			r := e.insert(&TNode{Name: fmt.Sprintf("n-%d-%d", depth, i), ParentID: p})
			refs = append(refs, r)
			parent[r.ID] = p
			add(r.ID, depth+1)
		}
	}
	add(0, 0)
	require.Len(t, refs, 40)
	e.waitInSync(60*time.Second, refs...)
	for _, r := range refs {
		if p := parent[r.ID]; p != 0 {
			child, _ := step.last("sync", r.ID)
			par, _ := step.last("sync", p)
			require.False(t, child.Start.Before(par.End), "TNode %d synced before its parent %d", r.ID, p)
		}
	}

	// A cycle: refs[1] (depth 1) under refs[3] (depth 3, below refs[2],
	// below refs[1]): refs[1] -> refs[3] -> refs[2] -> refs[1].
	a, b, c := refs[1], refs[2], refs[3]
	require.Equal(t, a.ID, parent[b.ID])
	require.Equal(t, b.ID, parent[c.ID])
	e.setParent(a, c.ID)
	e.setParent(b, a.ID) // touched too, so that its workflow runs
	e.setParent(c, b.ID)
	name := func(r models.Ref) string { return fmt.Sprintf("TNode %d", r.ID) }
	want := map[models.Ref]string{
		a: fmt.Sprintf("dependency cycle: %s -> %s -> %s -> %s", name(a), name(c), name(b), name(a)),
		b: fmt.Sprintf("dependency cycle: %s -> %s -> %s -> %s", name(b), name(a), name(c), name(b)),
		c: fmt.Sprintf("dependency cycle: %s -> %s -> %s -> %s", name(c), name(b), name(a), name(c)),
	}
	require.Eventually(t, func() bool {
		for r, status := range want {
			got := e.get(r)
			if got.BackendCode != models.CodeError || got.BackendStatus != status {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "cycle statuses: %s", e.describe(a, b, c))
	// A node below the cycle, changed now, waits behind it.
	below := refs[4]
	require.Equal(t, b.ID, parent[below.ID])
	e.setParent(below, b.ID)
	time.Sleep(2 * time.Second)
	require.False(t, inSync(e.get(below)), "a node below a cycle must not sync: %s", e.describe(below))

	fixed := time.Now()
	e.setParent(a, refs[0].ID)
	e.waitInSync(20*time.Second, refs...)
	t.Logf("cycle fixed: all 40 in sync after %v", time.Since(fixed))
	require.Equal(t, "OK", e.get(a).BackendStatus)

	// Re-parenting: a leaf moved under another node, changed meanwhile,
	// syncs after its new parent.
	leaf, newParent := refs[len(refs)-1], refs[5]
	np := e.getObj(newParent).(*TNode)
	np.Name = "renamed"
	require.NoError(t, e.app.Store.Save(e.ctx, np))
	e.setParent(leaf, newParent.ID)
	e.waitInSync(20*time.Second, leaf, newParent)
	lc, _ := step.last("sync", leaf.ID)
	pc, _ := step.last("sync", newParent.ID)
	require.False(t, lc.Start.Before(pc.End), "re-parented node synced before its new parent")

	// A subtree deleted: refs[1] and everything below it; children first.
	var subtree []models.Ref
	under := map[int64]bool{a.ID: true}
	for _, r := range refs {
		n := e.getObj(r).(*TNode)
		parent[r.ID] = n.ParentID
		if under[r.ID] || under[n.ParentID] {
			under[r.ID] = true
			subtree = append(subtree, r)
		}
	}
	require.Len(t, subtree, 14, "refs[1]'s 13 and the leaf moved under refs[5]")
	for _, r := range subtree {
		require.NoError(t, e.app.Store.Delete(e.ctx, r.Model, r.ID))
	}
	require.Eventually(t, func() bool {
		for _, r := range subtree {
			if e.exists(r) {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond)
	for _, r := range subtree {
		n := r.ID
		p := subtreeParent(t, subtree, parent, n)
		if p == 0 {
			continue
		}
		cd, ok := step.last("delete", n)
		require.True(t, ok)
		pd, ok := step.last("delete", p)
		require.True(t, ok)
		require.False(t, pd.Start.Before(cd.End), "TNode %d deleted before its child %d", p, n)
	}
}

// subtreeParent returns the parent of id within subtree (0 for its root).
func subtreeParent(t *testing.T, subtree []models.Ref, parent map[int64]int64, id int64) int64 {
	t.Helper()
	p := parent[id]
	if slices.ContainsFunc(subtree, func(r models.Ref) bool { return r.ID == p }) {
		return p
	}
	return 0
}

// The chain Site <- Slice <- Instance, all in sync; then the Site (a 2 s
// step) and the Instance change, the Slice does not: the Instance's sync
// starts only after the Site's ends.
func TestDistantDependencyChain(t *testing.T) {
	e := newEnv(t)
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.Model == "Site" && op == "sync" && obj.(*testmodels.Site).Name == "s2" {
			time.Sleep(2 * time.Second)
		}
		return nil
	})
	site, slice, inst := e.insertChain()
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, site, slice, inst)

	s := e.getObj(site).(*testmodels.Site)
	s.Name = "s2"
	require.NoError(t, e.app.Store.Save(e.ctx, s))
	i := e.getObj(inst).(*testmodels.Instance)
	i.Name = "i2"
	require.NoError(t, e.app.Store.Save(e.ctx, i))
	e.waitInSync(20*time.Second, site, slice, inst)
	sc := e.rec.CallsOf("sync", site)
	ic := e.rec.CallsOf("sync", inst)
	require.Len(t, sc, 2)
	require.Len(t, ic, 2)
	require.Len(t, e.rec.CallsOf("sync", slice), 1, "the Slice in sync is not synced again")
	require.False(t, ic[1].Start.Before(sc[1].End), "Instance synced at %v, before the Site's sync ended at %v", ic[1].Start, sc[1].End)
	require.Empty(t, e.rec.Violations())
}

// The diamond A -> B, C -> D, all in sync; then D (a 2 s step) and A
// change: A's sync starts only after D's ends, and B and C are not synced
// again.
func TestDistantDependencyDiamond(t *testing.T) {
	e := newEnv(t)
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.Model == "D" && op == "sync" && obj.(*testmodels.D).Name == "d2" {
			time.Sleep(2 * time.Second)
		}
		return nil
	})
	d := e.insert(&testmodels.D{Name: "d"})
	b := e.insert(&testmodels.B{Name: "b", DID: d.ID})
	c := e.insert(&testmodels.C{Name: "c", DID: d.ID})
	a := e.insert(&testmodels.A{Name: "a", BID: b.ID, CID: c.ID})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, a, b, c, d)

	do := e.getObj(d).(*testmodels.D)
	do.Name = "d2"
	require.NoError(t, e.app.Store.Save(e.ctx, do))
	ao := e.getObj(a).(*testmodels.A)
	ao.Name = "a2"
	require.NoError(t, e.app.Store.Save(e.ctx, ao))
	e.waitInSync(20*time.Second, a, b, c, d)
	dc := e.rec.CallsOf("sync", d)
	ac := e.rec.CallsOf("sync", a)
	require.Len(t, dc, 2)
	require.Len(t, ac, 2)
	require.Len(t, e.rec.CallsOf("sync", b), 1)
	require.Len(t, e.rec.CallsOf("sync", c), 1)
	require.False(t, ac[1].Start.Before(dc[1].End), "A synced before D's sync ended")
	require.Empty(t, e.rec.Violations())
}

// Two deleted nodes on a cycle do not wait for each other's deletion
// forever: each is held in error naming the cycle; once the data is fixed
// both go, the child first.
func TestTreeDeletedCycle(t *testing.T) {
	e, step := newTreeEnv(t)
	x := e.insert(&TNode{Name: "x"})
	y := e.insert(&TNode{Name: "y", ParentID: x.ID})
	e.waitInSync(20*time.Second, x, y)
	e.setParent(x, y.ID)
	require.NoError(t, e.app.Store.Delete(e.ctx, y.Model, y.ID))
	require.NoError(t, e.app.Store.Delete(e.ctx, x.Model, x.ID))
	want := map[models.Ref]string{
		x: fmt.Sprintf("dependency cycle: TNode %d -> TNode %d -> TNode %d", x.ID, y.ID, x.ID),
		y: fmt.Sprintf("dependency cycle: TNode %d -> TNode %d -> TNode %d", y.ID, x.ID, y.ID),
	}
	require.Eventually(t, func() bool {
		for r, status := range want {
			if got := e.get(r); got.BackendCode != models.CodeError || got.BackendStatus != status || !got.Deleted {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "cycle statuses: %s", e.describe(x, y))
	_, deleted := step.last("delete", x.ID)
	require.False(t, deleted)

	m, _ := e.app.Store.Graph().Model("TNode")
	_, err := e.app.Store.Pool().Exec(e.ctx, `UPDATE `+e.app.Store.Table(m)+` SET parent_id = 0 WHERE id = $1`, x.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !e.exists(x) && !e.exists(y) }, 20*time.Second, 50*time.Millisecond, "%s", e.describe(x, y))
	xd, _ := step.last("delete", x.ID)
	yd, ok := step.last("delete", y.ID)
	require.True(t, ok)
	require.False(t, xd.Start.Before(yd.End), "the parent was deleted before its child")
}

// A cycle closed while its members' workflows already wait for each other
// (b and c changed while a's 2 s sync runs, then a re-parented under c):
// the workflows do not keep waiting, each member shows the cycle from
// itself, and fixing it brings all three in sync.
func TestTreeCycleClosedWhileWaiting(t *testing.T) {
	e, step := newTreeEnv(t)
	a := e.insert(&TNode{Name: "a"})
	b := e.insert(&TNode{Name: "b", ParentID: a.ID})
	c := e.insert(&TNode{Name: "c", ParentID: b.ID})
	e.waitInSync(20*time.Second, a, b, c)
	step.mu.Lock()
	step.slow = "a-slow"
	step.mu.Unlock()
	ao := e.getObj(a).(*TNode)
	ao.Name = "a-slow"
	require.NoError(t, e.app.Store.Save(e.ctx, ao))
	time.Sleep(300 * time.Millisecond)
	e.setParent(b, a.ID)
	e.setParent(c, b.ID)
	time.Sleep(300 * time.Millisecond)
	ao = e.getObj(a).(*TNode)
	ao.ParentID = c.ID
	require.NoError(t, e.app.Store.Save(e.ctx, ao))
	want := map[models.Ref]string{
		a: fmt.Sprintf("dependency cycle: TNode %d -> TNode %d -> TNode %d -> TNode %d", a.ID, c.ID, b.ID, a.ID),
		b: fmt.Sprintf("dependency cycle: TNode %d -> TNode %d -> TNode %d -> TNode %d", b.ID, a.ID, c.ID, b.ID),
		c: fmt.Sprintf("dependency cycle: TNode %d -> TNode %d -> TNode %d -> TNode %d", c.ID, b.ID, a.ID, c.ID),
	}
	require.Eventually(t, func() bool {
		for r, status := range want {
			if got := e.get(r); got.BackendCode != models.CodeError || got.BackendStatus != status {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "cycle statuses: %s", e.describe(a, b, c))
	fixed := time.Now()
	e.setParent(a, 0)
	e.waitInSync(20*time.Second, a, b, c)
	t.Logf("cycle closed while waiting: fixed, all in sync after %v", time.Since(fixed))
}
