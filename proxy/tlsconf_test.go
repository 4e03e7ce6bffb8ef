package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"sioproxy/balancer"
	"sioproxy/internal/testpki"
	"sioproxy/sticky"
)

// tlsServerConn wraps c as the server side of TLS with a throwaway config (unwrap tests only).
func tlsServerConn(c net.Conn) *tls.Conn { return tls.Server(c, &tls.Config{}) }

func newCA(t testing.TB) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(t.TempDir(), "unit")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *testpki.CA, name string, kt testpki.KeyType, hosts ...string) testpki.Pair {
	t.Helper()
	p, err := ca.Server(name, kt, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsDial handshakes with addr as serverName and returns the leaf the server presented.
func tlsDial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func TestCertStoreSNIAndALPN(t *testing.T) {
	ca := newCA(t)
	a := issue(t, ca, "a", testpki.ECDSAP256, "a.test", "127.0.0.1")
	b := issue(t, ca, "b", testpki.ECDSAP256, "b.test", "*.b.test")
	store, err := NewCertStore(zap.NewNop(), TLSOptions{Certificates: []CertFiles{{a.CertFile, a.KeyFile}, {b.CertFile, b.KeyFile}}})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := echoAddrServer(t, ListenerOptions{TLS: store.ServerConfig()})
	for _, c := range []struct{ sni, wantCN string }{{"a.test", "a"}, {"b.test", "b"}, {"x.b.test", "b"}, {"", "a"}, {"other.test", "a"}} {
		conn, err := tlsDial(addr, &tls.Config{ServerName: c.sni, InsecureSkipVerify: c.sni == "" || c.sni == "other.test",
			RootCAs: ca.Pool(), NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatalf("sni %q: %v", c.sni, err)
		}
		st := conn.ConnectionState()
		if cn := st.PeerCertificates[0].Subject.CommonName; cn != c.wantCN {
			t.Errorf("sni %q: served %q, want %q", c.sni, cn, c.wantCN)
		}
		if st.NegotiatedProtocol != "http/1.1" {
			t.Errorf("sni %q: ALPN %q, want http/1.1", c.sni, st.NegotiatedProtocol)
		}
		if st.Version < tls.VersionTLS12 {
			t.Errorf("sni %q: version %x", c.sni, st.Version)
		}
		body, err := roundTrip(conn)
		if err != nil || !strings.HasSuffix(body, "tls=true") {
			t.Errorf("sni %q: request over TLS: %q %v", c.sni, body, err)
		}
		conn.Close()
	}
}

// TestCertStoreChoosesByKeyType: with an ECDSA and an RSA certificate for the same name, a client
// that only takes RSA gets the RSA one.
func TestCertStoreChoosesByKeyType(t *testing.T) {
	ca := newCA(t)
	ec := issue(t, ca, "ec", testpki.ECDSAP256, "app.test")
	rsa := issue(t, ca, "rsa", testpki.RSA2048, "app.test")
	store, err := NewCertStore(nil, TLSOptions{Certificates: []CertFiles{{ec.CertFile, ec.KeyFile}, {rsa.CertFile, rsa.KeyFile}}})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := echoAddrServer(t, ListenerOptions{TLS: store.ServerConfig()})
	conn, err := tlsDial(addr, &tls.Config{ServerName: "app.test", RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "rsa" {
		t.Errorf("RSA-only client got %q", cn)
	}
}

func TestCertStoreReload(t *testing.T) {
	ca := newCA(t)
	a := issue(t, ca, "site", testpki.ECDSAP256, "site.test")
	core, logs := observer.New(zap.InfoLevel)
	store, err := NewCertStore(zap.New(core), TLSOptions{Certificates: []CertFiles{{a.CertFile, a.KeyFile}}})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := echoAddrServer(t, ListenerOptions{TLS: store.ServerConfig()})
	cfg := &tls.Config{ServerName: "site.test", RootCAs: ca.Pool()}
	held, err := tlsDial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	serial := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].SerialNumber.String() }
	first := serial(held)

	b := issue(t, ca, "site", testpki.ECDSAP256, "site.test") // same files, new certificate
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	fresh, err := tlsDial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if serial(fresh) != b.Cert.SerialNumber.String() || serial(fresh) == first {
		t.Errorf("after reload a new connection got serial %s, want %s", serial(fresh), b.Cert.SerialNumber)
	}
	if body, err := roundTrip(held); err != nil || body == "" {
		t.Errorf("the connection established before the reload broke: %q %v", body, err)
	}

	// A bad file is refused, named, and the running certificate kept.
	if err := os.WriteFile(a.CertFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = store.Reload()
	if err == nil || !strings.Contains(err.Error(), a.CertFile) {
		t.Fatalf("reload of a broken file: %v (want an error naming %s)", err, a.CertFile)
	}
	var named bool
	for _, e := range logs.FilterMessage("tls reload refused, running certificates kept").All() {
		named = named || strings.Contains(fmt.Sprint(e.ContextMap()["error"]), a.CertFile)
	}
	if !named {
		t.Errorf("no error log line names %s: %v", a.CertFile, logs.All())
	}
	again, err := tlsDial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if serial(again) != b.Cert.SerialNumber.String() {
		t.Errorf("after a refused reload the served certificate changed: %s", serial(again))
	}
	// A key that does not match its certificate is refused too.
	other := issue(t, ca, "other", testpki.ECDSAP256, "other.test")
	if err := store.Update(TLSOptions{Certificates: []CertFiles{{b.CertFile, other.KeyFile}}}); err == nil {
		t.Error("a key of another certificate was accepted")
	}
	if _, err := os.Stat(b.CertFile); err != nil {
		t.Fatal(err)
	}
}

func TestCertStoreMinVersionAndClientAuth(t *testing.T) {
	ca := newCA(t)
	srv := issue(t, ca, "srv", testpki.ECDSAP256, "srv.test")
	client, err := ca.Client("alice", testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pair := []CertFiles{{srv.CertFile, srv.KeyFile}}
	base := tls.Config{ServerName: "srv.test", RootCAs: ca.Pool()}
	handshake := func(addr string, mod func(*tls.Config)) error {
		cfg := base.Clone()
		mod(cfg)
		c, err := tlsDial(addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		_, err = roundTrip(c)
		return err
	}
	none := func(*tls.Config) {}
	withCert := func(c *tls.Config) { c.Certificates = []tls.Certificate{cc} }

	s13, _ := NewCertStore(nil, TLSOptions{Certificates: pair, MinVersion: tls.VersionTLS13})
	_, a13 := echoAddrServer(t, ListenerOptions{TLS: s13.ServerConfig()})
	if err := handshake(a13, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }); err == nil {
		t.Error("min_version 1.3 accepted a TLS 1.2 client")
	}
	s12, _ := NewCertStore(nil, TLSOptions{Certificates: pair})
	_, a12 := echoAddrServer(t, ListenerOptions{TLS: s12.ServerConfig()})
	if err := handshake(a12, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11; c.MinVersion = tls.VersionTLS10 }); err == nil {
		t.Error("the default minimum accepted a TLS 1.1 client")
	}
	if err := handshake(a12, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }); err != nil {
		t.Errorf("TLS 1.2 client refused by default: %v", err)
	}

	req, _ := NewCertStore(nil, TLSOptions{Certificates: pair, ClientCAFile: ca.CertFile})
	_, areq := echoAddrServer(t, ListenerOptions{TLS: req.ServerConfig()})
	if err := handshake(areq, none); err == nil {
		t.Error("client_auth required accepted a client without a certificate")
	}
	if err := handshake(areq, withCert); err != nil {
		t.Errorf("client_auth required refused a valid client certificate: %v", err)
	}
	stranger := newCA(t)
	sc, _ := stranger.Client("mallory", testpki.ECDSAP256)
	scc, _ := tls.LoadX509KeyPair(sc.CertFile, sc.KeyFile)
	if err := handshake(areq, func(c *tls.Config) { c.Certificates = []tls.Certificate{scc} }); err == nil {
		t.Error("client_auth accepted a certificate of another CA")
	}
	opt, _ := NewCertStore(nil, TLSOptions{Certificates: pair, ClientCAFile: ca.CertFile, ClientOptional: true})
	_, aopt := echoAddrServer(t, ListenerOptions{TLS: opt.ServerConfig()})
	if err := handshake(aopt, none); err != nil {
		t.Errorf("client_auth optional refused a client without a certificate: %v", err)
	}
	if err := handshake(aopt, func(c *tls.Config) { c.Certificates = []tls.Certificate{scc} }); err == nil {
		t.Error("client_auth optional accepted a certificate of another CA")
	}
}

func TestCertStoreErrorsNameTheFile(t *testing.T) {
	ca := newCA(t)
	p := issue(t, ca, "p", testpki.ECDSAP256, "p.test")
	missing := p.CertFile + ".missing"
	for _, c := range []struct {
		o    TLSOptions
		file string
	}{
		{TLSOptions{Certificates: []CertFiles{{missing, p.KeyFile}}}, missing},
		{TLSOptions{Certificates: []CertFiles{{p.CertFile, missing}}}, missing},
		{TLSOptions{Certificates: []CertFiles{{p.CertFile, p.KeyFile}}, ClientCAFile: p.KeyFile}, p.KeyFile},
	} {
		_, err := NewCertStore(nil, c.o)
		if err == nil || !strings.Contains(err.Error(), c.file) {
			t.Errorf("%+v: %v, want an error naming %s", c.o, err, c.file)
		}
	}
}

// TestTunnelOverTLSAndCounts: a WebSocket through the TLS listener reaches the backend, and
// closing it gives its client connection back to the listener's count, as does a plain one.
func TestTunnelOverTLSAndCounts(t *testing.T) {
	ca := newCA(t)
	p := issue(t, ca, "proxy", testpki.ECDSAP256, "127.0.0.1")
	store, err := NewCertStore(nil, TLSOptions{Certificates: []CertFiles{{p.CertFile, p.KeyFile}}})
	if err != nil {
		t.Fatal(err)
	}
	b := startBackend(t, "tw")
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", secure), func(t *testing.T) {
			lo := ListenerOptions{}
			scheme := "ws"
			if secure {
				lo.TLS, scheme = store.ServerConfig(), "wss"
			}
			tp, ln := startFrontProxy(t, nil, specsOf(b), lo)
			// Polling over TLS reaches the plain backend (the forwarded request's scheme is the backend's).
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
			web := map[bool]string{false: "http", true: "https"}[secure]
			resp, err := hc.Get(web + "://" + tp.addr + "/socket.io/?EIO=4&transport=polling&t=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"sid":"`) {
				t.Fatalf("polling handshake: %d %q", resp.StatusCode, body)
			}
			hc.CloseIdleConnections()
			d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, HandshakeTimeout: 3 * time.Second}
			c, resp, err := d.Dial(scheme+"://"+tp.addr+"/socket.io/?EIO=4&transport=websocket", nil)
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			if _, open, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(open), `0{"sid":"tw_`) {
				t.Fatalf("open packet %q %v", open, err)
			}
			for i := 0; i < 3; i++ {
				c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("4m", i)))
				if _, msg, err := c.ReadMessage(); err != nil || string(msg) != fmt.Sprint("tw:4m", i) {
					t.Fatalf("echo %d: %q %v", i, msg, err)
				}
			}
			if !eventually(func() bool { return ln.ClientConns() == 1 && tp.Tunnels() == 1 }) {
				t.Errorf("while open: client conns %d, tunnels %d; want 1, 1", ln.ClientConns(), tp.Tunnels())
			}
			c.Close()
			waitFor(t, func() bool { return ln.ClientConns() == 0 && tp.Tunnels() == 0 })
		})
	}
}

