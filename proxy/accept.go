package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"
)

// Accept backoff after an error such as EMFILE, as net/http's Server does it.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// DefaultProxyHeaderTimeout bounds how long a PROXY protocol peer may take to send its header.
const DefaultProxyHeaderTimeout = 10 * time.Second

// ListenerOptions configure the client-facing listener (NewListener).
type ListenerOptions struct {
	// Limits on client connections; take them through ResolveLimits. MaxTunnels is the proxy's
	// (Settings.MaxTunnels), not the listener's.
	Limits Limits
	// NoFile is the descriptor limit the reserve is measured against; 0 reads RLIMIT_NOFILE.
	NoFile uint64
	// TLS terminates TLS on every connection when set (see CertStore.ServerConfig).
	TLS *tls.Config
	// ProxyProtocolFrom lists the peers whose connections must begin with a PROXY protocol (v1 or
	// v2) header; its source address is then the client's address. A header from any other peer
	// is refused (the connection is closed).
	ProxyProtocolFrom []netip.Prefix
	// ProxyHeaderTimeout bounds the wait for a PROXY header; 0 = DefaultProxyHeaderTimeout.
	ProxyHeaderTimeout time.Duration
	Metrics            ListenerMetrics // nil: NopMetrics
	Log                *zap.Logger     // nil: no logs

	openFDs func() int // tests inject the descriptor count; nil: OpenFDs
}

// Listener is the client-facing listener: it accepts with backoff on errors (descriptor exhaustion
// never ends Serve), refuses connections over the limits (closed at once and counted), reads the
// PROXY protocol header of trusted peers, and terminates TLS. Pass it to Proxy.Serve.
//
// Every connection it returns implements NetConn() net.Conn down to the *net.TCPConn, as *tls.Conn
// does; Close releases its share of the limits once.
type Listener struct {
	ln      net.Listener
	limits  atomic.Pointer[Limits]
	nofile  int
	tls     *tls.Config
	ppFrom  trustedNets
	ppWait  time.Duration
	metrics ListenerMetrics
	log     *zap.Logger
	openFDs func() int

	conns atomic.Int64 // live client connections
	fds   fdGate
	perIP ipCounter
	done  chan struct{}
	once  sync.Once
	logs  [5]logEvery // refusals by reason, [3] accept errors, [4] PROXY headers
}

// NewListener wraps ln (see Listen) as the client-facing listener.
func NewListener(ln net.Listener, o ListenerOptions) *Listener {
	l := &Listener{
		ln:      ln,
		tls:     o.TLS,
		ppFrom:  trustedNets(o.ProxyProtocolFrom),
		ppWait:  o.ProxyHeaderTimeout,
		metrics: o.Metrics,
		log:     o.Log,
		openFDs: o.openFDs,
		done:    make(chan struct{}),
	}
	if l.ppWait <= 0 {
		l.ppWait = DefaultProxyHeaderTimeout
	}
	if l.metrics == nil {
		l.metrics = NopMetrics{}
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	if l.openFDs == nil {
		l.openFDs = OpenFDs
	}
	nofile := o.NoFile
	if nofile == 0 {
		nofile = NoFile()
	}
	l.nofile = int(min(nofile, 1<<30))
	l.SetLimits(o.Limits)
	return l
}

// SetLimits swaps the connection limits (a reload); connections already accepted stay.
func (l *Listener) SetLimits(lim Limits) {
	l.limits.Store(&lim)
	l.fds.left.Store(0) // the next connection is counted against the new reserve
	l.metrics.ClientConnsMax(lim.MaxClientConns)
}

// ClientConns is the number of live client connections.
func (l *Listener) ClientConns() int { return int(l.conns.Load()) }

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close implements net.Listener; an Accept waiting out a backoff returns at once.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.ln.Close()
}

// Accept implements net.Listener. Errors other than a closed listener (EMFILE, ENFILE, ENOBUFS,
// ECONNABORTED, ...) are counted and retried after a delay that doubles from 5 ms to 1 s.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.metrics.AcceptError()
			if delay == 0 {
				delay = acceptDelayMin
			} else {
				delay = min(2*delay, acceptDelayMax)
			}
			if l.shouldLog(3) {
				l.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("delay", delay))
			}
			t := time.NewTimer(delay)
			select {
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			case <-t.C:
			}
			continue
		}
		delay = 0
		if cc := l.admit(c); cc != nil {
			return cc, nil
		}
	}
}

