package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// policyLog records policy calls and, through the recorder's hook, step
// calls, in one order.
type policyLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *policyLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *policyLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func (e *env) assertPoliced(ref models.Ref) {
	e.t.Helper()
	b := e.get(ref)
	require.NotNil(e.t, b.Policed, "%s policed", ref)
	require.True(e.t, b.Policed.Equal(b.Updated), "%s: policed %v, updated %v", ref, b.Policed, b.Updated)
}

// Model policies run before the step, for create, update and delete; a
// policy's own change to its object is saved with it and does not run the
// policy again.
func TestPoliciesRunBeforeSteps(t *testing.T) {
	t.Parallel()
	var log policyLog
	policy := tsync.PolicyOf[testmodels.Site](tsync.PolicyFuncs[testmodels.Site]{
		Create: func(ctx context.Context, s *testmodels.Site) error {
			log.add("create " + s.Name)
			s.Name = strings.ToUpper(s.Name)
			return nil
		},
		Update: func(ctx context.Context, s *testmodels.Site) error { log.add("update " + s.Name); return nil },
		Delete: func(ctx context.Context, s *testmodels.Site) error { log.add("delete " + s.Name); return nil },
	})
	e := newEnvWithPolicies(t, []tsync.Policy{policy})
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if s, ok := obj.(*testmodels.Site); ok {
			log.add(op + " step " + s.Name)
		}
		return nil
	})
	site := e.insert(&testmodels.Site{Name: "paris"})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, site)
	e.assertInSync(site)
	e.assertPoliced(site)
	require.Equal(t, []string{"create paris", "sync step PARIS"}, log.all())
	s, err := models.Load[testmodels.Site](e.ctx, e.app.Store, site.ID)
	require.NoError(t, err)
	require.Equal(t, "PARIS", s.Name)

	s.Name = "PARIS-2"
	require.NoError(t, e.app.Store.Save(e.ctx, s))
	e.waitInSync(20*time.Second, site)
	e.assertPoliced(site)
	require.Equal(t, []string{"create paris", "sync step PARIS", "update PARIS-2", "sync step PARIS-2"}, log.all())

	e.delete(site)
	e.waitGone(20*time.Second, site)
	require.Equal(t, []string{"create paris", "sync step PARIS", "update PARIS-2", "sync step PARIS-2", "delete PARIS-2", "delete step PARIS-2"}, log.all())
}

// A failing policy is recorded like a step error and holds the sync of the
// object and of its dependents until it succeeds.
func TestFailingPolicyHoldsSync(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	var attempts atomic.Int32
	policy := tsync.PolicyOf[testmodels.Site](tsync.PolicyFuncs[testmodels.Site]{
		Create: func(ctx context.Context, s *testmodels.Site) error {
			attempts.Add(1)
			if failing.Load() {
				return errors.New("no region for site")
			}
			return nil
		},
	})
	e := newEnvWithPolicies(t, []tsync.Policy{policy})
	site := e.insert(&testmodels.Site{Name: "s"})
	slice := e.insert(&testmodels.Slice{Name: "sl", SiteID: site.ID})
	e.startWorker()
	e.startStarter()
	require.Eventually(t, func() bool { return attempts.Load() >= 2 }, 20*time.Second, 10*time.Millisecond)
	b := e.get(site)
	require.Equal(t, models.CodeError, b.BackendCode)
	require.Equal(t, "model policy create failed: no region for site", b.BackendStatus)
	require.Nil(t, b.Policed)
	require.Nil(t, b.Enacted)
	require.False(t, b.BackendNeedDelete)
	require.Equal(t, fmt.Sprintf("Failed due to error in model Site id %d: model policy create failed: no region for site", site.ID), e.get(slice).BackendStatus)
	require.Empty(t, e.rec.Calls(), "no step runs while the policy fails")

	failing.Store(false)
	e.waitInSync(20*time.Second, site, slice)
	e.assertPoliced(site)
	require.Equal(t, []models.Ref{site, slice}, e.rec.Order("sync"))
}
