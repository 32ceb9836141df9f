// Package devstack runs the local development stack of a tsync synchronizer:
// a Temporal dev server (the temporal CLI, Web UI included) that outlives the
// command that started it, and the PostgreSQL and Redis services the config
// points at.
//
// A Temporal server already listening at the configured address is always
// reused, never replaced: Start reports it and returns.
//
//	t := devstack.Temporal{Bin: bin, HostPort: cfg.Temporal.HostPort, Namespace: cfg.Temporal.Namespace}
//	res, err := t.Start(ctx) // res.Reused says whether it was running already
//	...
//	err = t.Stop() // only stops a server this package started (by its pid file)
package devstack
