package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/starter"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/logging"
)

// Option changes how Open, OpenWithStore and DialTemporal connect.
type Option func(*options)

// options are the Options given to Open, OpenWithStore or DialTemporal.
type options struct {
	clientOptions []func(*client.Options)
	name          string
	readOnly      bool
}

// binary is the name of the running synchronizer's command, for hints
// such as "run `NAME dev start`" (WithName); default "tsync".
func (o options) binary() string {
	if o.name == "" {
		return "tsync"
	}
	return o.name
}

// WithReadOnlyDatabase opens every PostgreSQL session read-only
// (default_transaction_read_only), so that nothing the process does can
// write a row: for readers such as the object view (`tsync ui`). Only
// OpenStore without migration can use it.
func WithReadOnlyDatabase() Option {
	return func(o *options) { o.readOnly = true }
}

// WithName names the synchronizer's command (cli.Definition.Name), so that
// the hints of errors and logs say what to run: "run `mysync dev start`".
// Without it they say tsync.
func WithName(name string) Option {
	return func(o *options) { o.name = name }
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClientOptions has f change the Temporal client's options before each
// dial, after tsync has set them from the config (host and port,
// namespace, TLS, API key, logger, metrics): the hook for what the config
// does not cover, such as a data converter or a codec, interceptors,
// context propagators, or credentials of another kind. f may override what
// tsync set. Several are applied in the order given. A data converter must
// be given to every process of a synchronizer alike (worker, starter,
// dispatcher), since each reads what the others write.
func WithClientOptions(f func(*client.Options)) Option {
	return func(o *options) {
		if f != nil {
			o.clientOptions = append(o.clientOptions, f)
		}
	}
}

// attributeWait bounds registration's wait for the namespace to serve the
// search attributes.
type attributeWait struct {
	// max bounds the wait for the frontend to serve them.
	max time.Duration
	// settle is how long registration waits on once the frontend serves
	// them, for the other services' caches.
	settle time.Duration
}

// defaultAttributeWait is registration's wait: a minute at most for the
// frontend, then twice the Temporal server's default namespace cache
// refresh interval (2 s in v1.29), as the server's own tests wait after a
// namespace change.
func defaultAttributeWait() attributeWait {
	return attributeWait{max: time.Minute, settle: 4 * time.Second}
}

// probeInterval is the pause between two probes of the search attributes.
const probeInterval = 500 * time.Millisecond

// RegisterSearchAttributes makes sure namespace has the search attributes
// of tsync's workflows (workflows.SearchAttributes), adding those missing,
// and waits (up to a minute) until the namespace serves them: a workflow
// start that carries them fails until then.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	return registerSearchAttributes(ctx, c, namespace, nil, defaultAttributeWait())
}

// registerSearchAttributes is RegisterSearchAttributes logging to log (nil:
// nowhere) and waiting as w says.
func registerSearchAttributes(ctx context.Context, c client.Client, namespace string, log *slog.Logger, w attributeWait) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	want := workflows.SearchAttributes()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, t := range want {
		have, ok := resp.GetCustomAttributes()[name]
		if !ok {
			missing[name] = t
		} else if have != t {
			return fmt.Errorf("search attribute %s is registered as %s, want %s", name, have, t)
		}
	}
	if len(missing) > 0 {
		if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: namespace, SearchAttributes: missing,
		}); err != nil {
			return fmt.Errorf("add search attributes to namespace %s: %w", namespace, err)
		}
		log.Info("registered search attributes", "namespace", namespace, "added", slices.Sorted(maps.Keys(missing)))
	}
	// Even when none was missing: another process (the worker, when this
	// is the starter) may have registered them a moment ago.
	return awaitSearchAttributes(ctx, c, namespace, log, len(missing) > 0, w)
}

