package activities

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tsync/tsync/models"
)

// One step call per object at a time (issue 16).
//
// An attempt that Temporal timed out (step_timeout, heartbeat timeout) or
// whose worker lost Temporal is replaced by another, perhaps on another
// worker process, while its step may still run (a step that ignores its
// context, or is slow to return). Every step call (sync, delete, policy)
// therefore runs under a PostgreSQL session-level advisory lock of its
// object, pg_try_advisory_lock(int4, int4): the first key is a hash of the
// store's schema (the synchronizer) and the model, the second the object's
// id (its low 32 bits), so pg_locks shows which object a lock is for. Two
// objects whose keys collide are only serialized. The two-key form never
// meets the one-key locks (pg_advisory_xact_lock(bigint)) of migrations.
//
// The locks are held on a few connections of the Activities' own
// (lockShards, opened when a step runs, closed after lockLinger without one),
// not on the pool's: a step does not hold a pool connection while it runs,
// so pool_max_conns need not grow with concurrency.activities and a step
// using the store cannot starve for one. Several calls share a lock
// connection (a session holds many locks); as a session may take a lock it
// holds again, the calls of one Activities are excluded by the shard's held
// set first. A call that finds its object locked releases everything and
// polls (lockPollMin doubling to lockPollMax), heartbeating by RunStep, until
// its context ends: it then fails with ErrCallRunning, which is retried.
// The cost per call is one round trip to lock and one to unlock.
//
// A process that dies closes its sessions: PostgreSQL frees their locks, so
// the next attempt runs. A lock connection that dies while its process
// lives (a PostgreSQL restart, pg_terminate_backend) frees its locks too;
// its next use reconnects and takes again those of the calls still running,
// but until then, and if another process took one meanwhile, a replacement
// attempt may overlap a call still running.

const (
	// lockShards is the number of lock connections per pool.
	lockShards = 4
	// lockOpTimeout bounds a lock query (and a connect). Lock queries never
	// run under a caller's context: pgx closes a connection whose query is
	// cancelled, and with it the locks of the other calls.
	lockOpTimeout = 5 * time.Second
	// lockLinger is how long a lock connection stays open without a lock.
	lockLinger = 30 * time.Second
	// lockPollMin and lockPollMax bound the interval of a waiting call's
	// tries.
	lockPollMin = 20 * time.Millisecond
	lockPollMax = 500 * time.Millisecond
)

// ErrCallRunning is the error of a step call that did not run because the
// previous call of its object was still running when its context ended.
// Activities return it as a retryable step error.
var ErrCallRunning = errors.New("the previous step call of this object is still running")

// exclusive returns fn run under its object's lock (see above). Without a
// store, fn runs as is.
func (a *Activities) exclusive(ref models.Ref, fn func(context.Context) error) func(context.Context) error {
	if a.Store == nil {
		return fn
	}
	return func(ctx context.Context) error {
		unlock, err := lockObject(ctx, a.lockerOf(), a.Store.Schema(), ref)
		if err != nil {
			return err
		}
		defer unlock()
		return fn(ctx)
	}
}

// lockObject takes ref's lock, waiting while another call holds it, and
// returns its release.
func lockObject(ctx context.Context, l *locker, schema string, ref models.Ref) (func(), error) {
	k := lockKeyOf(schema, ref)
	sh := l.shard(k)
	start := time.Now()
	wait := lockPollMin
	for {
		ok, err := sh.try(ctx, k)
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%s %d: lock for the step call: %w", ref.Model, ref.ID, err)
		}
		if ok {
			return func() { sh.release(k) }, nil
		}
		if err == nil {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				wait = min(2*wait, lockPollMax)
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		return nil, fmt.Errorf("%s %d: %w (waited %s)", ref.Model, ref.ID, ErrCallRunning, time.Since(start).Round(time.Millisecond))
	}
}

// lockKey is the two keys of an object's advisory lock.
type lockKey struct{ class, obj int32 }

// lockKeyOf returns the key of ref's lock in schema.
func lockKeyOf(schema string, ref models.Ref) lockKey {
	h := fnv.New32a()
	_, _ = h.Write([]byte(schema))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(ref.Model))
	return lockKey{class: int32(h.Sum32()), obj: int32(ref.ID)}
}