// admit applies the limits to a new connection and wraps it, or closes it and returns nil.
func (l *Listener) admit(c net.Conn) net.Conn {
	lim := l.limits.Load()
	if lim.ReservedFDs > 0 && l.nofile > 0 && l.fds.due() {
		// The count includes c itself: refuse when fewer than the reserve would be left.
		n, most := l.openFDs(), l.nofile-lim.ReservedFDs
		l.fds.counted(n, most)
		if n >= 0 && n > most {
			l.refuse(c, RefusedFDReserve, 0, zap.Int("open_fds", n), zap.Int("nofile", l.nofile))
			return nil
		}
	}
	if n := l.conns.Add(1); lim.MaxClientConns > 0 && n > int64(lim.MaxClientConns) {
		l.conns.Add(-1)
		l.refuse(c, RefusedMaxConns, 1, zap.Int("max_client_conns", lim.MaxClientConns))
		return nil
	}
	cc := &clientConn{Conn: c, raw: c, l: l}
	peer := addrOf(c.RemoteAddr())
	switch {
	case len(l.ppFrom) > 0 && l.ppFrom.contains(peer):
		// The client's address is in the header, read on the first Read in the connection's own
		// goroutine (never here: a slow peer must not hold up Accept); the per-address limit
		// applies then.
		cc.Conn = proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(l.ppWait))
		cc.gate = true
	case len(l.ppFrom) > 0:
		// Not a trusted peer: a PROXY header is refused, never believed.
		cc.Conn = proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REJECT), proxyproto.SetReadHeaderTimeout(l.ppWait))
		cc.gate = true
		fallthrough
	default:
		if lim.MaxConnsPerIP > 0 && peer.IsValid() {
			if !l.perIP.acquire(peer, lim.MaxConnsPerIP) {
				l.conns.Add(-1)
				l.refuse(c, RefusedPerIP, 2, zap.Stringer("client", peer), zap.Int("max_conns_per_ip", lim.MaxConnsPerIP))
				return nil
			}
			cc.ip.Store(&peer)
		}
	}
	l.metrics.ClientConns(1)
	if l.tls != nil {
		return tls.Server(cc, l.tls)
	}
	return cc
}

// fdGate spaces out the descriptor counts of admit (a stat of /proc/self/fd each): after a count
// of n against a bound of most, the next is due once (most-n)/fdsPerAccept connections were
// accepted, or fdCountEvery passed, whichever comes first. Near the bound every connection is
// counted; far from it, one in thousands.
type fdGate struct {
	left atomic.Int64 // connections to accept before the next count
	next atomic.Int64 // the next count is due at this time at the latest (Unix ns)
}

const (
	// fdsPerAccept bounds the descriptors one accepted connection can add before the next count:
	// its own, a backend connection (pooled or a tunnel's) and a shadow's, with one to spare.
	fdsPerAccept = 4
	// fdCountEvery bounds the time between counts (descriptors opened by anything else).
	fdCountEvery = 100 * time.Millisecond
)

// due reports whether this connection must be counted.
func (g *fdGate) due() bool {
	return g.left.Add(-1) < 0 || time.Now().UnixNano() >= g.next.Load()
}

// counted records a count of n descriptors against the bound most (n < 0: unknown, count again).
func (g *fdGate) counted(n, most int) {
	room := int64(0)
	if n >= 0 {
		room = int64(max(most-n, 0)) / fdsPerAccept
	}
	g.left.Store(room)
	g.next.Store(time.Now().Add(fdCountEvery).UnixNano())
}

// refuse closes a connection over a limit, counts it, and logs at most once a second per reason.
func (l *Listener) refuse(c net.Conn, reason string, slot int, fields ...zap.Field) {
	l.metrics.ConnRefused(reason)
	c.Close()
	if l.shouldLog(slot) {
		l.log.Warn("client connection refused", append(fields, zap.String("reason", reason))...)
	}
}

func (l *Listener) shouldLog(slot int) bool { return l.logs[slot].allow() }

