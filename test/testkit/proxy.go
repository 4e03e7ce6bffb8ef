package testkit

import (
	"testing"
	"time"
)

// ProxyReadyTimeout bounds the wait until a started proxy accepts connections on a listener.
const ProxyReadyTimeout = 30 * time.Second

// ProxySpec says how to start the sioproxy binary.
type ProxySpec struct {
	Name  string   // label in messages and logs; default "sioproxy"
	Addr  string   // client listener (-listen); "" picks a free loopback port
	Admin string   // admin listener (-admin-listen); "" turns it off
	Args  []string // further arguments, after -listen and -admin-listen
	// Prefix runs the binary through another command, e.g. {"prlimit", "--nofile=256:256", "--"};
	// that command must exec the binary so that the process is the proxy itself.
	Prefix []string
	Env    []string // added to the environment, e.g. "SSL_CERT_FILE=/path/ca.pem"
}

// Proxy is a running sioproxy binary and its listeners.
type Proxy struct {
	*Proc
	Addr  string // client listener
	Admin string // admin listener, "" when off
}

// URL is the proxy's client-facing base URL.
func (p *Proxy) URL() string { return "http://" + p.Addr }

// AdminURL is the URL of path on the admin listener.
func (p *Proxy) AdminURL(path string) string { return "http://" + p.Admin + path }

// LaunchProxy starts sioproxy from the module root without waiting for it to listen.
func LaunchProxy(t testing.TB, s ProxySpec) *Proxy {
	t.Helper()
	if s.Name == "" {
		s.Name = "sioproxy"
	}
	if s.Addr == "" {
		s.Addr = FreeAddr(t)
	}
	args := append([]string{"-listen", s.Addr, "-admin-listen=" + s.Admin}, s.Args...)
	bin := ProxyBin()
	if len(s.Prefix) > 0 {
		args = append(append(append([]string{}, s.Prefix[1:]...), bin), args...)
		bin = s.Prefix[0]
	}
	p := Start(t, Command{Name: s.Name, Dir: Root(), Bin: bin, Args: args, Env: s.Env})
	return &Proxy{Proc: p, Addr: s.Addr, Admin: s.Admin}
}

// StartProxy starts sioproxy and waits until its listeners accept connections.
func StartProxy(t testing.TB, s ProxySpec) *Proxy {
	t.Helper()
	p := LaunchProxy(t, s)
	p.WaitReady(t)
	return p
}

// WaitReady waits until the client listener, and the admin listener if any, accept connections.
func (p *Proxy) WaitReady(t testing.TB) {
	t.Helper()
	WaitTCP(t, p.Proc, p.Addr, ProxyReadyTimeout)
	if p.Admin != "" {
		WaitTCP(t, p.Proc, p.Admin, ProxyReadyTimeout)
	}
}
