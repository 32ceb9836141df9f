package syncstate

import (
	"context"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// Reader returns what a step's FetchPending override gets
// (tsync.PendingQuery.Objects): the default query and read-only lookups,
// none of the writers.
func (s *Store) Reader() tsync.PendingReader { return reader{s} }

type reader struct{ s *Store }

func (r reader) Pending(ctx context.Context, q tsync.PendingQuery) ([]int64, error) {
	return r.s.FetchPending(ctx, q.Model, q.Deletion, q.AfterID, q.Limit)
}

func (r reader) Get(ctx context.Context, model string, id int64) (models.Object, error) {
	return r.s.Get(ctx, model, id)
}
