// Package testpki makes a certificate authority and the certificates it signs, as PEM files, for
// tests of TLS termination and TLS backends (unit and end to end). Nothing here is for production:
// the keys are written unencrypted.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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

// KeyType selects the key of a certificate.
type KeyType int

// Key types.
const (
	ECDSAP256 KeyType = iota
	RSA2048
)

// CA is a certificate authority whose certificate is in a PEM file.
type CA struct {
	Dir      string // where its files and those of its certificates are written
	CertFile string // the CA certificate (PEM): trust it
	cert     *x509.Certificate
	key      crypto.Signer
	serial   int64
}

// Pair is a certificate and its key as PEM files.
type Pair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// NewCA makes a CA named name whose files go to dir.
func NewCA(dir, name string) (*CA, error) {
	key, err := newKey(ECDSAP256)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sioproxy tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Dir: dir, CertFile: filepath.Join(dir, name+"-ca.pem"), cert: cert, key: key, serial: 1}
	return ca, writePEM(ca.CertFile, "CERTIFICATE", der)
}

// Server issues a server certificate for hosts (DNS names or IP addresses); files are named after
// name.
func (ca *CA) Server(name string, kt KeyType, hosts ...string) (Pair, error) {
	return ca.issue(name, kt, x509.ExtKeyUsageServerAuth, time.Now().Add(30*24*time.Hour), hosts...)
}

// Client issues a client certificate with common name name.
func (ca *CA) Client(name string, kt KeyType) (Pair, error) {
	return ca.issue(name, kt, x509.ExtKeyUsageClientAuth, time.Now().Add(30*24*time.Hour))
}

func (ca *CA) issue(name string, kt KeyType, usage x509.ExtKeyUsage, notAfter time.Time, hosts ...string) (Pair, error) {
	key, err := newKey(kt)
	if err != nil {
		return Pair{}, err
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if kt == RSA2048 {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return Pair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	cert, _ := x509.ParseCertificate(der)
	p := Pair{CertFile: filepath.Join(ca.Dir, name+".pem"), KeyFile: filepath.Join(ca.Dir, name+"-key.pem"), Cert: cert}
	if err := writePEM(p.CertFile, "CERTIFICATE", der); err != nil {
		return Pair{}, err
	}
	return p, writePEM(p.KeyFile, "PRIVATE KEY", keyDER)
}

// Pool returns a pool holding the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func newKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("testpki: unknown key type %d", kt)
}

// writePEM writes one PEM block atomically (a reload never reads half a file).
func writePEM(path, typ string, der []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
