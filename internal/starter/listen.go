package starter

import (
	"context"
	"errors"
	"time"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// listen signals (SignalChanged, starting it if need be) the workflow of
// every object announced on the store's channel; an OpPoliced announcement
// only starts it, and so does an OpCreate one unless a workflow of the
// object runs already (startNew). After a lost connection, once listening
// again, it wakes a full scan, since announcements made meanwhile are lost.
func (s *Starter) listen(ctx context.Context, wake chan<- struct{}) {
	first := true
	listening := func() {
		if first {
			// The first session: Run scans at start anyway.
			first = false
			return
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	syncstate.New(s.store).Listen(ctx, s.log, listening, func(payload string) {
		c, err := models.ParseChange(payload)
		if err != nil {
			s.log.Warn("ignoring malformed change announcement", "payload", payload, "error", err)
			return
		}
		if _, ok := s.sync.Step(c.Model); !ok {
			return
		}
		if c.Op == models.OpMany {
			// One statement changed many rows: a scan starts them in
			// batches, rather than one start per announcement.
			s.log.Debug("many changes announced; scanning", "model", c.Model, "count", c.Count)
			select {
			case wake <- struct{}{}:
			default:
			}
			return
		}
		ref := models.Ref{Model: c.Model, ID: c.ID}
		deletion := c.Op == models.OpDelete
		// The announcement's updated is recorded with the start, so that
		// a scan racing it leaves the workflow alone (skip); and a run
		// that a scan started for that content already needs nothing more
		// (announcements are handled one by one, so scans often overtake
		// them in a burst).
		if !c.Updated.IsZero() && s.skip(ref, c.Updated, time.Now()) {
			return
		}
		switch c.Op {
		case models.OpPoliced:
			// The workflow's own policies ran: it looks again by itself.
			err = s.startOrSignal(ctx, ref, deletion, c.Updated, startOrJoin, false)
		case models.OpCreate:
			// A new row has no workflow yet, as a rule: a signal would
			// cost an action (and an event) for nothing.
			err = s.startNew(ctx, ref, deletion, c.Updated)
		default:
			err = s.startOrSignal(ctx, ref, deletion, c.Updated, signalOrStart, false)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("start on change failed", "object", c.Model, "id", c.ID, "error", err)
		}
	})
}
