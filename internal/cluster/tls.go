package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// clientTLS is a cluster's TLS: its files' absolute paths (the configs
// name them) and the client config of the cluster's own checks.
type clientTLS struct {
	caFile, certFile, keyFile, clientCertFile, clientKeyFile string
	config                                                   *tls.Config
}

// loadClientTLS checks that t's files are there and load, and builds the
// client config that presents the client certificate.
func loadClientTLS(t TLS) (*clientTLS, error) {
	var c clientTLS
	for _, f := range []struct {
		what string
		in   string
		out  *string
	}{
		{"CAFile", t.CAFile, &c.caFile},
		{"CertFile", t.CertFile, &c.certFile},
		{"KeyFile", t.KeyFile, &c.keyFile},
		{"ClientCertFile", t.ClientCertFile, &c.clientCertFile},
		{"ClientKeyFile", t.ClientKeyFile, &c.clientKeyFile},
	} {
		if f.in == "" {
			return nil, fmt.Errorf("cluster: TLS.%s is required", f.what)
		}
		abs, err := filepath.Abs(f.in)
		if err != nil {
			return nil, fmt.Errorf("cluster: TLS.%s %s: %w", f.what, f.in, err)
		}
		*f.out = abs
	}
	if _, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err != nil {
		return nil, fmt.Errorf("cluster: TLS server certificate %s / key %s: %w", c.certFile, c.keyFile, err)
	}
	cert, err := tls.LoadX509KeyPair(c.clientCertFile, c.clientKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: TLS client certificate %s / key %s: %w", c.clientCertFile, c.clientKeyFile, err)
	}
	ca, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("cluster: TLS CA %s holds no PEM certificate", c.caFile)
	}
	c.config = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   t.ServerName,
		MinVersion:   tls.VersionTLS12,
	}
	return &c, nil
}
