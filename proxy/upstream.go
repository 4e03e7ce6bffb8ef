package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sioproxy/balancer"
	"sioproxy/internal/backendtls"
)

// Pool bounds.
const (
	// maxIdleConnDuration is below Node's 5 s keep-alive timeout, so a pooled connection is rarely
	// one the backend is closing.
	maxIdleConnDuration = 4 * time.Second
	// defaultConnWaitTimeout bounds how long a request waits for a connection when a backend's
	// connection limit is reached (a local limit: 503, never a backend failure).
	defaultConnWaitTimeout = 5 * time.Second
	backendReadBufSize     = 8192
)

var (
	// errNoFreeConns is the local connection limit of a backend (proxy.max_conns_per_backend).
	errNoFreeConns = errors.New("no free connection to the backend (local limit)")
	errPoolClosed  = errors.New("backend pool replaced")
)

// upstream is the connection pool of one backend: idle keep-alive connections (most recent first)
// and a bound on open ones. A request waiting for a connection takes the next one released.
type upstream struct {
	spec        balancer.Spec // the backend as the pool was built for it
	tlsConf     *tls.Config   // nil: plain TCP
	tlsErr      error         // the backend's TLS settings are unusable: every dial fails with it
	dialTimeout time.Duration
	maxConns    int

	slots   chan struct{} // one token per open (or dialling) connection
	handoff chan *bconn   // a released connection goes straight to a waiting request

	mu     sync.Mutex
	idle   []*bconn
	closed bool
}

// bconn is one connection to a backend.
type bconn struct {
	up      *upstream
	nc      net.Conn
	rc      syscall.RawConn // of the socket (for the liveness peek); nil when unavailable
	br      *bufio.Reader
	idleAt  time.Time
	reused  bool        // taken from the idle pool for this request
	aborted atomic.Bool // closed because the client went away
	closeMu sync.Once
	rdl     time.Time // the read deadline as last set
	wdl     time.Time // the write deadline as last set
	peekFn  func(fd uintptr) bool
	peekBuf [1]byte
	peekN   int
	peekErr error
}

func newUpstream(be *balancer.Backend, rt *rtConfig) *upstream {
	up := &upstream{
		spec: be.Spec, dialTimeout: rt.DialTimeout, maxConns: max(1, rt.MaxConnsPerBackend),
		handoff: make(chan *bconn),
	}
	up.slots = make(chan struct{}, up.maxConns)
	if be.TLS {
		up.tlsConf, up.tlsErr = backendtls.Config(be.Spec)
	}
	return up
}

// matches reports whether the pool still fits its backend and settings.
func (up *upstream) matches(be *balancer.Backend, rt *rtConfig) bool {
	return up.spec.Addr == be.Addr && up.spec.TLS == be.TLS && up.spec.TLSCAFile == be.TLSCAFile &&
		up.spec.TLSServerName == be.TLSServerName && up.dialTimeout == rt.DialTimeout && up.maxConns == max(1, rt.MaxConnsPerBackend)
}

// upstream returns the pool of a backend, replacing one built for an older address or settings
// (requests on the old one finish; its idle connections are closed).
func (p *Proxy) upstream(be *balancer.Backend, rt *rtConfig) *upstream {
	if v, ok := p.upstreams.Load(be.ID); ok {
		if up := v.(*upstream); up.matches(be, rt) {
			return up
		}
	}
	up := newUpstream(be, rt)
	if old, loaded := p.upstreams.Swap(be.ID, up); loaded {
		old.(*upstream).close()
	}
	return up
}

// acquire returns an idle connection (reused) or a new one. A dial or TLS error is the backend's;
// errNoFreeConns is a local limit.
func (up *upstream) acquire(wait time.Duration) (*bconn, error) {
	if bc := up.popIdle(); bc != nil {
		return bc, nil
	}
	select {
	case up.slots <- struct{}{}:
	default:
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case up.slots <- struct{}{}:
		case bc := <-up.handoff:
			bc.reused = true
			return bc, nil
		case <-t.C:
			return nil, errNoFreeConns
		}
	}
	return up.dialInSlot()
}

// fresh returns a new connection (never an idle one): a retry after a reused one failed.
func (up *upstream) fresh(wait time.Duration) (*bconn, error) {
	select {
	case up.slots <- struct{}{}:
	case <-time.After(wait):
		return nil, errNoFreeConns
	}
	return up.dialInSlot()
}

// dialInSlot dials a connection into the slot the caller took; the slot is given back when the
// dial fails.
func (up *upstream) dialInSlot() (*bconn, error) {
	bc, err := up.dial()
	if err != nil {
		<-up.slots
		return nil, err
	}
	return bc, nil
}

func (up *upstream) popIdle() *bconn {
	now := time.Now()
	up.mu.Lock()
	for n := len(up.idle); n > 0; n = len(up.idle) {
		bc := up.idle[n-1]
		up.idle[n-1] = nil
		up.idle = up.idle[:n-1]
		if now.Sub(bc.idleAt) < maxIdleConnDuration {
			up.mu.Unlock()
			bc.reused = true
			return bc
		}
		up.mu.Unlock()
		bc.close()
		up.mu.Lock()
	}
	up.mu.Unlock()
	return nil
}

