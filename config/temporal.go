package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// The Temporal client's security keys: TLS (temporal.tls*) and the API key
// (temporal.api_key_file, TSYNC_TEMPORAL_API_KEY). Validating them reads
// their files, so that a missing or bad file is a one-line config error at
// start rather than a failed dial; ClientTLS and APIKeyValue read them
// again when the client dials.

// The values of temporal.grpc_compression.
const (
	// CompressionAuto compresses unless the server is on this machine.
	CompressionAuto = "auto"
	// CompressionGzip compresses requests and answers with gzip.
	CompressionGzip = "gzip"
	// CompressionNone sends them as they are.
	CompressionNone = "none"
)

// Compresses reports whether the Temporal client compresses its requests
// with gzip, which has the server compress its answers too: for
// temporal.grpc_compression gzip, or auto with a server that is not on
// this machine (HostPort's host is not "localhost" nor a loopback
// address). gzip saves bytes on a network link; on the same machine it
// only costs both sides CPU, mostly in resetting a compressor for each of
// tsync's small messages (see the README's Performance section).
func (t TemporalConfig) Compresses() bool {
	switch t.GRPCCompression {
	case CompressionGzip:
		return true
	case CompressionNone:
		return false
	}
	host, _, err := net.SplitHostPort(t.HostPort)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// apiKeyKey is the key of TemporalConfig.APIKey: a secret that a config
// file may not hold.
const apiKeyKey = "temporal.api_key"

// TLSEnabled reports whether the Temporal client connects with TLS: when
// temporal.tls is set, or any of temporal.tls_ca_file, tls_cert_file,
// tls_key_file and tls_server_name, or an API key (which must not travel in
// clear, and which Temporal Cloud takes over TLS only).
func (t TemporalConfig) TLSEnabled() bool {
	return t.TLS || t.TLSCAFile != "" || t.TLSCertFile != "" || t.TLSKeyFile != "" ||
		t.TLSServerName != "" || t.hasAPIKey()
}

func (t TemporalConfig) hasAPIKey() bool { return t.APIKey != "" || t.APIKeyFile != "" }

// ClientTLS returns the TLS configuration of the Temporal client, reading
// the files the temporal.tls* keys name, or nil when TLS is off
// (TLSEnabled). Its root CAs are those of temporal.tls_ca_file, else the
// system's. An error is one line naming the key.
func (t TemporalConfig) ClientTLS() (*tls.Config, error) {
	c, p := t.clientTLS()
	if p != nil {
		return nil, p.err(source{}, "")
	}
	return c, nil
}

// APIKeyValue returns the API key: TSYNC_TEMPORAL_API_KEY's (APIKey), or
// the content of temporal.api_key_file without surrounding white space, or
// "" for none. An error is one line naming the key, never showing the key.
func (t TemporalConfig) APIKeyValue() (string, error) {
	k, p := t.apiKey()
	if p != nil {
		return "", p.err(source{}, "")
	}
	return k, nil
}

// problem returns the first bad security key of t, in the order of the
// fields, or nil.
func (t TemporalConfig) problem() *problem {
	if _, p := t.clientTLS(); p != nil {
		return p
	}
	_, p := t.apiKey()
	return p
}

func (t TemporalConfig) clientTLS() (*tls.Config, *problem) {
	if !t.TLSEnabled() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.TLSCAFile != "" {
		data, p := readKeyFile("temporal.tls_ca_file", t.TLSCAFile)
		if p != nil {
			return nil, p
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, bad("temporal.tls_ca_file", "no PEM certificate in %s", t.TLSCAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case t.TLSCertFile != "" && t.TLSKeyFile == "":
		return nil, bad("temporal.tls_cert_file", "set temporal.tls_key_file too: a client certificate needs its private key")
	case t.TLSCertFile == "" && t.TLSKeyFile != "":
		return nil, bad("temporal.tls_key_file", "set temporal.tls_cert_file too: a private key needs its client certificate")
	case t.TLSCertFile != "":
		certPEM, p := readKeyFile("temporal.tls_cert_file", t.TLSCertFile)
		if p != nil {
			return nil, p
		}
		if !hasPEM(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
			return nil, bad("temporal.tls_cert_file", "no PEM certificate in %s", t.TLSCertFile)
		}
		keyPEM, p := readKeyFile("temporal.tls_key_file", t.TLSKeyFile)
		if p != nil {
			return nil, p
		}
		if !hasPEM(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
			return nil, bad("temporal.tls_key_file", "no PEM private key in %s", t.TLSKeyFile)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, bad("temporal.tls_key_file", "%s and the certificate in %s (temporal.tls_cert_file) are no pair: %s",
				t.TLSKeyFile, t.TLSCertFile, strings.TrimPrefix(err.Error(), "tls: "))
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.TLSServerName != "" {
		if _, _, err := net.SplitHostPort(t.TLSServerName); err == nil || !validHost(t.TLSServerName) {
			return nil, bad("temporal.tls_server_name", "invalid server name %q, want a host name (no port)", t.TLSServerName)
		}
		c.ServerName = t.TLSServerName
	}
	return c, nil
}

func (t TemporalConfig) apiKey() (string, *problem) {
	if t.APIKeyFile != "" {
		if t.APIKey != "" {
			return "", bad("temporal.api_key_file", "set either temporal.api_key_file or %s, not both", envName(apiKeyKey))
		}
		return readSecretFile("temporal.api_key_file", t.APIKeyFile, "the API key")
	}
	if t.APIKey != "" && !validAPIKey(t.APIKey) {
		return "", bad(apiKeyKey, "the API key must be printable ASCII without spaces")
	}
	return t.APIKey, nil
}

// readSecretFile reads the secret (what: "the API key") held by file, the
// value of key: one line of printable ASCII without spaces, surrounding
// white space ignored.
func readSecretFile(key, file, what string) (string, *problem) {
	data, p := readKeyFile(key, file)
	if p != nil {
		return "", p
	}
	k := strings.TrimSpace(string(data))
	if k == "" {
		return "", bad(key, "%s is empty, want %s", file, what)
	}
	if !validAPIKey(k) {
		return "", bad(key, "%s in %s must be one line of printable ASCII without spaces", what, file)
	}
	return k, nil
}

// validAPIKey reports whether k can be sent as a bearer token in a gRPC
// header: printable ASCII without spaces.
func validAPIKey(k string) bool {
	return k != "" && !strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r > '~' })
}

// readKeyFile reads file, named by key, as a one-line problem.
func readKeyFile(key, file string) ([]byte, *problem) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, bad(key, "cannot read %s: %v", file, err)
	}
	return data, nil
}

// hasPEM reports whether data holds a PEM block of a type ok accepts.
func hasPEM(data []byte, ok func(typ string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if ok(b.Type) {
			return true
		}
	}
}

// checkSecretInFile refuses the API key in a config file (where): it is
// taken from the environment or from the file temporal.api_key_file.
func checkSecretInFile(key string, value any, where string) error {
	if key != apiKeyKey {
		return nil
	}
	if s, ok := value.(*string); ok && *s == "" {
		return nil
	}
	return fmt.Errorf("config: %s: the API key is a secret, not read from a config file: set %s or temporal.api_key_file (in %s)",
		key, envName(apiKeyKey), where)
}