// awaitSearchAttributes waits until namespace serves the search attributes
// (added: this process has just registered them), as w says.
//
// A real server reads a namespace's search attributes from a cache that
// each of its services (frontend, history, matching) refreshes on its own
// every system.namespaceCacheRefreshInterval (2 s by default), so it
// refuses them for up to that long after AddSearchAttributes (whose
// ListSearchAttributes, read from the database, shows them at once):
// starts fail with "Namespace X has no mapping defined for search attribute
// TsyncObjectID". The probe is a visibility count over the attributes,
// which the frontend checks against the same cache as a start. No call
// tells when the history and matching services' caches serve them, which
// a workflow's child starts and upserts need (a workflow task then fails
// with BadSearchAttributes, and is retried by the server): once the
// frontend serves them, registration waits w.settle more, for them to
// refresh too. A server configured to refresh less often than every 2 s
// may still fail such a workflow task, once.
//
// A probe refused for another reason (a permission, a visibility store
// without counts) says nothing about the attributes: it is logged and
// registration goes on, as it did before probing.
func awaitSearchAttributes(ctx context.Context, c client.Client, namespace string, log *slog.Logger, added bool, w attributeWait) error {
	query := probeQuery(workflows.SearchAttributes())
	probe := func() error {
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		return err
	}
	cannotCheck := func(err error) error {
		log.Warn("cannot check that the namespace serves the Tsync* search attributes; going on", "namespace", namespace, "error", err)
		return nil
	}
	start := time.Now()
	err := probe()
	if err == nil && !added {
		return nil // served for long, as far as one can tell
	}
	if err != nil && !starter.SearchAttributesNotServed(err) {
		return cannotCheck(err)
	}
	log.Info(fmt.Sprintf("waiting for namespace %s to serve the Tsync* search attributes (a new registration takes a few seconds on a real server)", namespace),
		"namespace", namespace, "attributes", slices.Sorted(maps.Keys(workflows.SearchAttributes())), "max_wait", w.max+w.settle)
	deadline := time.NewTimer(w.max)
	defer deadline.Stop()
	for err != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("namespace %s still does not serve the Tsync* search attributes %s after registering them: %w", namespace, w.max, err)
		case <-time.After(probeInterval):
		}
		if err = probe(); err != nil && !starter.SearchAttributesNotServed(err) {
			return cannotCheck(err)
		}
	}
	frontend := time.Since(start).Round(time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(w.settle):
	}
	took := time.Since(start).Round(time.Millisecond)
	log.Info(fmt.Sprintf("namespace %s serves the Tsync* search attributes after %s", namespace, took),
		"namespace", namespace, "waited", took, "frontend_after", frontend, "settle", w.settle)
	return nil
}

// probeQuery is a visibility query naming every attribute of attrs, with a
// value of its type.
func probeQuery(attrs map[string]enumspb.IndexedValueType) string {
	var terms []string
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		var v string
		switch attrs[name] {
		case enumspb.INDEXED_VALUE_TYPE_INT, enumspb.INDEXED_VALUE_TYPE_DOUBLE:
			v = "0"
		case enumspb.INDEXED_VALUE_TYPE_BOOL:
			v = "false"
		case enumspb.INDEXED_VALUE_TYPE_DATETIME:
			v = "'2000-01-01T00:00:00Z'"
		default: // keyword, text, keyword list
			v = "'tsync-probe'"
		}
		terms = append(terms, name+" = "+v)
	}
	return strings.Join(terms, " AND ")
}

// DialTemporal connects to cfg's Temporal server, failing with a clear
// message when it cannot be reached or refuses the connection.
func DialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (client.Client, error) {
	return dialTemporal(ctx, cfg, log, nil, collect(opts))
}

// Delays of waitForTemporal between two dials: doubling, capped (a dial
// of a server that is down fails at once or after dialTimeout).
const (
	dialRetryInitial = time.Second
	dialRetryMax     = 5 * time.Second
)