// clientConn is an accepted client connection: the socket, possibly read through a PROXY protocol
// header reader, counted against the listener's limits until closed.
type clientConn struct {
	net.Conn          // what reads and writes: the socket, or the PROXY header reader over it
	raw      net.Conn // the socket
	l        *Listener
	ip       atomic.Pointer[netip.Addr] // counted against the per-address limit; Swap(nil) releases it
	closed   atomic.Bool

	gate     bool // a PROXY header reader: the header is checked on the first Read
	gateOnce sync.Once
	gateErr  error
}

// errPerIP is the read error of a PROXY protocol connection over the per-address limit.
var errPerIP = errors.New("too many connections from this client address")

// NetConn returns the socket, as (*tls.Conn).NetConn does. Bytes a PROXY header reader buffered
// past the header are read through the clientConn, not the socket.
func (c *clientConn) NetConn() net.Conn { return c.raw }

// Read implements net.Conn.
func (c *clientConn) Read(b []byte) (int, error) {
	if c.gate {
		c.gateOnce.Do(c.checkHeader)
		if c.gateErr != nil {
			return 0, c.gateErr
		}
	}
	return c.Conn.Read(b)
}

// checkHeader reads the PROXY header (or its absence): a connection whose header is missing,
// malformed or not allowed is closed and counted; an admitted header's source address is then
// held to the per-address limit.
func (c *clientConn) checkHeader() {
	pc := c.Conn.(*proxyproto.Conn)
	if _, err := pc.Read(nil); err != nil {
		c.gateErr = err
		c.l.metrics.ConnRefused(RefusedProxyHeader)
		c.Close()
		if c.l.shouldLog(4) {
			c.l.log.Warn("client connection refused", zap.Stringer("peer", c.raw.RemoteAddr()), zap.String("reason", RefusedProxyHeader), zap.Error(err))
		}
		return
	}
	lim := c.l.limits.Load()
	if pc.ProxyHeader() == nil || lim.MaxConnsPerIP <= 0 || c.ip.Load() != nil {
		return
	}
	a := addrOf(pc.RemoteAddr())
	if !a.IsValid() {
		return
	}
	if !c.l.perIP.acquire(a, lim.MaxConnsPerIP) {
		c.gateErr = errPerIP
		c.l.metrics.ConnRefused(RefusedPerIP)
		c.Close()
		if c.l.shouldLog(2) {
			c.l.log.Warn("client connection refused", zap.Stringer("client", a), zap.Int("max_conns_per_ip", lim.MaxConnsPerIP), zap.String("reason", RefusedPerIP))
		}
		return
	}
	c.ip.Store(&a)
	if c.closed.Load() { // closed meanwhile: whichever of Close and this swaps first releases
		if p := c.ip.Swap(nil); p != nil {
			c.l.perIP.release(*p)
		}
	}
}

// connHold is a client connection's share of the listener's limits, kept by a parked tunnel once
// the connection's Go objects are gone (the tunnel holds the socket's descriptor); release gives it
// back, once.
type connHold struct {
	l  *Listener
	ip *netip.Addr // counted against the per-address limit, or nil
}

// release gives the share back; a nil hold has none.
func (h *connHold) release() {
	if h == nil {
		return
	}
	if h.ip != nil {
		h.l.perIP.release(*h.ip)
	}
	h.l.conns.Add(-1)
	h.l.metrics.ClientConns(-1)
}

// detach hands the connection's share of the limits to the caller (a parked tunnel): Close no
// longer releases it. Nil when Close already did.
func (c *clientConn) detach() *connHold {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	return c.hold()
}

// hold takes the connection's share of the limits out of it.
func (c *clientConn) hold() *connHold { return &connHold{l: c.l, ip: c.ip.Swap(nil)} }

// detachHold finds the listener's connection under c (through wrappers' NetConn) and detaches its
// share of the limits; nil when c did not come from a Listener.
func detachHold(c net.Conn) *connHold {
	for i := 0; i < 8 && c != nil; i++ {
		if cc, ok := c.(*clientConn); ok {
			return cc.detach()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// Close implements net.Conn; the limits are released once.
func (c *clientConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.hold().release()
	}
	return c.raw.Close()
}

// addrOf is the IP of a net.Addr, unmapped (invalid when it has none).
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