func TestTunnelLimit(t *testing.T) {
	b := startBackend(t, "lim")
	m := newCountingMetrics()
	tp, _ := startFrontProxy(t, func(s *Settings) { s.MaxTunnels = 1 }, specsOf(b), ListenerOptions{}, WithMetrics(m))
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(tp.addr, ""), nil)
	if err != nil {
		t.Fatalf("first tunnel: %v (%v)", err, resp)
	}
	defer c.Close()
	_, resp, err = websocket.DefaultDialer.Dial(wsURL(tp.addr, ""), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second tunnel over max_tunnels=1: %v %v", err, resp)
	}
	// A session that asks to upgrade keeps polling: its upgrade gets 503, its polls go on.
	sid := handshake(t, tp.addr)
	_, resp, err = websocket.DefaultDialer.Dial(wsURL(tp.addr, "&sid="+sid), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("upgrade over the limit: %v %v", err, resp)
	}
	if code, _, body := get(t, pollURL(tp.addr, sid)); code != 200 {
		t.Fatalf("the session whose upgrade was refused cannot poll: %d %s", code, body)
	}
	if m.get(func(m *countingMetrics) int { return m.tunnels }) != 2 {
		t.Errorf("tunnels refused = %d, want 2", m.tunnels)
	}
	c.Close()
	waitFor(t, func() bool { return tp.Tunnels() == 0 })
	c2, resp, err := websocket.DefaultDialer.Dial(wsURL(tp.addr, ""), nil)
	if err != nil {
		t.Fatalf("tunnel after the first closed: %v (%v)", err, resp)
	}
	c2.Close()
}

