package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// HTTPS backends (issue 10, point 7): polling and WebSocket over TLS, verified against a CA file
// and a server name per backend.

// testPKI makes a CA and a server certificate for name (and 127.0.0.1); it returns the CA's PEM
// file and the server's TLS config.
func testPKI(t testing.TB, name string) (caFile string, server *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sioproxy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return caFile, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
}

func tlsSpec(b *testBackend, caFile, serverName string) balancer.Spec {
	return balancer.Spec{ID: "https://" + b.addr, Addr: b.addr, TLS: true, TLSCAFile: caFile, TLSServerName: serverName,
		Weight: 1, State: balancer.Active, Source: "static"}
}

func TestHTTPSBackendPollingAndWebSocket(t *testing.T) {
	caFile, srv := testPKI(t, "backend.test")
	b := startBackendTLS(t, "tls", srv)
	p := startProxy(t, nil, []balancer.Spec{tlsSpec(b, caFile, "backend.test")})
	for i := 0; i < 5; i++ {
		sid := handshake(t, p.addr)
		if code, _, body := get(t, pollURL(p.addr, sid)); code != 200 || body != "4tls" {
			t.Fatalf("poll over TLS: %d %q", code, body)
		}
		if code, body := post(t, pollURL(p.addr, sid), "4hi"); code != 200 || body != "ok" {
			t.Fatalf("post over TLS: %d %q", code, body)
		}
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, "&sid="+sid), nil)
		if err != nil {
			t.Fatalf("upgrade over TLS: %v %v", err, resp)
		}
		c.WriteMessage(websocket.TextMessage, []byte("2probe"))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "tls:2probe" {
			t.Fatalf("probe over TLS: %q %v", msg, err)
		}
		c.Close()
	}
	if f := p.bal.Stats("https://" + b.addr).Failures.Load(); f != 0 {
		t.Fatalf("failures %d", f)
	}
}

func TestHTTPSBackendIsVerified(t *testing.T) {
	caFile, srv := testPKI(t, "backend.test")
	b := startBackendTLS(t, "tls", srv)
	otherCA, _ := testPKI(t, "backend.test")
	for name, spec := range map[string]balancer.Spec{
		"wrong server name": tlsSpec(b, caFile, "other.test"),
		"unknown CA":        tlsSpec(b, otherCA, "backend.test"),
	} {
		p := startProxy(t, nil, []balancer.Spec{spec})
		code, _, body := get(t, "http://"+p.addr+"/socket.io/?EIO=4&transport=polling")
		if code != 502 {
			t.Errorf("%s: handshake %d %q, want 502", name, code, body)
		}
		if _, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil); err == nil || resp == nil || resp.StatusCode != 502 {
			t.Errorf("%s: WebSocket-only session %v %v, want 502", name, err, resp)
		}
		if p.bal.Stats(spec.ID).Failures.Load() == 0 {
			t.Errorf("%s: a TLS failure is the backend's and must count", name)
		}
	}
	_ = sticky.SplitTagged
	_ = strings.Contains
}
