package models

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen holds one LISTEN session on the store's channel: it calls
// listening once the session is up (to catch up with what committed
// before), then notify with the payload of every announcement, until ctx is
// done or the connection fails; it returns that error. Callers loop on it,
// and should treat a return as "announcements may have been missed".
func (s *Store) Listen(ctx context.Context, listening func(), notify func(payload string)) error {
	conn, err := s.pool.Acquire(ctx)
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
