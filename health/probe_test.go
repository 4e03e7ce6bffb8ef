package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
)

// Modes of fakeBackend.
const (
	modeOK      int32 = iota
	modeStatus        // answers status
	modeGarbage       // 200 with a body that is no open packet
	modeHang          // never answers (until the test ends)
)

// fakeBackend is a minimal Engine.IO v4 polling server that counts open sessions.
type fakeBackend struct {
	addr    string
	mode    atomic.Int32
	status  atomic.Int32
	release chan struct{}

	mu      sync.Mutex
	open    map[string]bool
	opened  int
	closed  int
	lastURI string
}

func startBackend(t *testing.T) *fakeBackend {
	t.Helper()
	return startBackendTLS(t, nil)
}

// startBackendTLS is startBackend serving TLS with cfg (nil: plain TCP).
func startBackendTLS(t *testing.T, cfg *tls.Config) *fakeBackend {
	t.Helper()
	b := &fakeBackend{open: make(map[string]bool), release: make(chan struct{})}
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	b.addr = ln.Addr().String()
	srv := &fasthttp.Server{Handler: b.handle}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		close(b.release)
		_ = srv.Shutdown()
		// Shutdown closes only the listeners Serve has registered: when the test ends before the
		// goroutine above got there (no request reached the backend), Serve would accept forever.
		_ = ln.Close()
		<-done
	})
	return b
}

