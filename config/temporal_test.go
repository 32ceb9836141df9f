package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const secret = "s3cr3t-API-key"

// TestTemporalSecurityErrors checks the exact one-line error of each
// mistake in the Temporal client's TLS and API key settings; none shows the
// key.
func TestTemporalSecurityErrors(t *testing.T) {
	pki := writePKI(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	empty := file("empty", " \n\t\n")
	twoLines := file("two-lines", secret+"\n"+secret+"\n")
	notPEM := file("not-pem", "hello\n")
	unreadable := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{"missing CA", "temporal: {tls_ca_file: " + unreadable + "}", nil,
			"config: temporal.tls_ca_file: cannot read " + unreadable + ": no such file or directory (in config.yaml)"},
		{"CA not PEM", "", []string{"TSYNC_TEMPORAL_TLS_CA_FILE=" + notPEM},
			"config: temporal.tls_ca_file: no PEM certificate in " + notPEM + " (from TSYNC_TEMPORAL_TLS_CA_FILE)"},
		{"CA is a key", "temporal: {tls_ca_file: " + pki.ClientKeyFile + "}", nil,
			"config: temporal.tls_ca_file: no PEM certificate in " + pki.ClientKeyFile + " (in config.yaml)"},
		{"certificate without key", "temporal: {tls_cert_file: " + pki.ClientCertFile + "}", nil,
			"config: temporal.tls_cert_file: set temporal.tls_key_file too: a client certificate needs its private key (in config.yaml)"},
		{"key without certificate", "", []string{"TSYNC_TEMPORAL_TLS_KEY_FILE=" + pki.ClientKeyFile},
			"config: temporal.tls_key_file: set temporal.tls_cert_file too: a private key needs its client certificate (from TSYNC_TEMPORAL_TLS_KEY_FILE)"},
		{"certificate unreadable", "temporal: {tls_cert_file: " + unreadable + ", tls_key_file: " + pki.ClientKeyFile + "}", nil,
			"config: temporal.tls_cert_file: cannot read " + unreadable + ": no such file or directory (in config.yaml)"},
		{"certificate is a key", "temporal: {tls_cert_file: " + pki.ClientKeyFile + ", tls_key_file: " + pki.ClientKeyFile + "}", nil,
			"config: temporal.tls_cert_file: no PEM certificate in " + pki.ClientKeyFile + " (in config.yaml)"},
		{"key is a certificate", "temporal: {tls_cert_file: " + pki.ClientCertFile + ", tls_key_file: " + pki.ClientCertFile + "}", nil,
			"config: temporal.tls_key_file: no PEM private key in " + pki.ClientCertFile + " (in config.yaml)"},
		{"key of another certificate", "temporal: {tls_cert_file: " + pki.ClientCertFile + ", tls_key_file: " + pki.ServerKeyFile + "}", nil,
			"config: temporal.tls_key_file: " + pki.ServerKeyFile + " and the certificate in " + pki.ClientCertFile +
				" (temporal.tls_cert_file) are no pair: private key does not match public key (in config.yaml)"},
		{"server name with port", "temporal: {tls_server_name: 'temporal:7233'}", nil,
			`config: temporal.tls_server_name: invalid server name "temporal:7233", want a host name (no port) (in config.yaml)`},
		{"API key in the config file", "temporal: {api_key: " + secret + "}", nil,
			"config: temporal.api_key: the API key is a secret, not read from a config file: set TSYNC_TEMPORAL_API_KEY or temporal.api_key_file (in config.yaml)"},
		{"API key with a space", "", []string{"TSYNC_TEMPORAL_API_KEY=" + secret + " x"},
			"config: temporal.api_key: the API key must be printable ASCII without spaces (from TSYNC_TEMPORAL_API_KEY)"},
		{"API key file unreadable", "temporal: {api_key_file: " + unreadable + "}", nil,
			"config: temporal.api_key_file: cannot read " + unreadable + ": no such file or directory (in config.yaml)"},
		{"API key file empty", "temporal: {api_key_file: " + empty + "}", nil,
			"config: temporal.api_key_file: " + empty + " is empty, want the API key (in config.yaml)"},
		{"API key file of two lines", "", []string{"TSYNC_TEMPORAL_API_KEY_FILE=" + twoLines},
			"config: temporal.api_key_file: the API key in " + twoLines + " must be one line of printable ASCII without spaces (from TSYNC_TEMPORAL_API_KEY_FILE)"},
		{"API key and API key file", "temporal: {api_key_file: " + file("key", secret) + "}", []string{"TSYNC_TEMPORAL_API_KEY=" + secret},
			"config: temporal.api_key_file: set either temporal.api_key_file or TSYNC_TEMPORAL_API_KEY, not both (in config.yaml)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgFile := writeFile(t, "config.yaml", "observer_name: demo\n"+tt.yaml+"\n")
			c, err := Load(cfgFile, tt.env)
			require.EqualError(t, err, tt.want)
			require.NotContains(t, err.Error(), secret)
			require.Equal(t, Config{}, c)
		})
	}
}

