package tlsfront

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/internal/testpki"
	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "tlsfront",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-v2", "socket.io-client", "socket.io-client-v2"},
	})
}

// pki is a test CA and the proxy's certificate files.
type pki struct {
	ca   *testpki.CA
	site testpki.Pair // for 127.0.0.1 and localhost
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := testpki.NewCA(t.TempDir(), "tlsfront")
	if err != nil {
		t.Fatal(err)
	}
	site, err := ca.Server("site", testpki.ECDSAP256, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, site: site}
}

// trust is the environment that makes Node trust the test CA.
func (k *pki) trust() []string { return []string{"NODE_EXTRA_CA_CERTS=" + k.ca.CertFile} }

// startTLSProxy starts sioproxy terminating TLS with the given tls section (YAML, indented under
// "tls:") in front of bs, with an admin listener.
func startTLSProxy(t *testing.T, bs []*testkit.Backend, tlsYAML string) *testkit.Proxy {
	t.Helper()
	var entries []string
	for _, b := range bs {
		entries = append(entries, fmt.Sprintf("  - id: %s\n    url: %s\n", b.Name, b.URL()))
	}
	return startTLSProxyBackends(t, entries, tlsYAML)
}

// startTLSProxyBackends is startTLSProxy with the backends list given as YAML entries.
func startTLSProxyBackends(t *testing.T, entries []string, tlsYAML string) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: info\nbackends:\n", addr, admin)
	for _, e := range entries {
		y.WriteString(e)
	}
	y.WriteString("tls:\n")
	for _, l := range strings.Split(strings.TrimRight(tlsYAML, "\n"), "\n") {
		y.WriteString("  " + l + "\n")
	}
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}})
}

func certYAML(pairs ...testpki.Pair) string {
	var y strings.Builder
	y.WriteString("certificates:\n")
	for _, p := range pairs {
		fmt.Fprintf(&y, "  - cert_file: %s\n    key_file: %s\n", p.CertFile, p.KeyFile)
	}
	return y.String()
}

func httpsURL(px *testkit.Proxy) string { return "https://" + px.Addr }

// served handshakes with the proxy as a browser would (SNI serverName, verified against the CA)
// and returns the serial number of the certificate it served.
func served(t *testing.T, k *pki, addr, serverName string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: serverName, RootCAs: k.ca.Pool()})
	if err != nil {
		t.Fatalf("TLS handshake with %s as %q: %v", addr, serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func failures(sum testkit.ClientSummary) []string {
	var out []string
	for _, s := range sum.Sessions {
		if !s.OK && len(out) < 5 {
			out = append(out, fmt.Sprintf("#%d %s", s.ID, strings.Join(s.Errors, "; ")))
		}
	}
	return out
}

// headerValue returns the value of a raw header list (name, value, ...) for name, any case.
func headerValue(raw []string, name string) (string, bool) {
	for i := 0; i+1 < len(raw); i += 2 {
		if strings.EqualFold(raw[i], name) {
			return raw[i+1], true
		}
	}
	return "", false
}
