package workflows

import "github.com/tsync/tsync/internal/workflows"

// RetryParams is the retry policy of a failing step (Params.Retry, from
// config: see app.Params). Its Schedule(n) returns the delays before the
// first n retries, and Describe says the schedule in a line ("every 1s,
// forever" with the default observer_backoff_disabled).
type RetryParams = workflows.RetryParams
