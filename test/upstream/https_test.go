package upstream

import (
	"fmt"
	"path/filepath"
	"testing"

	"sioproxy/test/testkit"
)

// TestHTTPSBackends (#7): a real Socket.IO server over TLS (node https, a certificate of a test CA
// made with openssl), behind the proxy: polling, polling then upgrade, and WebSocket sessions all
// work, with the CA trusted either per backend (tls.ca_file, tls.server_name: the certificate names
// only that server name) or through the system roots (SSL_CERT_FILE, the certificate names the IP).
func TestHTTPSBackends(t *testing.T) {
	t.Run("ca_file and server_name", func(t *testing.T) {
		dir := t.TempDir()
		f := testkit.MakeTLS(t, filepath.Join(dir, "pki"), "DNS:backend.test")
		bs := testkit.StartBackends(t, 1, "tls%d", "4", "--tls-cert", f.Cert, "--tls-key", f.Key)
		px := startProxy(t, []backendEntry{{id: bs[0].Name, url: bs[0].URL(),
			extra: fmt.Sprintf("tls:\n  ca_file: %s\n  server_name: backend.test", f.CA)}}, "")
		runTLSSessions(t, px, bs)
	})
	t.Run("system roots", func(t *testing.T) {
		dir := t.TempDir()
		f := testkit.MakeTLS(t, filepath.Join(dir, "pki"), "IP:127.0.0.1")
		bs := testkit.StartBackends(t, 1, "tlsroots%d", "4", "--tls-cert", f.Cert, "--tls-key", f.Key)
		px := startProxy(t, entries(bs), "", "SSL_CERT_FILE="+f.CA)
		runTLSSessions(t, px, bs)
	})
}

func runTLSSessions(t *testing.T, px *testkit.Proxy, bs []*testkit.Backend) {
	t.Helper()
	for _, mode := range []string{"polling", "upgrade", "websocket"} {
		sum := testkit.RunClients(t, testkit.ClientOpts{URL: px.URL(), Mode: mode, N: 5, Emits: 3, TimeoutMs: 12000})
		if sum.OK != 5 {
			var errs []string
			for _, s := range sum.Sessions {
				if !s.OK && len(errs) < 3 {
					errs = append(errs, fmt.Sprint(s.Errors))
				}
			}
			t.Errorf("%s over an https backend: %d of 5 sessions ok: %v", mode, sum.OK, errs)
		}
	}
	for id, s := range px.Backends(t) {
		if s.Failures != 0 {
			t.Errorf("https backend %s: %d failures", id, s.Failures)
		}
	}
	assertAlive(t, px)
}
