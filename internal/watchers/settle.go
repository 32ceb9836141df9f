package watchers

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync/internal/outbox"
)

// settleBatch is how many outbox entries one outbox.Outbox.Settle
// transaction looks at.
const settleBatch = 500

// settle brings the outbox and the stream in step: the four steps of the
// outbox protocol, and why their races are safe, are in package outbox's doc.
func (d *Dispatcher) settle(ctx context.Context) error {
	groups, err := d.rdb.XInfoGroups(ctx, d.opts.Stream).Result()
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	// 1. The lowest stream id any group still needs.
	var min outbox.StreamID
	for i, g := range groups {
		need := outbox.StreamIDOf(g.LastDeliveredID).Next()
		if g.Pending > 0 {
			p, err := d.rdb.XPending(ctx, d.opts.Stream, g.Name).Result()
			if err != nil {
				return fmt.Errorf("trim: %w", err)
			}
			if low := outbox.StreamIDOf(p.Lower); p.Count > 0 && low.Less(need) {
				need = low
			}
		}
		if i == 0 || need.Less(min) {
			min = need
		}
	}
	// 2. Settle the entries below it.
	handled := len(groups) > 0 && min != (outbox.StreamID{Ms: 0, Seq: 1})
	if handled {
		for {
			deleted, lost, err := d.outbox.Settle(ctx, min, settleBatch, d.present)
			if err != nil {
				return fmt.Errorf("settle: %w", err)
			}
			d.settled.Add(int64(deleted))
			if lost > 0 {
				d.recovered.Add(int64(lost))
				d.log.Warn("events were lost from the stream (Redis lost its data?): publishing them again from the outbox", "events", lost)
			}
			if deleted+lost < settleBatch {
				break
			}
		}
	}
	// 3. The entries outside the stream's ends were lost.
	lost, err := d.outbox.UnpublishLost(ctx, func(ctx context.Context) (outbox.StreamBounds, error) {
		return streamBounds(ctx, d.rdb, d.opts.Stream)
	})
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if lost > 0 {
		d.recovered.Add(lost)
		d.log.Warn("events beyond the end of the stream were lost (Redis lost its data?): publishing them again from the outbox", "events", lost)
	}
	if !handled {
		return nil
	}
	// 4. Trim below the lowest id of step 1 and the oldest entry the outbox
	// holds.
	oldest, err := d.outbox.OldestPublished(ctx)
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	if !oldest.IsZero() && oldest.Less(min) {
		min = oldest
	}
	if err := d.rdb.XTrimMinID(ctx, d.opts.Stream, min.String()).Err(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	return nil
}

// present reports whether the stream still holds the stream entry of each
// outbox entry: an entry of its stream id carrying its outbox id (after a
// loss, a new stream may have given that id to another entry).
func (d *Dispatcher) present(ctx context.Context, entries []outbox.Entry) ([]bool, error) {
	pipe := d.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(entries))
	for i, e := range entries {
		id := e.Stream.String()
		cmds[i] = pipe.XRangeN(ctx, d.opts.Stream, id, id, 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("look up entries: %w", err)
	}
	out := make([]bool, len(entries))
	for i, c := range cmds {
		msgs := c.Val()
		out[i] = len(msgs) == 1 && msgs[0].Values[FieldOutboxID] == strconv.FormatInt(entries[i].ID, 10)
	}
	return out, nil
}
