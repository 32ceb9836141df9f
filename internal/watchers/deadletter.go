package watchers

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// deadLetter adds the entry to the dead-letter stream, with why, and
// acknowledges it, atomically.
func (d *Dispatcher) deadLetter(ctx context.Context, m redis.XMessage, why string) error {
	values := []any{"dead_reason", why, "dead_id", m.ID, "dead_stream", d.opts.Stream, "dead_group", d.opts.Group}
	for k, v := range m.Values {
		if !strings.HasPrefix(k, "dead_") {
			values = append(values, k, v)
		}
	}
	_, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: d.opts.DeadLetter, MaxLen: d.opts.DeadLetterMaxLen, Approx: true, Values: values})
		p.XAck(ctx, d.opts.Stream, d.opts.Group, m.ID)
		return nil
	})
	if err != nil {
		return err
	}
	d.dead.Add(1)
	d.log.Warn("malformed event moved to the dead-letter stream", "entry", m.ID, "reason", why, "dead_letter", d.opts.DeadLetter)
	return nil
}