// locker holds the lock connections of one Activities: its sessions,
// connected as its store's pool connects.
type locker struct{ shards [lockShards]*lockShard }

// lockerOf returns a's locker, made at its first use.
func (a *Activities) lockerOf() *locker {
	a.lockOnce.Do(func() {
		a.locks = &locker{}
		cfg := a.Store.Pool().Config().ConnConfig
		for i := range a.locks.shards {
			a.locks.shards[i] = &lockShard{cfg: cfg.Copy(), sem: make(chan struct{}, 1), held: map[lockKey]bool{}}
		}
	})
	return a.locks
}

// shard returns the shard of k: always the same one.
func (l *locker) shard(k lockKey) *lockShard {
	return l.shards[(uint32(k.class)+uint32(k.obj))%lockShards]
}

// lockShard is one lock connection and the locks its process's calls hold
// on it.
type lockShard struct {
	cfg *pgx.ConnConfig
	// sem, a one-slot semaphore, guards the fields below.
	sem  chan struct{}
	conn *pgx.Conn // nil when closed
	held map[lockKey]bool
	idle *time.Timer // closes conn once no lock is held for lockLinger
}

// try takes k's lock if no call holds it, in this process or another.
func (s *lockShard) try(ctx context.Context, k lockKey) (bool, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.held[k] {
		return false, nil
	}
	ok, err := s.query(`SELECT pg_try_advisory_lock($1::int4, $2::int4)`, k)
	if !ok || err != nil {
		return false, err
	}
	s.held[k] = true
	if s.idle != nil {
		s.idle.Stop()
	}
	return true, nil
}

// release releases k's lock. When the unlock fails, the connection is
// closed, which releases it too.
func (s *lockShard) release(k lockKey) {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	delete(s.held, k)
	_, _ = s.query(`SELECT pg_advisory_unlock($1::int4, $2::int4)`, k)
	if len(s.held) > 0 {
		return
	}
	if s.idle == nil {
		s.idle = time.AfterFunc(lockLinger, s.closeIdle)
	} else {
		s.idle.Reset(lockLinger)
	}
}

// CloseLocks closes the sessions of a's step locks, releasing the locks
// still held: call it once no step call runs any more (a worker's Run has
// returned). A call after it opens them again. (A function, not a method:
// every exported method of Activities is registered as an activity.)
func CloseLocks(a *Activities) {
	if a.Store == nil {
		return
	}
	for _, s := range a.lockerOf().shards {
		s.sem <- struct{}{}
		if s.idle != nil {
			s.idle.Stop()
		}
		s.drop()
		<-s.sem
	}
}

// closeIdle closes the connection when no lock is held on it.
func (s *lockShard) closeIdle() {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if len(s.held) == 0 {
		s.drop()
	}
}

// query runs a lock query of k, returning its boolean. It connects first
// when the connection is closed; a query that fails on a connection that
// had been open is tried once more on a new one (it died meanwhile).
func (s *lockShard) query(sql string, k lockKey) (bool, error) {
	for retried := false; ; retried = true {
		fresh, err := s.connect()
		if err != nil {
			return false, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockOpTimeout)
		var ok bool
		err = s.conn.QueryRow(ctx, sql, k.class, k.obj).Scan(&ok)
		cancel()
		if err == nil {
			return ok, nil
		}
		s.drop()
		if fresh || retried {
			return false, fmt.Errorf("advisory lock: %w", err)
		}
	}
}

// connect opens the connection when it is closed, and takes again on it the
// locks its calls hold (a dead connection lost them). fresh reports that
// it connected.
func (s *lockShard) connect() (fresh bool, err error) {
	if s.conn != nil && !s.conn.IsClosed() {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockOpTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return true, fmt.Errorf("advisory lock: connect: %w", err)
	}
	s.conn = conn
	for k := range s.held {
		// Best effort: when another process took it meanwhile, its calls
		// overlap (see above); an unlock of a lock not held is harmless.
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::int4, $2::int4)`, k.class, k.obj).Scan(&ok); err != nil {
			s.drop()
			return true, fmt.Errorf("advisory lock: take again: %w", err)
		}
	}
	return true, nil
}

// drop closes the connection, releasing the locks held on it.
func (s *lockShard) drop() {
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
	s.conn = nil
}
