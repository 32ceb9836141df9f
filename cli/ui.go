package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/objectview"
	"github.com/tsync/tsync/models"
)

func (c *CLI) uiCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the object view: the objects' sync state, dependencies and workflows, in a browser",
		Long: `Serve the object view until SIGINT or SIGTERM: a read-only web page of the
synchronizer's objects. / shows the counts by state per model and the model
dependency graph; /objects?model=M&state=S the objects (states in-sync,
pending, deferred, held, error; errors marked red); /objects/M/ID one object
with its fields, status, attempts and next retry, its dependency chain and
the dependents it holds, and a link to its workflow in the Temporal Web UI
(temporal.ui_url, or the dev server or cluster tsync started). Pages refresh
themselves. It listens on --address, else ui_address, else 127.0.0.1:8480;
with ui_token_file set, every request needs "Authorization: Bearer <token>"
(a browser may open it once with ?token=<token>). run and the worker serve
it too when ui_address is set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := c.untilSignal(cmd.Context())
			defer stop()
			if addr == "" {
				addr = c.cfg.UIAddress
			}
			if addr == "" {
				addr = objectview.DefaultAddress
			}
			// The view never writes; its sessions cannot.
			a, err := app.OpenStore(ctx, c.cfg, c.def.Models, c.build(), false, c.log, append(c.appOptions(), app.WithReadOnlyDatabase())...)
			if err != nil {
				return err
			}
			defer a.Close()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cl, err := app.DialTemporal(dctx, c.cfg, c.log, c.appOptions()...)
			cancel()
			if err != nil {
				c.log.Warn("object view without workflows: Temporal is unreachable", "host_port", c.cfg.Temporal.HostPort, "error", err)
				cl = nil
			} else {
				defer cl.Close()
			}
			return c.serveUI(ctx, addr, a.Store, cl, func(at net.Addr) {
				c.Printf("Object view: http://%s/ (read-only; Ctrl-C to stop)", at)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "address", "", `"host:port" to serve at (default: ui_address, else `+objectview.DefaultAddress+`)`)
	return cmd
}

// serveUI serves the object view of store (and of cl's workflows, when
// not nil) at addr until ctx is done; ready is called once it listens.
func (c *CLI) serveUI(ctx context.Context, addr string, store *models.Store, cl client.Client, ready func(net.Addr)) error {
	token, err := c.cfg.UIToken()
	if err != nil {
		return err
	}
	in := inspect.New(store, cl, inspect.Options{
		Synchronizer: c.cfg.ObserverName,
		Namespace:    c.cfg.Temporal.Namespace,
		UIURL:        c.webUIBase(ctx),
	})
	view, err := objectview.New(in, objectview.Options{Token: token, Title: c.cfg.ObserverName, Retries: app.Params(c.cfg).Retry.Describe(), Log: c.log})
	if err != nil {
		return err
	}
	return objectview.Serve(ctx, addr, view, ready)
}

// webUIBase is the base URL of the Temporal Web UI the workflow links
// use: temporal.ui_url; else that of the dev server or cluster this
// command started at temporal.host_port; else "" (see uiLine).
func (c *CLI) webUIBase(ctx context.Context) string {
	if u := c.cfg.Temporal.UIURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	base := func(u string) string {
		b, _, _ := strings.Cut(u, "/namespaces/")
		return b
	}
	if st := c.temporal(devFlags{}).Status(ctx); st.Owned() {
		return base(st.UIURL)
	}
	if cs, err := cluster.ReadStatus(clusterStateDir); err == nil && cs.State != nil && cs.Running() > 0 &&
		cs.State.HostPort == c.cfg.Temporal.HostPort {
		return base(cs.State.UIURL)
	}
	return ""
}

// withUI runs run, and serves the object view beside it when ui_address
// is set (run and the worker): a view that cannot listen fails the start.
func (c *CLI) withUI(run func(*app.App, context.Context) error) func(*app.App, context.Context) error {
	return func(a *app.App, ctx context.Context) error {
		if c.cfg.UIAddress == "" {
			return run(a, ctx)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		listening := make(chan struct{})
		served := make(chan error, 1)
		go func() {
			served <- c.serveUI(ctx, c.cfg.UIAddress, a.Store, a.Client, func(at net.Addr) {
				c.log.Info("object view served", "url", fmt.Sprintf("http://%s/", at))
				close(listening)
			})
		}()
		select {
		case err := <-served:
			return err
		case <-listening:
		}
		err := run(a, ctx)
		cancel()
		if uerr := <-served; uerr != nil {
			err = errors.Join(err, uerr)
		}
		return err
	}
}
