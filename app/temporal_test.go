package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv/certs"
	"github.com/tsync/tsync/internal/workflows"
)

// testConfig is a valid config for the server at hostPort.
func testConfig(hostPort string) config.Config {
	cfg := config.Default()
	cfg.ObserverName = "t"
	cfg.Temporal.HostPort = hostPort
	return cfg
}

// The client dials with the TLS of the config's files: the right client
// certificate connects; every other mistake is one error saying which key
// to set, returned at once rather than waited out as an outage.
func TestDialTLS(t *testing.T) {
	pki, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	srv := startFake(t, mTLSServer(t, pki))
	plain := startFake(t, nil)

	mtls := func(hostPort string) config.Config {
		cfg := testConfig(hostPort)
		cfg.Temporal.TLSCAFile, cfg.Temporal.TLSCertFile, cfg.Temporal.TLSKeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile
		return cfg
	}
	ok := mtls(srv.addr)
	c, err := DialTemporal(context.Background(), ok, nil)
	require.NoError(t, err)
	c.Close()

	tests := []struct {
		name   string
		cfg    func() config.Config
		prefix string // the error, up to crypto/tls's text
		cause  string // crypto/tls's text
	}{
		{"no client certificate", func() config.Config {
			c := mtls(srv.addr)
			c.Temporal.TLSCertFile, c.Temporal.TLSKeyFile = "", ""
			return c
		},
			"temporal at " + srv.addr + ": TLS handshake failed: the server requires a client certificate (set temporal.tls_cert_file and temporal.tls_key_file): ",
			"remote error: tls: certificate required"},
		{"client certificate of another CA", func() config.Config {
			c := mtls(srv.addr)
			c.Temporal.TLSCertFile, c.Temporal.TLSKeyFile = pki.ForeignCertFile, pki.ForeignKeyFile
			return c
		},
			"temporal at " + srv.addr + ": TLS handshake failed: the server refused the client certificate of temporal.tls_cert_file (" + pki.ForeignCertFile + "): is it signed by a CA the server trusts, and still valid?: ",
			"remote error: tls: certificate required"},
		{"wrong CA", func() config.Config { c := mtls(srv.addr); c.Temporal.TLSCAFile = pki.OtherCAFile; return c },
			"temporal at " + srv.addr + ": TLS handshake failed: the server's certificate is not signed by a CA of temporal.tls_ca_file (" + pki.OtherCAFile + "): ",
			"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"system roots", func() config.Config { c := testConfig(srv.addr); c.Temporal.TLS = true; return c },
			"temporal at " + srv.addr + ": TLS handshake failed: the server's certificate is not signed by a CA this system trusts (set temporal.tls_ca_file to the CA that signed it): ",
			"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"wrong server name", func() config.Config { c := mtls(srv.addr); c.Temporal.TLSServerName = "temporal.example.com"; return c },
			"temporal at " + srv.addr + `: TLS handshake failed: the server's certificate is not valid for "temporal.example.com" (set temporal.tls_server_name to a name it holds): `,
			"tls: failed to verify certificate: x509: certificate is valid for localhost, not temporal.example.com"},
		{"TLS to a server in clear", func() config.Config { return mtls(plain.addr) },
			"temporal at " + plain.addr + ": TLS handshake failed: the server does not speak TLS (TLS is on because temporal.tls, a temporal.tls_* key or an API key is set): ",
			"tls: first record does not look like a TLS handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := waitForTemporal(ctx, tt.cfg(), log, nil, options{})
			require.Nil(t, c)
			require.Error(t, err)
			require.EqualError(t, err, tt.prefix+tt.cause)
			require.NotContains(t, err.Error(), "\n")
			var refused *refusedError
			require.ErrorAs(t, err, &refused)
			require.NoError(t, ctx.Err(), "returned at once, not when the wait ran out")
			require.NotContains(t, logs.String(), "waiting for temporal", "a refusal is not an outage")
		})
	}

	// In clear to a server requiring TLS: the server closes the connection
	// (as a proxy before a server not up yet does, but this one speaks TLS).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = waitForTemporal(ctx, testConfig(srv.addr), nil, nil, options{})
	require.ErrorContains(t, err, "temporal at "+srv.addr+": the server requires TLS (set temporal.tls_ca_file to the CA of its certificate, "+
		"or temporal.tls when a CA of this system signed it; for mTLS also temporal.tls_cert_file and temporal.tls_key_file): ")
	var refused *refusedError
	require.ErrorAs(t, err, &refused)
	require.NoError(t, ctx.Err(), "returned at once")

	// A server that closes every connection at once and speaks no TLS (a
	// proxy whose server is not up yet) is waited for.
	closer := closingListener(t)
	_, err = DialTemporal(context.Background(), testConfig(closer), nil)
	require.ErrorContains(t, err, "temporal at "+closer+" is unreachable (run `tsync dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT): ")
	require.False(t, errors.As(err, &refused))

	// A file gone since the config was validated.
	gone := mtls(srv.addr)
	gone.Temporal.TLSCAFile = filepath.Join(t.TempDir(), "ca.pem")
	_, err = DialTemporal(context.Background(), gone, nil)
	require.EqualError(t, err, "temporal at "+srv.addr+": config: temporal.tls_ca_file: cannot read "+gone.Temporal.TLSCAFile+": no such file or directory")
	require.ErrorAs(t, err, &refused)
}