// waitForTemporal is dialTemporal tried again, with a warning naming the
// server and the error, until it succeeds or ctx is done.
//
// A refused connection is not retried: a TLS handshake the server failed
// (no client certificate, a CA or name that does not match) or credentials
// it refused fail the same way until the config changes, which takes a
// restart. Waiting would hide a mistake behind warnings that the server is
// unreachable, so the error is returned at once (and the process exits
// with it, or its supervisor restarts it with a new config). Only a server
// that cannot be reached (down, starting, a network outage) is waited for.
func waitForTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, mh client.MetricsHandler, o options) (client.Client, error) {
	wait := dialRetryInitial
	for attempt := 1; ; attempt++ {
		c, err := dialTemporal(ctx, cfg, log, mh, o)
		if err == nil {
			if attempt > 1 {
				log.Info("temporal is reachable", "host_port", cfg.Temporal.HostPort, "attempts", attempt)
			}
			return c, nil
		}
		var refused *refusedError
		if ctx.Err() != nil || errors.As(err, &refused) {
			return nil, err
		}
		log.Warn("waiting for temporal: unreachable, trying again (run `"+o.binary()+" dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT)",
			"host_port", cfg.Temporal.HostPort, "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, dialRetryMax)
	}
}

// dialTimeout bounds one dial of the Temporal server.
const dialTimeout = 5 * time.Second

func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, mh client.MetricsHandler, o options) (client.Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	copts, err := clientOptions(cfg, log, mh, o)
	if err != nil {
		return nil, &refusedError{fmt.Errorf("temporal at %s: %w", cfg.Temporal.HostPort, err)}
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.DialContext(dctx, copts)
	if err != nil {
		return nil, dialError(ctx, cfg, copts, o, err)
	}
	return c, nil
}

// clientOptions are the Temporal client's options from cfg (its files read
// now), changed by the hooks of o.
func clientOptions(cfg config.Config, log *slog.Logger, mh client.MetricsHandler, o options) (client.Options, error) {
	// The SDK's per-attempt error line of a step that failed or deferred
	// is at debug: the activity logs the outcome itself.
	copts := client.Options{
		HostPort:       cfg.Temporal.HostPort,
		Namespace:      cfg.Temporal.Namespace,
		Logger:         logging.NewSDKLogger(log.With("component", "temporal"), activities.ErrTypeStep, activities.ErrTypeDeferred, watchers.ErrTypeWatcher),
		MetricsHandler: mh,
	}
	tlsConfig, err := cfg.Temporal.ClientTLS()
	if err != nil {
		return client.Options{}, err
	}
	copts.ConnectionOptions.TLS = tlsConfig
	if !cfg.Temporal.Compresses() {
		copts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	key, err := cfg.Temporal.APIKeyValue()
	if err != nil {
		return client.Options{}, err
	}
	if key != "" {
		copts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	for _, f := range o.clientOptions {
		f(&copts)
	}
	return copts, nil
}

// refusedError is a dial the server (or the config) refused, which trying
// again cannot change: see waitForTemporal.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// dialError explains the failed dial of copts (from cfg): a TLS handshake
// or credentials the server refused, as a refusedError saying which key to
// set, or else a server that cannot be reached.
//
// gRPC reports a failed handshake as an Unavailable error whose text holds
// crypto/tls's, hence the matching of text. With TLS 1.3 a client
// certificate that is missing, or signed by a CA the server does not list
// (the client then sends none), shows only after the handshake, as the
// server's "certificate required" alert, which gRPC may miss (its first
// write fails first: "broken pipe"): hence tlsVerdict, which asks again.
func dialError(ctx context.Context, cfg config.Config, copts client.Options, o options, err error) error {
	hp := cfg.Temporal.HostPort
	tc := copts.ConnectionOptions.TLS
	if tc != nil {
		// The verdict is the cause, when it is TLS's: the same text
		// whatever gRPC saw first.
		if verdict := tlsVerdict(ctx, hp, tc); verdict != nil &&
			(strings.Contains(verdict.Error(), "tls: ") || strings.Contains(verdict.Error(), "x509: ")) {
			err = verdict
		}
	}
	msg := err.Error()
	refused := func(format string, args ...any) error {
		return &refusedError{fmt.Errorf("temporal at %s: %s: %w", hp, fmt.Sprintf(format, args...), err)}
	}
	serverName := cfg.Temporal.TLSServerName
	if tc != nil && tc.ServerName != "" {
		serverName = tc.ServerName
	}
	if serverName == "" {
		serverName, _, _ = net.SplitHostPort(hp)
	}
	switch {
	case strings.Contains(msg, "tls: certificate required"), strings.Contains(msg, "tls: handshake failure"),
		strings.Contains(msg, "tls: bad certificate"), strings.Contains(msg, "tls: unknown certificate authority"),
		strings.Contains(msg, "tls: certificate revoked"), strings.Contains(msg, "tls: unsupported certificate"),
		strings.Contains(msg, "tls: expired certificate"):
		if tc == nil || (len(tc.Certificates) == 0 && tc.GetClientCertificate == nil) {
			return refused("TLS handshake failed: the server requires a client certificate (set temporal.tls_cert_file and temporal.tls_key_file)")
		}
		return refused("TLS handshake failed: the server refused the client certificate of temporal.tls_cert_file (%s): is it signed by a CA the server trusts, and still valid?", cfg.Temporal.TLSCertFile)
	case strings.Contains(msg, "x509: certificate signed by unknown authority"):
		if cfg.Temporal.TLSCAFile != "" {
			return refused("TLS handshake failed: the server's certificate is not signed by a CA of temporal.tls_ca_file (%s)", cfg.Temporal.TLSCAFile)
		}
		return refused("TLS handshake failed: the server's certificate is not signed by a CA this system trusts (set temporal.tls_ca_file to the CA that signed it)")
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: certificate is not valid for any names"):
		return refused("TLS handshake failed: the server's certificate is not valid for %q (set temporal.tls_server_name to a name it holds)", serverName)
	case strings.Contains(msg, "x509: "):
		return refused("TLS handshake failed: the server's certificate is refused")
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return refused("TLS handshake failed: the server does not speak TLS (TLS is on because temporal.tls, a temporal.tls_* key or an API key is set)")
	}
	if code := status.Code(err); code == codes.Unauthenticated || code == codes.PermissionDenied {
		if copts.Credentials != nil {
			return refused("the server refused the credentials (the API key of temporal.api_key_file or TSYNC_TEMPORAL_API_KEY)")
		}
		return refused("the server requires credentials (an API key: set temporal.api_key_file or TSYNC_TEMPORAL_API_KEY)")
	}
	if tc == nil && strings.Contains(msg, "error reading server preface") && speaksTLS(ctx, hp) {
		// A server requiring TLS closes a connection in clear at once; so
		// does a proxy in front of a server that is not up yet, which is
		// waited for: hence the check that this one speaks TLS.
		return refused("the server requires TLS (set temporal.tls_ca_file to the CA of its certificate, or temporal.tls when a CA of this system signed it; " +
			"for mTLS also temporal.tls_cert_file and temporal.tls_key_file)")
	}
	return fmt.Errorf("temporal at %s is unreachable (run `%s dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT): %w", hp, o.binary(), err)
}

// speaksTLS reports whether the server at hostPort answers a TLS handshake
// as a TLS server: it completes it, or refuses it with a TLS alert.
func speaksTLS(ctx context.Context, hostPort string) bool {
	// Nothing is sent over this connection: whom it reaches does not
	// matter, only that it speaks TLS.
	err := tlsVerdict(ctx, hostPort, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	return err == nil || strings.Contains(err.Error(), "remote error: tls: ")
}

// tlsVerdict makes a TLS connection to hostPort with tc, as gRPC does, and
// returns the server's verdict on it: the handshake's error, or the alert
// the server sends after it (TLS 1.3) when it refuses the client's
// certificate, or nil when the server waits for a request, as it does
// once it accepts the connection.
func tlsVerdict(ctx context.Context, hostPort string, tc *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	tc = tc.Clone()
	tc.NextProtos = []string{"h2"} // gRPC servers require it
	conn, err := (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return err
}
