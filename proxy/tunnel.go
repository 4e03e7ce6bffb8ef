package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
)

// upgradeSlack bounds how long after a WebSocket opens the session's last polling requests (the
// in-flight GET and POST) may still arrive. A session polled later than that kept polling: its
// tunnel was a failed upgrade probe, and the session outlives it.
const upgradeSlack = time.Second

// maxUpgradeResponse bounds the backend's answer to an upgrade request.
const maxUpgradeResponse = 64 << 10

// tunnel is one WebSocket connection pair relayed by a goroutine pair (splice): a mirrored tunnel,
// or one whose sockets cannot be parked (TLS). Parked tunnels are the parker's records.
type tunnel struct {
	client, backend net.Conn
	backendID       string
	closeOnce       sync.Once
}

func (t *tunnel) close() {
	t.closeOnce.Do(func() {
		t.client.Close()
		t.backend.Close()
	})
}

// tunnelRegistry tracks live spliced tunnels (the parker keeps its own): hijacked connections
// escape fasthttp's Shutdown, so the proxy closes them itself. Tunnels open and close far less
// often than requests flow; a mutex is fine.
type tunnelRegistry struct {
	mu     sync.Mutex
	live   map[*tunnel]struct{}
	closed bool
	n      atomic.Int64
}

func newTunnelRegistry() *tunnelRegistry { return &tunnelRegistry{live: make(map[*tunnel]struct{})} }

func (r *tunnelRegistry) add(t *tunnel) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.live[t] = struct{}{}
	r.n.Add(1)
	return true
}

func (r *tunnelRegistry) remove(t *tunnel) {
	r.mu.Lock()
	if _, ok := r.live[t]; ok {
		delete(r.live, t)
		r.n.Add(-1)
	}
	r.mu.Unlock()
}

func (r *tunnelRegistry) len() int { return int(r.n.Load()) }

// closeAll closes every tunnel and refuses new ones.
func (r *tunnelRegistry) closeAll() int {
	r.mu.Lock()
	r.closed = true
	ts := make([]*tunnel, 0, len(r.live))
	for t := range r.live {
		ts = append(ts, t)
	}
	r.mu.Unlock()
	for _, t := range ts {
		t.close()
	}
	return len(ts)
}