func (b *fakeBackend) handle(ctx *fasthttp.RequestCtx) {
	b.mu.Lock()
	b.lastURI = string(ctx.RequestURI())
	b.mu.Unlock()
	switch b.mode.Load() {
	case modeStatus:
		ctx.SetStatusCode(int(b.status.Load()))
		return
	case modeGarbage:
		ctx.SetBodyString("<html>hello</html>")
		return
	case modeHang:
		<-b.release
		return
	}
	args := ctx.QueryArgs()
	if string(ctx.Path()) != "/socket.io/" || string(args.Peek("EIO")) != "4" || string(args.Peek("transport")) != "polling" {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString(`{"code":0,"message":"Transport unknown"}`)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sid := string(args.Peek("sid"))
	switch {
	case sid == "" && ctx.IsGet():
		b.opened++
		sid = fmt.Sprintf("sid%d", b.opened)
		b.open[sid] = true
		ctx.SetBodyString(`0{"sid":"` + sid + `","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
	case ctx.IsPost() && b.open[sid] && len(ctx.PostBody()) > 0 && ctx.PostBody()[0] == '1': // a v4 close ("1:1" is one, with data ":1")
		delete(b.open, sid)
		b.closed++
		ctx.SetBodyString("ok")
	default:
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString(`{"code":1,"message":"Session ID unknown"}`)
	}
}

func (b *fakeBackend) sessions() (open, opened, closed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.open), b.opened, b.closed
}

// nopSetter ignores transitions.
type nopSetter struct{}

func (nopSetter) SetStatus(string, bool) {}

func TestProbeOnce(t *testing.T) {
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	tests := []struct {
		name     string
		kind     string
		path     string
		mode     int32
		status   int32
		addr     string // "" = the fake backend
		ok       bool
		wantURI  string
		closedTo int // sessions the probe closed
	}{
		{"engineio ok", ProbeEngineIO, "", modeOK, 0, "", true, "/socket.io/?EIO=4&transport=polling&sid=sid1", 1},
		{"engineio wrong path", ProbeEngineIO, "/io/", modeOK, 0, "", false, "/io/?EIO=4&transport=polling", 0},
		{"engineio 503", ProbeEngineIO, "", modeStatus, 503, "", false, "/socket.io/?EIO=4&transport=polling", 0},
		{"engineio not engine.io", ProbeEngineIO, "", modeGarbage, 0, "", false, "/socket.io/?EIO=4&transport=polling", 0},
		{"engineio refused", ProbeEngineIO, "", modeOK, 0, refused, false, "", 0},
		{"engineio hangs", ProbeEngineIO, "", modeHang, 0, "", false, "/socket.io/?EIO=4&transport=polling", 0},
		{"http 200", ProbeHTTP, "/healthz?full=1", modeStatus, 200, "", true, "/healthz?full=1", 0},
		{"http 204", ProbeHTTP, "", modeStatus, 204, "", true, "/", 0},
		{"http 301", ProbeHTTP, "", modeStatus, 301, "", false, "/", 0},
		{"http 503", ProbeHTTP, "", modeStatus, 503, "", false, "/", 0},
		{"http hangs", ProbeHTTP, "", modeHang, 0, "", false, "/", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startBackend(t)
			b.mode.Store(tc.mode)
			b.status.Store(tc.status)
			path := tc.path
			if path == "" {
				path = map[string]string{ProbeEngineIO: "/socket.io/", ProbeHTTP: "/"}[tc.kind]
			}
			o := probeOpts(tc.kind, path)
			o.Timeout = 300 * time.Millisecond
			p, err := NewProber(o, nopSetter{})
			if err != nil {
				t.Fatal(err)
			}
			addr := b.addr
			if tc.addr != "" {
				addr = tc.addr
			}
			err = p.probe(balancer.Spec{ID: "b1", Addr: addr})
			if (err == nil) != tc.ok {
				t.Fatalf("probe error = %v, want ok=%v", err, tc.ok)
			}
			b.mu.Lock()
			uri := b.lastURI
			b.mu.Unlock()
			if uri != tc.wantURI {
				t.Fatalf("last request %q, want %q", uri, tc.wantURI)
			}
			if open, _, closed := b.sessions(); open != 0 || closed != tc.closedTo {
				t.Fatalf("backend has %d open sessions, %d closed; want 0, %d", open, closed, tc.closedTo)
			}
		})
	}
}

func TestNewProberValidates(t *testing.T) {
	tests := []struct {
		name   string
		opts   ProbeOptions
		setter StatusSetter
		ok     bool
	}{
		{"engineio", probeOpts(ProbeEngineIO, "/socket.io/"), nopSetter{}, true},
		{"http", probeOpts(ProbeHTTP, "/"), nopSetter{}, true},
		{"unknown kind", probeOpts("tcp", "/"), nopSetter{}, false},
		{"relative path", probeOpts(ProbeEngineIO, "health"), nopSetter{}, false},
		{"no interval", ProbeOptions{Kind: ProbeEngineIO, Path: "/socket.io/", Timeout: time.Second, Rise: 1, Fall: 1}, nopSetter{}, false},
		{"zero rise", ProbeOptions{Kind: ProbeEngineIO, Path: "/socket.io/", Interval: time.Second, Timeout: time.Second, Fall: 1}, nopSetter{}, false},
		{"nil setter", probeOpts(ProbeEngineIO, "/socket.io/"), nil, false},
	}
	for _, tc := range tests {
		if _, err := NewProber(tc.opts, tc.setter); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

// statusRecorder reports every SetStatus call on a channel.
type statusRecorder chan string

func (r statusRecorder) SetStatus(id string, up bool) { r <- fmt.Sprintf("%s up=%v", id, up) }

func TestProberTransitions(t *testing.T) {
	b := startBackend(t)
	clk := newFakeClock()
	rec := make(statusRecorder, 10)
	p, err := NewProber(ProbeOptions{Kind: ProbeEngineIO, Path: "/socket.io/", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
		Clock: clk, Rand: func() float64 { return 0.25 }}, rec)
	if err != nil {
		t.Fatal(err)
	}
	p.SetTargets([]balancer.Spec{{ID: "b1", Addr: b.addr}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	expect := func(i int, want string) {
		t.Helper()
		select {
		case got := <-rec:
			if got != want {
				t.Fatalf("probe %d: SetStatus(%s), want %q", i, got, want)
			}
		default:
			if want != "" {
				t.Fatalf("probe %d: no SetStatus, want %s", i, want)
			}
		}
	}
	results := []struct {
		mode   int32
		want   string // SetStatus expected after this probe; "" = none
		wantUp bool
	}{
		{modeOK, "", true},
		{modeStatus, "", true},
		{modeStatus, "b1 up=false", false},
		{modeStatus, "", false},
		{modeOK, "", false},
		{modeOK, "b1 up=true", true},
	}
	// The first probe is staggered by Rand over Interval.
	if d := clk.NextWait(t); d != 250*time.Millisecond {
		t.Fatalf("first probe after %v, want 250ms", d)
	}
	pending := 250 * time.Millisecond
	for i, r := range results {
		b.mode.Store(r.mode)
		b.status.Store(500)
		clk.Advance(pending) // runs probe i
		// Once probe i is done, the worker schedules the next one.
		if pending = clk.NextWait(t); pending != time.Second {
			t.Fatalf("probe %d: next probe after %v, want 1s", i, pending)
		}
		expect(i, r.want)
		if up, known := p.Status("b1"); !known || up != r.wantUp {
			t.Fatalf("probe %d: Status = %v, %v; want %v", i, up, known, r.wantUp)
		}
	}
	if open, opened, _ := b.sessions(); open != 0 || opened != 3 {
		t.Fatalf("backend: %d sessions open, %d opened; want 0, 3", open, opened)
	}

	p.SetTargets(nil)
	if _, known := p.Status("b1"); known {
		t.Fatal("b1 still probed after SetTargets(nil)")
	}
}

// probeOpts are valid options of a kind and path (the values the config defaults to).
func probeOpts(kind, path string) ProbeOptions {
	return ProbeOptions{Kind: kind, Path: path, Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3}
}

func TestProberSetTargetsKeepsState(t *testing.T) {
	p, err := NewProber(probeOpts(ProbeEngineIO, "/socket.io/"), nopSetter{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTargets([]balancer.Spec{{ID: "a", Addr: "10.0.0.1:80"}, {ID: "b", Addr: "10.0.0.2:80"}})
	for _, id := range []string{"a", "b"} {
		p.targets[id].up.Store(false)
	}
	p.SetTargets([]balancer.Spec{{ID: "a", Addr: "10.0.0.1:80"}, {ID: "b", Addr: "10.0.0.9:80"}, {ID: "c", Addr: "10.0.0.3:80"}, {ID: "c", Addr: "dup"}})
	tests := []struct {
		id        string
		up, known bool
	}{
		{"a", false, true}, // unchanged: keeps its state
		{"b", true, true},  // new address: starts over, up
		{"c", true, true},  // new
		{"d", false, false},
	}
	for _, tc := range tests {
		if up, known := p.Status(tc.id); up != tc.up || known != tc.known {
			t.Errorf("Status(%s) = %v, %v; want %v, %v", tc.id, up, known, tc.up, tc.known)
		}
	}
	if got := p.targets["c"].spec.Addr; got != "10.0.0.3:80" {
		t.Errorf("duplicate id: c probes %s, want the first", got)
	}
}

// TestProbeVerifiesTLSBackendsWithTheirOwnCA: an https backend whose CA file (and server name) the
// config names is probed with them, as the proxy connects to it; without them it fails verification.
func TestProbeVerifiesTLSBackendsWithTheirOwnCA(t *testing.T) {
	caFile, srv := probePKI(t, "backend.test")
	b := startBackendTLS(t, srv)
	b.mode.Store(modeOK)
	for _, tc := range []struct {
		name string
		spec balancer.Spec
		ok   bool
	}{
		{"own CA and name", balancer.Spec{ID: "b1", Addr: b.addr, TLS: true, TLSCAFile: caFile, TLSServerName: "backend.test"}, true},
		{"system roots", balancer.Spec{ID: "b2", Addr: b.addr, TLS: true}, false},
	} {
		p, err := NewProber(probeOpts(ProbeEngineIO, "/socket.io/"), nopSetter{})
		if err != nil {
			t.Fatal(err)
		}
		p.SetTargets([]balancer.Spec{tc.spec})
		if err := p.probe(tc.spec); (err == nil) != tc.ok {
			t.Errorf("%s: probe error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// probePKI makes a CA (its PEM file) and a server TLS config with a certificate for name it signed.
func probePKI(t *testing.T, name string) (string, *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
