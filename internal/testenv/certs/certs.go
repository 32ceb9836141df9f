// Package certs writes the PEM files of a throwaway PKI for tests of TLS and
// mTLS: a CA, a server certificate for this machine (127.0.0.1, ::1 and
// localhost) and a client certificate it signed, plus a second CA and a
// client certificate of its own, which the first CA's servers must refuse.
//
// It sits apart from package testenv, which imports config, so that the
// config package's own tests can use it.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the PEM files written by Write, each an absolute path.
type Files struct {
	// CAFile is the CA that signed the server and the client certificate.
	CAFile string
	// ServerCertFile and ServerKeyFile are the server's certificate (valid
	// for 127.0.0.1, ::1 and localhost, for server and client
	// authentication, as a cluster's services present it to each other)
	// and its key.
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate (common
	// name "tsync-client") and its key.
	ClientCertFile, ClientKeyFile string
	// OtherCAFile is a CA that signed neither certificate: a client that
	// trusts only it must refuse the server.
	OtherCAFile string
	// ForeignCertFile and ForeignKeyFile are a client certificate signed by
	// OtherCAFile's CA: a server trusting only CAFile must refuse it.
	ForeignCertFile, ForeignKeyFile string
}

// ServerName is a name the server certificate is valid for.
const ServerName = "localhost"

// Write generates the certificates and writes them into dir (which must
// exist): ca.pem, server.pem, server-key.pem, client.pem, client-key.pem,
// other-ca.pem, foreign.pem and foreign-key.pem. Keys are ECDSA P-256,
// certificates valid from an hour ago for a year.
func Write(dir string) (Files, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Files{}, err
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	f := Files{
		CAFile:          path("ca.pem"),
		ServerCertFile:  path("server.pem"),
		ServerKeyFile:   path("server-key.pem"),
		ClientCertFile:  path("client.pem"),
		ClientKeyFile:   path("client-key.pem"),
		OtherCAFile:     path("other-ca.pem"),
		ForeignCertFile: path("foreign.pem"),
		ForeignKeyFile:  path("foreign-key.pem"),
	}
	ca, err := newCA("tsync test CA")
	if err != nil {
		return Files{}, err
	}
	other, err := newCA("tsync test other CA")
	if err != nil {
		return Files{}, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: ServerName},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "tsync-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	foreign := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "tsync-foreign-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, w := range []struct {
		by            *authority
		tmpl          *x509.Certificate
		certFile, key string
	}{
		{ca, server, f.ServerCertFile, f.ServerKeyFile},
		{ca, client, f.ClientCertFile, f.ClientKeyFile},
		{other, foreign, f.ForeignCertFile, f.ForeignKeyFile},
	} {
		if err := w.by.issue(w.tmpl, w.certFile, w.key); err != nil {
			return Files{}, err
		}
	}
	if err := writePEM(f.CAFile, "CERTIFICATE", ca.der); err != nil {
		return Files{}, err
	}
	if err := writePEM(f.OtherCAFile, "CERTIFICATE", other.der); err != nil {
		return Files{}, err
	}
	return f, nil
}

// authority is a CA: its certificate and key.
type authority struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newCA(name string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CA %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, der: der, key: key}, nil
}

// issue signs a certificate of tmpl with a new key and writes both.
func (a *authority) issue(tmpl *x509.Certificate, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return fmt.Errorf("certs: create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyFile, "PRIVATE KEY", keyDER)
}

// serial returns a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func writePEM(file, kind string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