// The TLS keys load into a tls.Config that trusts the CA, presents the
// client certificate and checks the server name; TLS is on whenever a key
// says so.
func TestClientTLS(t *testing.T) {
	pki := writePKI(t)

	off, err := named("demo").Temporal.ClientTLS()
	require.NoError(t, err)
	require.Nil(t, off, "no TLS key set: plain text")

	for name, set := range map[string]func(*TemporalConfig){
		"tls":             func(t *TemporalConfig) { t.TLS = true },
		"tls_server_name": func(t *TemporalConfig) { t.TLSServerName = "temporal.example.com" },
		"api_key":         func(t *TemporalConfig) { t.APIKey = secret },
	} {
		t.Run(name, func(t *testing.T) {
			c := named("demo")
			set(&c.Temporal)
			require.NoError(t, c.Validate())
			require.True(t, c.Temporal.TLSEnabled())
			tc, err := c.Temporal.ClientTLS()
			require.NoError(t, err)
			require.NotNil(t, tc)
			require.Nil(t, tc.RootCAs, "the system's roots")
			require.Empty(t, tc.Certificates)
			require.Equal(t, c.Temporal.TLSServerName, tc.ServerName)
		})
	}

	t.Run("mTLS", func(t *testing.T) {
		c := named("demo")
		c.Temporal.TLSCAFile, c.Temporal.TLSCertFile, c.Temporal.TLSKeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile
		c.Temporal.TLSServerName = "localhost"
		require.NoError(t, c.Validate())
		tc, err := c.Temporal.ClientTLS()
		require.NoError(t, err)
		require.Equal(t, "localhost", tc.ServerName)

		// The roots are the CA's: the server certificate verifies, and it
		// would not with the other CA.
		server := readCert(t, pki.ServerCertFile)
		_, err = server.Verify(x509.VerifyOptions{Roots: tc.RootCAs, DNSName: "localhost"})
		require.NoError(t, err)
		_, err = server.Verify(x509.VerifyOptions{Roots: tc.RootCAs, DNSName: "temporal.example.com"})
		require.Error(t, err)
		foreign := readCert(t, pki.ForeignCertFile)
		_, err = foreign.Verify(x509.VerifyOptions{Roots: tc.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		require.Error(t, err)

		require.Len(t, tc.Certificates, 1)
		leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
		require.NoError(t, err)
		require.Equal(t, "tsync-client", leaf.Subject.CommonName)
	})
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	b, _ := pem.Decode(data)
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func TestAPIKeyValue(t *testing.T) {
	none, err := named("demo").Temporal.APIKeyValue()
	require.NoError(t, err)
	require.Empty(t, none)

	c, err := Parse([]byte("observer_name: demo\n"), []string{"TSYNC_TEMPORAL_API_KEY=" + secret})
	require.NoError(t, err)
	k, err := c.Temporal.APIKeyValue()
	require.NoError(t, err)
	require.Equal(t, secret, k)

	keyFile := filepath.Join(t.TempDir(), "api-key")
	require.NoError(t, os.WriteFile(keyFile, []byte("\n  "+secret+"\r\n"), 0o600))
	c, err = Parse([]byte("observer_name: demo\ntemporal:\n  api_key_file: "+keyFile+"\n"), nil)
	require.NoError(t, err)
	require.Equal(t, keyFile, c.Temporal.APIKeyFile)
	require.Empty(t, c.Temporal.APIKey, "the file is read when dialing, not kept in the Config")
	k, err = c.Temporal.APIKeyValue()
	require.NoError(t, err)
	require.Equal(t, secret, k, "surrounding white space is not part of the key")

	// The file is read again: a key rotated in place is picked up by the
	// next dial; one gone is an error.
	require.NoError(t, os.Remove(keyFile))
	_, err = c.Temporal.APIKeyValue()
	require.EqualError(t, err, "config: temporal.api_key_file: cannot read "+keyFile+": no such file or directory")
}

// The API key never shows when the Config is printed or logged.
func TestRedactedAPIKey(t *testing.T) {
	c, err := Parse([]byte("observer_name: demo\n"), []string{"TSYNC_TEMPORAL_API_KEY=" + secret})
	require.NoError(t, err)
	require.Equal(t, "xxxxx", c.Redacted().Temporal.APIKey)
	require.Equal(t, secret, c.Temporal.APIKey, "c is unchanged")

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "config", c)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "config", c)
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), buf.String()} {
		require.NotContains(t, s, secret)
		require.Contains(t, s, "xxxxx")
	}
	require.Contains(t, buf.String(), "config.temporal.api_key=xxxxx")

	// Without a key there is nothing to hide.
	require.Empty(t, named("demo").Redacted().Temporal.APIKey)
}

// grpc_compression: auto compresses only for a server that is not on this
// machine; gzip and none are taken as they are, whatever the host.
func TestCompresses(t *testing.T) {
	for _, tc := range []struct {
		mode, hostPort string
		want           bool
	}{
		{"auto", "127.0.0.1:7233", false},
		{"auto", "127.8.9.10:7233", false},
		{"auto", "localhost:7233", false},
		{"auto", "LocalHost:7233", false},
		{"auto", "[::1]:7233", false},
		{"auto", "10.0.0.5:7233", true},
		{"auto", "[2001:db8::1]:7233", true},
		{"auto", "temporal.example.com:7233", true},
		{"auto", "ns.tmprl.cloud:7233", true},
		{"gzip", "127.0.0.1:7233", true},
		{"none", "ns.tmprl.cloud:7233", false},
	} {
		c := TemporalConfig{HostPort: tc.hostPort, GRPCCompression: tc.mode}
		require.Equal(t, tc.want, c.Compresses(), "%s %s", tc.mode, tc.hostPort)
	}
	require.False(t, named("demo").Temporal.Compresses(), "the default (auto) with the default host_port")

	c := named("demo")
	c.Temporal.GRPCCompression = "zstd"
	require.EqualError(t, c.Validate(), `config: temporal.grpc_compression: invalid value "zstd", want auto, gzip or none`)
}
