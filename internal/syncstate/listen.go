package syncstate

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// reconnectDelay is the time Listen waits before it listens again after a
// failed session.
const reconnectDelay = time.Second

// Listen listens on the store's channel (see models.Store.Channel) until ctx
// is done: it calls notify with the payload of every announcement. A
// session that fails (the connection lost, PostgreSQL restarted) is logged
// to log (nil: not logged), and another is started a second later; nothing
// is announced to a channel no session listens on, so listening, when not
// nil, is called each time a session is up (the first one included), before
// any announcement of it: the caller catches up there with what committed
// before. The starter (which scans) and the outbox relay (which relays)
// both listen with it.
func (s *Store) Listen(ctx context.Context, log *slog.Logger, listening func(), notify func(payload string)) {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, listening, notify)
		if ctx.Err() != nil {
			return
		}
		if log != nil {
			log.Warn("listening for changes failed; reconnecting", "channel", s.Channel(), "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reconnectDelay):
		}
	}
}

// listenOnce holds one LISTEN session, until ctx is done or the connection
// fails; it returns that error.
func (s *Store) listenOnce(ctx context.Context, listening func(), notify func(payload string)) error {
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.Channel()}.Sanitize()); err != nil {
		conn.Conn().Close(ctx) //nolint:errcheck // the connection is dropped either way
		return err
	}
	defer func() {
		// Leave the pooled connection as it was found.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "UNLISTEN *"); err != nil {
			conn.Conn().Close(uctx) //nolint:errcheck
		}
	}()
	if listening != nil {
		listening()
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notify(n.Payload)
	}
}