// closeBackend closes up to limit tunnels of one backend (limit <= 0: all); for drain deadlines.
func (r *tunnelRegistry) closeBackend(id string, limit int) int {
	r.mu.Lock()
	var ts []*tunnel
	for t := range r.live {
		if t.backendID == id && (limit <= 0 || len(ts) < limit) {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
	for _, t := range ts {
		t.close()
	}
	return len(ts)
}

// placeTunnel places a WebSocket-only session (no sid) and tunnels it, trying another backend when
// one cannot be dialled. The session counts on its backend from placement on (its claim).
// engineIO tells whether the path is Engine.IO's (else only a failed dial counts against a backend).
func (p *Proxy) placeTunnel(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, engineIO bool) {
	if p.tunnelsFull(ctx, rt) {
		return
	}
	var tried [maxHandshakeTries]*balancer.Backend
	pick := p.newPick(ctx, rt, rq)
	for i := 0; i < maxHandshakeTries; i++ {
		pick.Exclude = tried[:i]
		be, reason := p.balancer.PlaceWithReason(&pick)
		if be == nil {
			if i > 0 {
				unavailable(ctx, fasthttp.StatusBadGateway, 0) // the backends tried could not be dialled
			} else {
				p.noBackend(ctx, reason)
			}
			return
		}
		tried[i] = be
		claim := be.Claim()
		conn, err := p.upstream(be, rt).connect()
		if err != nil {
			claim.Release()
			p.balancer.ReportFailure(be)
			p.log.Warn("backend unreachable", zap.String("backend", be.ID), zap.Error(err))
			continue
		}
		p.upgrade(ctx, rt, rq, be, conn, nil, true, claim, engineIO)
		return
	}
	unavailable(ctx, fasthttp.StatusBadGateway, 0)
}

// tunnel connects an upgrade request that carries a sid to its owner. An owner that cannot be
// dialled loses the session: the client gets Engine.IO's raw 400 and starts over. known tells
// whether the ledger has the session (else it is adopted once the backend answers 101).
func (p *Proxy) tunnel(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, be *balancer.Backend, rawSID []byte, known bool) {
	if p.tunnelsFull(ctx, rt) {
		return // the session goes on polling
	}
	conn, err := p.upstream(be, rt).connect()
	if err != nil {
		p.balancer.ReportFailure(be)
		p.ledger.end(rawSID)
		p.log.Warn("owner unreachable", zap.String("backend", be.ID), sidField(rawSID), zap.Error(err))
		p.metrics.SIDUnknown()
		sidUnknown(ctx, true)
		return
	}
	p.upgrade(ctx, rt, rq, be, conn, rawSID, known, balancer.Claim{}, true)
}

// upgrade forwards the upgrade request on conn, relays the backend's answer, and on 101 hijacks the
// client connection and relays bytes both ways (parked, or through splice for a mirrored tunnel or
// a non-TCP backend) until either side ends. claim is the WebSocket-only session's (rawSID nil);
// upgrade takes it over: the tunnel holds it until it closes, or it is released at once.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, be *balancer.Backend, conn net.Conn, rawSID []byte, known bool, claim balancer.Claim, engineIO bool) {
	defer claim.Release() // a no-op once the tunnel's entry holds it
	ho := headOpts{upgrade: true, bodyLen: -2, isTLS: ctx.IsTLS(), trusted: rt.trusted, peer: rq.peer, clientAddr: rq.client}
	hp := headPool.Get().(*[]byte)
	req := appendHead((*hp)[:0], &ctx.Request.Header, &rq.scan, &ho)
	conn.SetDeadline(time.Now().Add(p.upgradeTimeout(rt)))
	_, err := conn.Write(req)
	*hp = req[:0]
	headPool.Put(hp)
	if err != nil {
		conn.Close()
		p.upgradeFailed(ctx, be, rawSID, err, engineIO)
		return
	}
	br := bufio.NewReaderSize(conn, 4096)
	head, err := readHead(br)
	if err != nil {
		conn.Close()
		p.upgradeFailed(ctx, be, rawSID, err, engineIO)
		return
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		// Relay any other answer as is (Engine.IO's raw 400 for a dead sid, 403, ...).
		err := ctx.Response.Read(bufio.NewReader(io.MultiReader(bytes.NewReader(head), io.LimitReader(br, maxUpgradeResponse))))
		conn.Close()
		if err != nil {
			p.upgradeFailed(ctx, be, rawSID, err, false) // it answered: reachable
			return
		}
		stripResponse(&ctx.Response.Header, false)
		if ctx.Response.StatusCode() == fasthttp.StatusBadRequest && rawSID != nil {
			p.ledger.end(rawSID)
		}
		ctx.SetConnectionClose()
		return
	}
	conn.SetDeadline(time.Time{})
	if rawSID != nil && !known {
		p.ledger.adopt(rawSID, be, rt.SessionTTL+rt.TTLMargin) // the backend took it: a live session
	}
	var early []byte
	if n := br.Buffered(); n > 0 {
		early, _ = br.Peek(n) // frames the backend sent right after 101 (WebSocket-only open packet)
	}
	sid := string(rawSID)
	clientConn := ctx.Conn() // closing it closes the socket and releases the listener's limits
	clientTCP := plainTCPOf(clientConn)
	if rq.guard != nil {
		rq.guard.off() // from now on the bytes are the tunnel's
	}
	ctx.HijackSetNoResponse(true)
	entry := p.ledger.openTunnel(be, claim, sid, p.now())
	claim = balancer.Claim{} // the entry holds it now
	ctx.Hijack(func(c net.Conn) {
		// Close the connection itself: closing fasthttp's hijacked wrapper does nothing.
		client := clientConn
		var mt MirrorTunnel
		if p.mirror != nil {
			mt = p.mirror.Tunnel(sid, &ctx.Request, headField(head, "Sec-WebSocket-Extensions"))
		}
		// An unmirrored TCP tunnel is parked: no goroutine, buffer or Go connection while it is idle.
		if backendTCP, ok := conn.(*net.TCPConn); ok && clientTCP != nil && mt == nil {
			if pk := p.parker(); pk != nil {
				// The hijack handler returns: the server keeps hijacked connections open (KeepHijackedConns).
				p.parkTunnel(pk, c, client, clientTCP, backendTCP, append(head, early...), entry, rt.TunnelIdleTimeout, be.ID)
				return
			}
		}
		t := &tunnel{client: client, backend: conn, backendID: be.ID}
		if !p.tunnels.add(t) {
			conn.Close()
			client.Close() // the server keeps hijacked connections (KeepHijackedConns): close it here
			if mt != nil {
				mt.Close()
			}
			entry.close()
			return
		}
		p.splice(t, c, clientTCP, head, early, rt.TunnelIdleTimeout, mt)
		t.close()
		p.tunnels.remove(t)
		entry.close()
	})
}

// parkTunnel relays the 101 head and early frames to the client, forwards what the server's reader
// holds past the upgrade request, then hands both sockets' descriptors to the parker and closes
// Go's connections (the descriptors stay open: duplicates). The listener's count of the client
// connection moves to the parked tunnel, which gives it back when it closes.
func (p *Proxy) parkTunnel(pk *parker, c, client net.Conn, clientTCP, backendTCP *net.TCPConn, head []byte, entry *tunnelEntry, idle time.Duration, backendID string) {
	// Counted from before the client can see its 101 until the parker counts it (tunnelCount).
	p.parking.Add(1)
	defer p.parking.Add(-1)
	fail := func(err error) {
		client.Close()
		backendTCP.Close()
		entry.close()
		if err != nil {
			p.log.Warn("tunnel parking failed", zap.String("backend", backendID), zap.Error(err))
		}
	}
	if _, err := c.Write(head); err != nil || !drainBuffered(c, clientTCP, backendTCP, nil) {
		fail(nil)
		return
	}
	cfd, err := dupSocket(clientTCP)
	if err != nil {
		fail(err)
		return
	}
	bfd, err := dupSocket(backendTCP)
	if err != nil {
		syscall.Close(cfd)
		fail(err)
		return
	}
	hold := detachHold(client)
	client.Close()
	backendTCP.Close()
	if err := pk.park(cfd, bfd, idle, entry, hold); err != nil {
		syscall.Close(cfd)
		syscall.Close(bfd)
		hold.release()
		entry.close()
	}
}

// parkedEnded is the bookkeeping of a parked tunnel that closed (on the parker's goroutine).
func (p *Proxy) parkedEnded(entry *tunnelEntry, hold *connHold) {
	hold.release()
	if entry != nil {
		entry.close()
	}
}

// tunnelCount is the number of live tunnels, spliced and parked (or being parked: read before the
// parker's count, which takes a tunnel over before it leaves parking, so none is missed).
func (p *Proxy) tunnelCount() int {
	n := int(p.parking.Load()) + p.tunnels.len()
	if pk := p.park.Load(); pk != nil {
		n += pk.len()
	}
	return n
}

// closeTunnels closes up to limit tunnels of a backend (limit <= 0: all), spliced first.
func (p *Proxy) closeTunnels(id string, limit int) int {
	k := p.tunnels.closeBackend(id, limit)
	if pk := p.park.Load(); pk != nil && (limit <= 0 || k < limit) {
		rest := 0
		if limit > 0 {
			rest = limit - k
		}
		k += pk.closeBackend(id, rest)
	}
	return k
}

// upgradeFailed answers an upgrade whose backend gave no usable answer. counts tells whether the
// backend is to blame: on an Engine.IO path it must answer; elsewhere an application may leave an
// upgrade it does not serve unanswered or close it (Node does), which is the client's problem.
func (p *Proxy) upgradeFailed(ctx *fasthttp.RequestCtx, be *balancer.Backend, rawSID []byte, err error, counts bool) {
	if counts {
		p.balancer.ReportFailure(be)
	}
	p.log.Warn("upgrade failed", zap.String("backend", be.ID), sidField(rawSID), zap.Error(err))
	if rawSID != nil {
		p.ledger.end(rawSID)
		p.metrics.SIDUnknown()
		sidUnknown(ctx, true)
		return
	}
	if isTimeout(err) {
		unavailable(ctx, fasthttp.StatusGatewayTimeout, 0)
		return
	}
	unavailable(ctx, fasthttp.StatusBadGateway, 0)
}

// readHead reads a response head (status line and headers, through the blank line) byte-exact.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		head = append(head, line...)
		if len(head) > maxUpgradeResponse {
			return nil, errors.New("upgrade response head too large")
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return head, nil
		}
	}
}