// An API key is sent as a bearer token with every call, over TLS, and never
// logged; one the server refuses is one error, returned at once.
func TestDialAPIKey(t *testing.T) {
	const key = "tsync-test-key.0123456789"
	pki, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	serverTLS := mTLSServer(t, pki)
	serverTLS.ClientAuth = 0 // no client certificate: the key authenticates
	srv := startFake(t, serverTLS)
	srv.wantKey = key

	keyFile := filepath.Join(t.TempDir(), "api-key")
	require.NoError(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))
	cfg := testConfig(srv.addr)
	cfg.Temporal.TLSCAFile, cfg.Temporal.APIKeyFile = pki.CAFile, keyFile
	require.NoError(t, cfg.Validate())

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := &App{Config: cfg, Log: log}
	c, err := waitForTemporal(context.Background(), cfg, log, nil, options{})
	require.NoError(t, err)
	a.Client = c
	defer a.Close()
	require.NoError(t, registerSearchAttributes(context.Background(), c, "default", log, attributeWait{max: time.Minute, settle: 10 * time.Millisecond}))
	got := srv.received()
	require.GreaterOrEqual(t, len(got), 3, "GetSystemInfo, ListSearchAttributes, AddSearchAttributes, CountWorkflowExecutions")
	for _, md := range got {
		require.Equal(t, []string{"Bearer " + key}, md.Get("authorization"))
	}
	log.Info("config", "config", cfg)
	require.NotContains(t, logs.String(), key)

	// From the environment, the same.
	env, err := config.Parse([]byte("observer_name: t\n"), []string{
		"TSYNC_TEMPORAL_HOST_PORT=" + srv.addr, "TSYNC_TEMPORAL_TLS_CA_FILE=" + pki.CAFile, "TSYNC_TEMPORAL_API_KEY=" + key,
	})
	require.NoError(t, err)
	c, err = DialTemporal(context.Background(), env, nil)
	require.NoError(t, err)
	c.Close()

	// A wrong key.
	srv.mu.Lock()
	srv.wantKey = "another-key"
	srv.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = waitForTemporal(ctx, env, nil, nil, options{})
	require.ErrorContains(t, err, "temporal at "+srv.addr+": the server refused the credentials (the API key of temporal.api_key_file or TSYNC_TEMPORAL_API_KEY): ")
	require.ErrorContains(t, err, "Request unauthorized")
	require.NotContains(t, err.Error(), key)
	require.NoError(t, ctx.Err(), "returned at once")

	// No key where one is required.
	_, err = DialTemporal(context.Background(), func() config.Config { c := env; c.Temporal.APIKey = ""; c.Temporal.TLS = true; return c }(), nil)
	require.ErrorContains(t, err, "temporal at "+srv.addr+": the server requires credentials (an API key: set temporal.api_key_file or TSYNC_TEMPORAL_API_KEY): ")
}

// WithClientOptions changes the options tsync set from the config, before
// every dial.
func TestWithClientOptions(t *testing.T) {
	pki, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	srv := startFake(t, mTLSServer(t, pki))
	cfg := testConfig(srv.addr)
	cfg.Temporal.TLSCAFile, cfg.Temporal.TLSCertFile, cfg.Temporal.TLSKeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile

	var seen []client.Options
	hook := func(o *client.Options) {
		seen = append(seen, *o)
		o.HeadersProvider = headers{"x-tsync-test": "hooked"}
	}
	second := func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithUserAgent("tsync-test"))
	}
	c, err := DialTemporal(context.Background(), cfg, nil, WithClientOptions(hook), WithClientOptions(nil), WithClientOptions(second))
	require.NoError(t, err)
	c.Close()

	require.Len(t, seen, 1)
	require.Equal(t, srv.addr, seen[0].HostPort)
	require.Equal(t, "default", seen[0].Namespace)
	require.NotNil(t, seen[0].ConnectionOptions.TLS, "the hook sees the options set from the config")
	require.Len(t, seen[0].ConnectionOptions.TLS.Certificates, 1)
	md := srv.received()[0]
	require.Equal(t, []string{"hooked"}, md.Get("x-tsync-test"))
	require.Contains(t, md.Get("user-agent")[0], "tsync-test")
}

type headers map[string]string

func (h headers) GetHeaders(context.Context) (map[string]string, error) { return h, nil }

