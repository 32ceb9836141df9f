package watchers

// Stats count what a dispatcher did.
type Stats struct {
	// Read is the number of stream entries read or claimed (a redelivered
	// entry counts again).
	Read int64
	// Started is the number of changes given to watcher workflows (one per
	// watcher and object a change fires; a redelivered change counts
	// again: the workflow, not the dispatcher, skips it).
	Started int64
	// Acked is the number of entries acknowledged after their workflows
	// were started (or they fired none).
	Acked int64
	// DeadLettered is the number of malformed entries moved to the
	// dead-letter stream.
	DeadLettered int64
	// Failed is the number of entries left unacknowledged after a failure
	// (PostgreSQL or Temporal unreachable), to be retried.
	Failed int64
	// Settled is the number of outbox entries deleted because every group
	// had handled them.
	Settled int64
	// Recovered is the number of outbox entries marked unpublished, to be
	// published again, because their stream entry was lost (Redis lost its
	// data, or the stream was deleted).
	Recovered int64
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Read: d.read.Load(), Started: d.started.Load(),
		Acked: d.acked.Load(), DeadLettered: d.dead.Load(), Failed: d.failed.Load(),
		Settled: d.settled.Load(), Recovered: d.recovered.Load(),
	}
}
