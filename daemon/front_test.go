package daemon

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"sioproxy/internal/testpki"
)

// served handshakes with addr as name and returns the serial of the certificate served.
func served(t *testing.T, ca *testpki.CA, addr, name string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestReloadTLS: a reload with unchanged keys re-reads the certificate files; a broken file refuses
// the reload whole (the limits in it are not applied either) and keeps the certificate; turning TLS
// off is refused.
func TestReloadTLS(t *testing.T) {
	ca, err := testpki.NewCA(t.TempDir(), "daemon")
	if err != nil {
		t.Fatal(err)
	}
	site, err := ca.Server("site", testpki.ECDSAP256, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsYAML := "tls:\n  certificates:\n    - cert_file: " + site.CertFile + "\n      key_file: " + site.KeyFile + "\n"
	backends := demoBackends(t, 1)
	r := startDaemon(t, backends, tlsYAML)
	first := served(t, ca, r.addr, "127.0.0.1")
	renewed, err := ca.Server("site", testpki.ECDSAP256, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); err != nil {
		t.Fatalf("reload with renewed files: %v", err)
	}
	if got := served(t, ca, r.addr, "127.0.0.1"); got != renewed.Cert.SerialNumber.String() || got == first {
		t.Fatalf("after the reload: serial %s, want %s", got, renewed.Cert.SerialNumber)
	}
	if err := os.WriteFile(site.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.write(t, backends, tlsYAML+"proxy:\n  max_conns_per_ip: 1\n")
	err = r.d.Reload()
	if err == nil || !strings.Contains(err.Error(), site.KeyFile) {
		t.Fatalf("reload with a broken key file: %v, want an error naming %s", err, site.KeyFile)
	}
	if got := served(t, ca, r.addr, "127.0.0.1"); got != renewed.Cert.SerialNumber.String() {
		t.Errorf("after a refused reload: serial %s, want %s", got, renewed.Cert.SerialNumber)
	}
	if r.d.config().Proxy.MaxConnsPerIP != 0 {
		t.Errorf("a refused reload applied max_conns_per_ip")
	}
	r.write(t, backends, "")
	if err := r.d.Reload(); err == nil || !strings.Contains(err.Error(), "TLS on or off") {
		t.Errorf("turning TLS off on reload: %v, want refused", err)
	}
}

// TestReloadTLSFlagsOnly: started with flags only (no file to read again), a reload re-reads the
// certificate files.
func TestReloadTLSFlagsOnly(t *testing.T) {
	ca, err := testpki.NewCA(t.TempDir(), "flags")
	if err != nil {
		t.Fatal(err)
	}
	site, err := ca.Server("site", testpki.RSA2048, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	backends := demoBackends(t, 1)
	r := startDaemon(t, backends, "tls:\n  certificates:\n    - cert_file: "+site.CertFile+"\n      key_file: "+site.KeyFile+"\n")
	r.d.opts.Load = nil
	renewed, err := ca.Server("site", testpki.RSA2048, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); err != nil {
		t.Fatalf("flags-only reload: %v", err)
	}
	if got := served(t, ca, r.addr, "127.0.0.1"); got != renewed.Cert.SerialNumber.String() {
		t.Errorf("after a flags-only reload: serial %s, want %s", got, renewed.Cert.SerialNumber)
	}
}

// TestReloadLimits: connection limits reload (a second connection of one address is then refused)
// and are exported.
func TestReloadLimits(t *testing.T) {
	backends := demoBackends(t, 1)
	r := startDaemon(t, backends, "")
	if !strings.Contains(r.metrics(t), "sioproxy_client_conns_max ") {
		t.Fatal("no sioproxy_client_conns_max metric")
	}
	r.write(t, backends, "proxy:\n  max_client_conns: 7\n  max_conns_per_ip: 1\n")
	if err := r.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.metrics(t), "sioproxy_client_conns_max 7") {
		t.Errorf("sioproxy_client_conns_max after the reload:\n%s", grepLines(r.metrics(t), "client_conns"))
	}
	a, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := a.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("first connection: %q %v", buf[:n], err)
	}
	b, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := b.Read(buf); err == nil {
		t.Errorf("second connection of 127.0.0.1 over max_conns_per_ip 1 got %q", buf[:n])
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