// Registration adds the missing search attributes and waits until the
// namespace serves them, as a real server does only after its cache is
// refreshed, saying so in two lines; it gives up after the bounded wait.
func TestRegisterSearchAttributesWaits(t *testing.T) {
	srv := startFake(t, nil)
	srv.unmappedCounts = 3
	c, err := DialTemporal(context.Background(), testConfig(srv.addr), nil)
	require.NoError(t, err)
	defer c.Close()

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	require.NoError(t, registerSearchAttributes(context.Background(), c, "default", log, attributeWait{max: time.Minute, settle: 10 * time.Millisecond}))
	require.Equal(t, workflows.SearchAttributes(), srv.attrs)
	require.Len(t, srv.counts, 4, "three probes refused, the fourth served")
	require.Equal(t, "TsyncModel = 'tsync-probe' AND TsyncObjectID = 0 AND TsyncOperation = 'tsync-probe' AND "+
		"TsyncState = 'tsync-probe' AND TsyncSynchronizer = 'tsync-probe'", srv.counts[0])
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 3, logs.String())
	require.Contains(t, lines[0], `msg="registered search attributes" namespace=default added="[TsyncModel TsyncObjectID TsyncOperation TsyncState TsyncSynchronizer]"`)
	require.Contains(t, lines[1], `msg="waiting for namespace default to serve the Tsync* search attributes (a new registration takes a few seconds on a real server)"`)
	require.Contains(t, lines[2], `msg="namespace default serves the Tsync* search attributes after `)

	require.Contains(t, lines[2], "settle=10ms")

	// Registered already and served: one probe, nothing logged.
	logs.Reset()
	require.NoError(t, registerSearchAttributes(context.Background(), c, "default", log, attributeWait{max: time.Minute, settle: 10 * time.Millisecond}))
	require.Len(t, srv.counts, 5)
	require.Empty(t, logs.String())

	// Never served: an error after the wait.
	srv.mu.Lock()
	srv.unmappedCounts = 1 << 30
	srv.mu.Unlock()
	err = registerSearchAttributes(context.Background(), c, "default", log, attributeWait{max: 2 * time.Second})
	require.ErrorContains(t, err, "namespace default still does not serve the Tsync* search attributes 2s after registering them: ")
	require.ErrorContains(t, err, "column name 'TsyncModel' is not a valid search attribute")
}

// Attributes just added are waited for the settle time even when the
// frontend serves them at once: the other services' caches may not yet.
func TestRegisterSearchAttributesSettles(t *testing.T) {
	srv := startFake(t, nil)
	c, err := DialTemporal(context.Background(), testConfig(srv.addr), nil)
	require.NoError(t, err)
	defer c.Close()
	var logs bytes.Buffer
	began := time.Now()
	require.NoError(t, registerSearchAttributes(context.Background(), c, "default", slog.New(slog.NewTextHandler(&logs, nil)),
		attributeWait{max: time.Minute, settle: 300 * time.Millisecond}))
	require.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond)
	require.Len(t, srv.counts, 1)
	require.Contains(t, logs.String(), `msg="waiting for namespace default to serve the Tsync* search attributes`)
	require.Contains(t, logs.String(), "frontend_after=")
	require.Contains(t, logs.String(), "settle=300ms")
}

// An attribute registered with another type is an error, added nothing.
func TestRegisterSearchAttributesWrongType(t *testing.T) {
	srv := startFake(t, nil)
	srv.attrs["TsyncObjectID"] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	c, err := DialTemporal(context.Background(), testConfig(srv.addr), nil)
	require.NoError(t, err)
	defer c.Close()
	err = RegisterSearchAttributes(context.Background(), c, "default")
	require.EqualError(t, err, "search attribute TsyncObjectID is registered as Keyword, want Int")
	require.Len(t, srv.attrs, 1)
	require.Empty(t, srv.counts)
}

// closingListener accepts connections and closes them at once, as a proxy
// whose server is not up does; it returns its address.
func closingListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// The client compresses its requests as temporal.grpc_compression says:
// by default (auto) not for a server on this machine, with the SDK's gzip
// otherwise.
func TestClientCompression(t *testing.T) {
	for _, tc := range []struct {
		mode, hostPort string
		gzip           bool
	}{
		{"auto", "127.0.0.1:7233", false},
		{"auto", "temporal.example.com:7233", true},
		{"gzip", "127.0.0.1:7233", true},
		{"none", "temporal.example.com:7233", false},
	} {
		cfg := testConfig(tc.hostPort)
		cfg.Temporal.GRPCCompression = tc.mode
		copts, err := clientOptions(cfg, slog.New(slog.DiscardHandler), nil, options{})
		require.NoError(t, err)
		if tc.gzip {
			require.Nil(t, copts.ConnectionOptions.GrpcCompression, "%s %s: the SDK's default, gzip", tc.mode, tc.hostPort)
		} else {
			require.IsType(t, &client.GrpcCompressionNone{}, copts.ConnectionOptions.GrpcCompression, "%s %s", tc.mode, tc.hostPort)
		}
	}
}