// splice relays the 101 head and early frames to the client, then copies both ways. It returns when
// both directions ended, one side failed, or the tunnel was idle both ways for idle.
func (p *Proxy) splice(t *tunnel, c net.Conn, clientTCP *net.TCPConn, head, early []byte, idle time.Duration, mt MirrorTunnel) {
	if mt != nil {
		defer mt.Close()
	}
	if _, err := c.Write(append(head, early...)); err != nil {
		return
	}
	if mt != nil && len(early) > 0 {
		mt.FromServer(early)
	}
	clientSide := io.ReadWriter(c)
	if clientTCP != nil {
		// Bytes fasthttp buffered past the upgrade request are read through c; after them, read the
		// socket itself so the kernel can splice(2) it.
		if !drainBuffered(c, clientTCP, t.backend, mt) {
			return
		}
		clientSide = clientTCP
	}
	var active atomic.Int64
	active.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		if mt != nil {
			pipeTee(clientSide, t.backend, idle, &active, mt.FromServer)
		} else {
			pipe(clientSide, t.backend, idle, &active)
		}
		closeWrite(clientSide)
		close(done)
	}()
	if mt != nil {
		pipeTee(t.backend, clientSide, idle, &active, mt.FromClient)
	} else {
		pipe(t.backend, clientSide, idle, &active)
	}
	closeWrite(t.backend)
	select {
	case <-done:
	case <-time.After(idle):
	}
	t.close()
	<-done
}

