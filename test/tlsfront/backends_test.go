package tlsfront

import (
	"fmt"
	"testing"

	"sioproxy/internal/testpki"
	"sioproxy/test/testkit"
)

// TestTLSBothWays: TLS terminated at the proxy and TLS again to the backends, verified against a CA
// file with a server name per backend (the backends' certificate names only "backend.test", not
// the address dialled): socket.io-client@4 and @2 sessions over https and wss work in every mode,
// and the backends record no failure.
func TestTLSBothWays(t *testing.T) {
	k := newPKI(t)
	backCA, err := testpki.NewCA(t.TempDir(), "backends")
	if err != nil {
		t.Fatal(err)
	}
	bcert, err := backCA.Server("backend", testpki.ECDSAP256, "backend.test")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for _, v := range []string{"4", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			bs := testkit.StartBackends(t, 2, "tlsb"+v+"-%d", v, "--tls-cert", bcert.CertFile, "--tls-key", bcert.KeyFile)
			var entries []string
			for _, b := range bs {
				entries = append(entries, fmt.Sprintf("  - id: %s\n    url: %s\n    tls:\n      ca_file: %s\n      server_name: backend.test\n",
					b.Name, b.URL(), backCA.CertFile))
			}
			px := startTLSProxyBackends(t, entries, certYAML(k.site))
			for _, mode := range []string{"polling", "upgrade", "websocket"} {
				sum := testkit.RunClients(t, testkit.ClientOpts{URL: httpsURL(px), Mode: mode, Version: v, N: n, Emits: 3,
					Concurrency: 5, TimeoutMs: 20000, Env: k.trust()})
				if sum.OK != n {
					t.Errorf("%s: %d of %d sessions ok, TLS both ways: %v", mode, sum.OK, n, failures(sum))
				}
			}
			for id, s := range px.Backends(t) {
				if s.Failures != 0 {
					t.Errorf("https backend %s: %d failures", id, s.Failures)
				}
			}
			if err := px.Healthy(); err != nil {
				t.Error(err)
			}
		})
	}
}
