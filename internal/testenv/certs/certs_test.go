package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	b, _ := pem.Decode(data)
	require.NotNil(t, b, file)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func pool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(parse(t, file))
	return p
}

// The server certificate is valid for this machine's names under the CA,
// the client certificate for client authentication; the other CA's
// certificate verifies under neither, and every key matches its certificate.
func TestWrite(t *testing.T) {
	f, err := Write(t.TempDir())
	require.NoError(t, err)

	ca, other := pool(t, f.CAFile), pool(t, f.OtherCAFile)
	server := parse(t, f.ServerCertFile)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", ServerName} {
		_, err := server.Verify(x509.VerifyOptions{Roots: ca, DNSName: name})
		require.NoError(t, err, name)
	}
	_, err = server.Verify(x509.VerifyOptions{Roots: ca, DNSName: "example.com"})
	require.Error(t, err)
	_, err = server.Verify(x509.VerifyOptions{Roots: other, DNSName: "localhost"})
	require.Error(t, err)

	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	for _, c := range []string{f.ClientCertFile, f.ServerCertFile} {
		_, err = parse(t, c).Verify(x509.VerifyOptions{Roots: ca, KeyUsages: clientAuth})
		require.NoError(t, err, c)
	}
	foreign := parse(t, f.ForeignCertFile)
	_, err = foreign.Verify(x509.VerifyOptions{Roots: ca, KeyUsages: clientAuth})
	require.Error(t, err)
	_, err = foreign.Verify(x509.VerifyOptions{Roots: other, KeyUsages: clientAuth})
	require.NoError(t, err)

	for cert, key := range map[string]string{f.ServerCertFile: f.ServerKeyFile, f.ClientCertFile: f.ClientKeyFile, f.ForeignCertFile: f.ForeignKeyFile} {
		_, err := tls.LoadX509KeyPair(cert, key)
		require.NoError(t, err, cert)
		st, err := os.Stat(key)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), key)
	}
}