// drainBuffered forwards what the server's reader already holds: a read through c with an expired
// socket deadline returns buffered bytes, then a timeout without consuming anything more.
func drainBuffered(c net.Conn, raw *net.TCPConn, dst net.Conn, mt MirrorTunnel) bool {
	raw.SetReadDeadline(time.Unix(1, 0))
	defer raw.SetReadDeadline(time.Time{})
	var buf [2048]byte
	for {
		n, err := c.Read(buf[:])
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return false
			}
			if mt != nil {
				mt.FromClient(buf[:n])
			}
		}
		if err != nil {
			return errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
}

// pipe copies src to dst (splice(2) between TCP sockets) until EOF or an error. A read deadline
// renews while either direction moves; both idle for idle ends it.
func pipe(dst io.Writer, src io.Reader, idle time.Duration, active *atomic.Int64) {
	dl, _ := src.(interface{ SetReadDeadline(time.Time) error })
	for {
		if dl != nil && idle > 0 {
			dl.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := io.Copy(dst, src)
		if n > 0 {
			active.Store(time.Now().UnixNano())
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if time.Since(time.Unix(0, active.Load())) >= idle {
			return
		}
	}
}

func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// headField returns the value of the first field called name (any case) in a raw response head,
// trimmed; nil when there is none.
func headField(head []byte, name string) []byte {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			i = len(head) - 1
		}
		line := bytes.TrimRight(head[:i+1], "\r\n")
		head = head[i+1:]
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}
