package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"sioproxy/internal/testpki"
	"sioproxy/test/testkit"
)

// TestSocketIOOverTLS: real socket.io-client@4 and @2 sessions over https (polling) and wss
// (upgrade, WebSocket only) through the proxy's TLS listener reach plain backends, each in the
// transport its mode asks for; the backends see X-Forwarded-Proto: https on every handshake; a
// client that does not trust the CA cannot connect.
func TestSocketIOOverTLS(t *testing.T) {
	k := newPKI(t)
	const n = 20
	for _, v := range []string{"4", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			bs := testkit.StartBackends(t, 2, "tls"+v+"-%d", v, "--log-headers")
			px := startTLSProxy(t, bs, certYAML(k.site))
			for _, mode := range []string{"polling", "upgrade", "websocket"} {
				sum := testkit.RunClients(t, testkit.ClientOpts{URL: httpsURL(px), Mode: mode, Version: v, N: n, Emits: 3,
					Concurrency: 10, TimeoutMs: 20000, Env: k.trust()})
				if sum.OK != n {
					t.Errorf("%s: %d of %d sessions ok over TLS: %v", mode, sum.OK, n, failures(sum))
				}
				want := "websocket"
				if mode == "polling" {
					want = "polling"
				}
				for _, s := range sum.Sessions {
					if s.OK && s.Transport != want {
						t.Errorf("%s: session %d ended on %q, want %q", mode, s.ID, s.Transport, want)
						break
					}
				}
			}
			handshakes := 0
			for _, b := range bs {
				for _, e := range b.Events(0, "connection") {
					handshakes++
					if proto, _ := headerValue(e.Headers, "X-Forwarded-Proto"); proto != "https" {
						t.Errorf("backend %s: handshake with X-Forwarded-Proto %q, want https", b.Name, proto)
						break
					}
				}
				if errs := b.Events(0, "connection_error"); len(errs) > 0 {
					t.Errorf("backend %s: %d connection errors, first %+v", b.Name, len(errs), errs[0])
				}
			}
			if handshakes < 3*n {
				t.Errorf("backends saw %d handshakes, want at least %d", handshakes, 3*n)
			}
			// Verification is real: without the CA the handshake fails.
			_, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", px.Addr, &tls.Config{ServerName: "127.0.0.1"})
			var unknown x509.UnknownAuthorityError
			if err == nil || !errors.As(err, &unknown) {
				t.Errorf("a client without the test CA: %v, want an unknown-authority error", err)
			}
			if err := px.Healthy(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCertificateReloadUnder500WSS: 500 real wss sessions are held while the certificate files are
// replaced and SIGHUP re-reads them, then while a broken file is refused by POST /reload. New
// handshakes get the new certificate (and keep it after the refused reload); the other name's
// certificate is still chosen by SNI; no held session closes, and each is acked after the reload.
func TestCertificateReloadUnder500WSS(t *testing.T) {
	const n = 500
	k := newPKI(t)
	alt, err := k.ca.Server("alt", testpki.RSA2048, "alt.test")
	if err != nil {
		t.Fatal(err)
	}
	bs := testkit.StartBackends(t, 2, "hold%d", "4")
	px := startTLSProxy(t, bs, certYAML(k.site, alt))
	first := served(t, k, px.Addr, "localhost")
	if s := served(t, k, px.Addr, "alt.test"); s != alt.Cert.SerialNumber.String() {
		t.Fatalf("SNI alt.test served serial %s, want %s", s, alt.Cert.SerialNumber)
	}
	hold := testkit.StartHold(t, testkit.ClientOpts{URL: httpsURL(px), Mode: "websocket", N: n, Concurrency: 50,
		TimeoutMs: 60000, HoldMs: 240000, Env: k.trust()})
	hold.WaitProgress(t, "all_connected", 3*time.Minute)
	hold.WaitProgress(t, "all_acked", time.Minute)
	if got, _ := px.Metric(t, "sioproxy_backend_tunnels"); got != n {
		t.Errorf("%v tunnels before the reload, want %d", got, n)
	}

	renewed, err := k.ca.Server("site", testpki.ECDSAP256, "127.0.0.1", "localhost") // same files
	if err != nil {
		t.Fatal(err)
	}
	from := px.Len()
	if err := px.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, _, err := px.WaitLine(from, 20*time.Second, func(l string) bool {
		return strings.Contains(l, "tls certificates reloaded") && strings.Contains(l, k.site.CertFile)
	}); err != nil {
		t.Fatalf("no reload log line naming %s: %v\n%s", k.site.CertFile, err, px.Tail(10))
	}
	reloadedAt := testkit.NowMs()
	if s := served(t, k, px.Addr, "localhost"); s != renewed.Cert.SerialNumber.String() || s == first {
		t.Errorf("after SIGHUP a new handshake got serial %s, want the renewed %s (was %s)", s, renewed.Cert.SerialNumber, first)
	}
	if took := hold.WaitAckedAfter(t, reloadedAt, 60*time.Second); took > 0 {
		t.Logf("every held session acked %v after the reload", took)
	}

	// A broken certificate file: POST /reload is refused, the log names the file, the renewed
	// certificate stays.
	if err := os.WriteFile(k.site.CertFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	from = px.Len()
	resp, err := http.Post(px.AdminURL("/reload"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("POST /reload with a broken certificate file answered 200")
	}
	if _, _, err := px.WaitLine(from, 10*time.Second, func(l string) bool {
		return strings.Contains(l, "reload refused") && strings.Contains(l, k.site.CertFile)
	}); err != nil {
		t.Errorf("no refusal log line naming %s: %v\n%s", k.site.CertFile, err, px.Tail(10))
	}
	if s := served(t, k, px.Addr, "localhost"); s != renewed.Cert.SerialNumber.String() {
		t.Errorf("after a refused reload the served serial is %s, want %s", s, renewed.Cert.SerialNumber)
	}
	refusedAt := testkit.NowMs()
	hold.WaitAckedAfter(t, refusedAt, 60*time.Second)

	sum := hold.Stop(t)
	closed := 0
	for _, s := range sum.Sessions {
		if len(s.Disconnects) > 0 || len(s.Reconnects) > 0 || !s.OK {
			closed++
			if closed <= 3 {
				t.Errorf("session %d: disconnects %v, reconnects %v, errors %v", s.ID, s.Disconnects, s.Reconnects, s.Errors)
			}
		}
	}
	if closed > 0 || sum.OK != n {
		t.Errorf("%d of %d held wss sessions closed or failed across the reloads (ok %d)", closed, n, sum.OK)
	}
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// TestRedirectToHTTPS: tls.redirect_listen answers plain HTTP with a 308 to the same host and URI on
// the https listener, which then serves it.
func TestRedirectToHTTPS(t *testing.T) {
	k := newPKI(t)
	bs := testkit.StartBackends(t, 1, "redir%d", "4")
	plain := testkit.FreeAddr(t)
	px := startTLSProxy(t, bs, certYAML(k.site)+"redirect_listen: "+plain+"\n")
	_, port, _ := net.SplitHostPort(px.Addr)
	testkit.WaitTCP(t, px.Proc, plain, testkit.ProxyReadyTimeout)
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, plainPort, _ := net.SplitHostPort(plain)
	resp, err := noFollow.Get("http://localhost:" + plainPort + "/__name?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "https://localhost:" + port + "/__name?x=1"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("plain request: %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	follow := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool()}}}
	resp, err = follow.Get("http://localhost:" + plainPort + "/__name")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != bs[0].Name || resp.TLS == nil {
		t.Errorf("after the redirect: %d %q (TLS %v), want 200 %q over TLS", resp.StatusCode, body, resp.TLS != nil, bs[0].Name)
	}
}