// connect dials the backend (TCP, then TLS for an https backend, verified). Pooled connections
// and tunnels both start here; a failure is the backend's.
func (up *upstream) connect() (net.Conn, error) {
	if up.tlsErr != nil {
		return nil, up.tlsErr
	}
	// No TCP keep-alive probes (see Listen): pooled connections live seconds, tunnels end with
	// their session's heartbeats.
	d := net.Dialer{Timeout: up.dialTimeout, KeepAlive: -1}
	nc, err := d.Dial("tcp", up.spec.Addr)
	if err != nil {
		return nil, err
	}
	if up.tlsConf == nil {
		return nc, nil
	}
	tc := tls.Client(nc, up.tlsConf)
	nc.SetDeadline(time.Now().Add(up.dialTimeout))
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	nc.SetDeadline(time.Time{})
	return tc, nil
}

func (up *upstream) dial() (*bconn, error) {
	nc, err := up.connect()
	if err != nil {
		return nil, err
	}
	bc := &bconn{up: up, nc: nc}
	if tc := socketOf(nc); tc != nil {
		bc.rc, _ = tc.SyscallConn()
	}
	bc.br = bufio.NewReaderSize(bc.nc, backendReadBufSize)
	bc.peekFn = bc.peek
	return bc, nil
}

// release returns a connection after a complete exchange (reusable) or closes it.
func (up *upstream) release(bc *bconn, reusable bool) {
	if !reusable || bc.aborted.Load() || bc.br.Buffered() > 0 {
		bc.close()
		return
	}
	bc.reused = false
	select {
	case up.handoff <- bc:
		return
	default:
	}
	bc.idleAt = time.Now()
	up.mu.Lock()
	if up.closed {
		up.mu.Unlock()
		bc.close()
		return
	}
	up.idle = append(up.idle, bc)
	up.mu.Unlock()
}

// sweep closes connections idle for longer than maxIdleConnDuration.
func (up *upstream) sweep(now time.Time) {
	up.mu.Lock()
	var stale []*bconn
	keep := up.idle[:0]
	for _, bc := range up.idle {
		if now.Sub(bc.idleAt) >= maxIdleConnDuration {
			stale = append(stale, bc)
		} else {
			keep = append(keep, bc)
		}
	}
	clear(up.idle[len(keep):])
	up.idle = keep
	up.mu.Unlock()
	for _, bc := range stale {
		bc.close()
	}
}

// close closes the idle connections and makes the pool keep no more.
func (up *upstream) close() {
	up.mu.Lock()
	up.closed = true
	idle := up.idle
	up.idle = nil
	up.mu.Unlock()
	for _, bc := range idle {
		bc.close()
	}
}

// setDeadline sets the read and write deadlines to t.
func (bc *bconn) setDeadline(t time.Time) {
	bc.setReadDeadline(t)
	bc.setWriteDeadline(t)
}

// setReadDeadline sets the read deadline to t (no timer update when it is t already).
func (bc *bconn) setReadDeadline(t time.Time) {
	if !t.Equal(bc.rdl) {
		bc.rdl = t
		bc.nc.SetReadDeadline(t)
	}
}

func (bc *bconn) setWriteDeadline(t time.Time) {
	if !t.Equal(bc.wdl) {
		bc.wdl = t
		bc.nc.SetWriteDeadline(t)
	}
}

// deadlineSlack is how much later than asked an exchange's deadlines may fall: a pooled connection
// used again within it keeps its deadline timers as they are (a timer update per request is a
// measurable share of a polling request's CPU).
func deadlineSlack(timeout time.Duration) time.Duration { return min(timeout/16, time.Second) }

// keepDeadline makes the read and write deadlines fall within [d, d+slack], moving each only when
// it does not already.
func (bc *bconn) keepDeadline(d time.Time, slack time.Duration) {
	late := d.Add(slack)
	if bc.rdl.Before(d) || bc.rdl.After(late) {
		bc.setReadDeadline(late)
	}
	if bc.wdl.Before(d) || bc.wdl.After(late) {
		bc.setWriteDeadline(late)
	}
}

// close closes the connection and frees its slot (once).
func (bc *bconn) close() {
	bc.closeMu.Do(func() {
		bc.nc.Close()
		<-bc.up.slots
	})
}

// abort closes the connection because the client went away; the request using it fails at once.
func (bc *bconn) abort() {
	bc.aborted.Store(true)
	bc.nc.Close()
}

// stale reports whether an idle connection was closed by the backend (or holds unexpected bytes):
// a non-blocking peek at the socket, so a request that must not be sent twice is never written to
// a connection that is already gone.
func (bc *bconn) stale() bool {
	if bc.br.Buffered() > 0 {
		return true
	}
	if bc.rc == nil {
		return false
	}
	if err := bc.rc.Read(bc.peekFn); err != nil {
		return true
	}
	if bc.peekErr != nil {
		return !errors.Is(bc.peekErr, syscall.EAGAIN)
	}
	return true // EOF (0) or bytes nobody asked for
}

func (bc *bconn) peek(fd uintptr) bool {
	bc.peekN, _, bc.peekErr = syscall.Recvfrom(int(fd), bc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true // never wait for readiness
}