// startFrontProxy starts a proxy serving on a front Listener built from lo.
func startFrontProxy(t testing.TB, mod func(*Settings), specs []balancer.Spec, lo ListenerOptions, opts ...Option) (*testProxy, *Listener) {
	t.Helper()
	bal := balancer.New(balancer.NewRoundRobin(), balancer.WithTagger(sticky.TagFor))
	bal.Update(specs)
	s := testSettings()
	s.DialTimeout = time.Second
	if mod != nil {
		mod(&s)
	}
	p := New(zap.NewNop(), bal, s, opts...)
	raw, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Metrics == nil {
		lo.Metrics = p.metrics
	}
	ln := NewListener(raw, lo)
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return &testProxy{Proxy: p, addr: raw.Addr().String(), bal: bal}, ln
}

func TestRedirectHost(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":          "example.com",
		"example.com:80":       "example.com",
		"EXAMPLE.com:8080":     "EXAMPLE.com",
		"127.0.0.1:80":         "127.0.0.1",
		"[::1]:80":             "[::1]",
		"[::1]":                "[::1]",
		"::1":                  "",
		"":                     "",
		"evil.com/x":           "",
		"evil.com@good":        "",
		"a b":                  "",
		"x\r\nSet-Cookie: a=b": "",
		"good.com:80:90":       "",
	} {
		if got := redirectHost(in); got != want {
			t.Errorf("redirectHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedirectServer(t *testing.T) {
	srv := RedirectServer("8443")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	c := dialFrom(t, "", ln.Addr().String())
	io.WriteString(c, "POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: app.test:80\r\nContent-Length: 0\r\n\r\n")
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 308 || string(resp.Header.Peek("Location")) != "https://app.test:8443/socket.io/?EIO=4&transport=polling" {
		t.Errorf("redirect: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
}
