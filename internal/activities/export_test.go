package activities

import (
	"context"

	"github.com/tsync/tsync/models"
)

// The internals the tests of package activities_test use (they need
// storetest, which imports this package through testenv).

// Call is call.
func (a *Activities) Call(ctx context.Context, ref models.Ref, op string, fn func(context.Context) error) error {
	return a.call(ctx, ref, op, fn)
}

// Exclusive is exclusive.
func (a *Activities) Exclusive(ref models.Ref, fn func(context.Context) error) func(context.Context) error {
	return a.exclusive(ref, fn)
}

// LockClass is the first key (pg_locks' classid) of the locks of model's
// objects in schema.
func LockClass(schema, model string) int64 {
	return int64(uint32(lockKeyOf(schema, models.Ref{Model: model}).class))
}

// HeldLocks lists the second keys (the objects' ids) of the locks a's
// process holds, by its locker.
func (a *Activities) HeldLocks() []int64 {
	var out []int64
	for _, s := range a.lockerOf().shards {
		s.sem <- struct{}{}
		for k := range s.held {
			out = append(out, int64(k.obj))
		}
		<-s.sem
	}
	return out
}

// LockSessions counts the open sessions of a's step locks.
func (a *Activities) LockSessions() int {
	n := 0
	for _, s := range a.lockerOf().shards {
		s.sem <- struct{}{}
		if s.conn != nil {
			n++
		}
		<-s.sem
	}
	return n
}
