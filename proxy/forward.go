package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// The forwarder: one HTTP/1.1 exchange with a backend over a pooled connection. It writes the
// request head (built from the client's fields, see appendHead) and a buffered body in one write,
// reads the answer's head with fasthttp's parser, and either reads the body whole into ctx.Response
// (Engine.IO answers the proxy must inspect, and small bodies: fasthttp then sends head and body in
// one write) or streams it through a bounded buffer. It alone decides what is retried (invariant 9)
// and what counts against the backend (invariant 8).

// Body bounds.
const (
	// smallBody is the largest body of known length read whole when nothing needs to inspect it.
	smallBody = 64 << 10
	// defaultReadTimeout bounds the arrival of a request body after its head (proxy.read_timeout).
	defaultReadTimeout = 60 * time.Second
	// defaultClientWriteTimeout bounds a write to the client without progress (proxy.write_timeout).
	defaultClientWriteTimeout = 30 * time.Second
	streamBufSize             = 32 << 10
)

// inspectLimit is the largest Engine.IO answer read whole (larger ones are streamed uninspected).
func inspectLimit(rt *rtConfig) int { return max(rt.MaxBodyBytes, 1<<20) + 1<<16 }

// decodedLimit bounds an inspected answer once decompressed (sticky.Decompress).
func decodedLimit(rt *rtConfig) int { return 4*rt.MaxBodyBytes + 1<<16 }

// failKind says whose fault a failed exchange was, and so what the client gets and what counts.
type failKind uint8

const (
	failBackend  failKind = iota + 1 // dial, TLS, reset or close before any answer byte: counts against the backend
	failTimeout                      // no answer byte within upstream_timeout: counts; never retried
	failProtocol                     // the backend answered what cannot be relayed (a 101, a malformed head): 502
	failLocal                        // a local limit (no free connection): 503, not the backend's
	failClient                       // the client's request body failed or is over the limit: 4xx
	failAborted                      // the client went away: nothing to answer
)

// fwdError is a failed exchange. Nothing was relayed to the client yet.
type fwdError struct {
	kind   failKind
	status int // for failClient
	err    error
}

func (e *fwdError) Error() string { return e.err.Error() }
func (e *fwdError) Unwrap() error { return e.err }

// counts reports whether the failure is the backend's own (passive ejection).
func (e *fwdError) counts() bool { return e.kind == failBackend || e.kind == failTimeout }

func failOf(err error) *fwdError {
	var fe *fwdError
	if errors.As(err, &fe) {
		return fe
	}
	return &fwdError{kind: failBackend, err: err}
}

var (
	err101         = errors.New("backend answered 101 to a request that asked for no upgrade")
	errClientGone  = errors.New("client went away")
	errBodyTooBig  = errors.New("request body over proxy.max_body_bytes")
	errBadResponse = errors.New("backend response cannot be relayed")
)

// request is the state of one client request across routing and forwarding.
type request struct {
	scan    reqScan
	peer    netip.Addr
	client  netip.Addr
	body    []byte    // the whole body, when read (see prepareBody)
	stream  io.Reader // the body to stream, when not read whole
	bodyLen int64     // Content-Length sent, -1 chunked, -2 no body
	bodyBuf *[]byte   // pooled storage of body
	header  *fasthttp.RequestHeader
	guard   *guardConn
	isHead  bool
	unsent  *sticky.Order // a polling POST's session, until the backend has it (Order.Sent)
}

// sent marks a polling POST as read by its backend (or as never to be): the session's GETs waiting
// to be sent go (sticky.Order). Once per request; a no-op otherwise.
func (rq *request) sent() {
	if rq.unsent != nil {
		rq.unsent.Sent()
		rq.unsent = nil
	}
}

// fwdOpts says how one request is forwarded.
type fwdOpts struct {
	idempotent bool // a reused connection that fails before any answer byte is retried on a fresh one
	inspect    bool // read an Engine.IO answer whole (sid learning, close packets, mirroring)
	dropAE     bool // send no Accept-Encoding (a handshake)
	watch      bool // end the backend's request when the client goes away (long-polls)
}

var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// prepareBody decides how the request body travels: read whole (buffer, or a small body of known
// length) or streamed as it arrives. It returns a 4xx status for a body over the limit or that
// failed to arrive (the connection is then closed).
func (p *Proxy) prepareBody(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, buffer bool) int {
	cl := ctx.Request.Header.ContentLength()
	rs := ctx.RequestBodyStream()
	switch {
	case cl == -2 || rs == nil && cl <= 0:
		rq.bodyLen = -2
		if cl == 0 {
			rq.bodyLen = 0
		}
		return 0
	case cl > rt.MaxBodyBytes:
		ctx.SetConnectionClose()
		return fasthttp.StatusRequestEntityTooLarge
	case !buffer && (cl < 0 || cl > smallBody):
		rq.stream, rq.bodyLen = rs, int64(cl)
		return 0
	}
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	limit := rt.MaxBodyBytes
	if cl >= 0 && cap(b) < cl {
		b = make([]byte, 0, min(cl, 64<<10)) // grows with what arrives, never to a declared size at once
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rs.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			*bp = b[:0]
			bodyPool.Put(bp)
			ctx.SetConnectionClose()
			return fasthttp.StatusRequestEntityTooLarge
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b[:0]
			bodyPool.Put(bp)
			ctx.SetConnectionClose()
			if isTimeout(err) {
				return fasthttp.StatusRequestTimeout
			}
			return fasthttp.StatusBadRequest
		}
	}
	*bp = b
	rq.bodyBuf, rq.body, rq.bodyLen = bp, b, int64(len(b))
	ctx.Request.SetBodyRaw(b) // Body() for close-packet checks and mirroring
	return 0
}

// releaseBody returns the pooled body storage (after the handler: nothing reads it afterwards).
func (rq *request) releaseBody() {
	if rq.bodyBuf != nil {
		if cap(*rq.bodyBuf) <= 1<<20 {
			*rq.bodyBuf = (*rq.bodyBuf)[:0]
			bodyPool.Put(rq.bodyBuf)
		}
		rq.bodyBuf, rq.body = nil, nil
	}
}

// fwdResult describes a successful exchange.
type fwdResult struct {
	buffered bool // ctx.Response holds the whole body (else it streams, or there is none)
}

// forward sends the request to be and puts its answer into ctx.Response. A non-nil error is a
// *fwdError: nothing was relayed to the client.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, rt *rtConfig, be *balancer.Backend, rq *request, fo fwdOpts) (fwdResult, error) {
	up := p.upstream(be, rt)
	hp := headPool.Get().(*[]byte)
	defer headPool.Put(hp)
	ho := headOpts{dropAE: fo.dropAE, bodyLen: rq.bodyLen, isTLS: ctx.IsTLS(), trusted: rt.trusted, peer: rq.peer, clientAddr: rq.client,
		trailers: rq.scan.hasTE && rq.stream == nil}
	head := appendHead((*hp)[:0], &ctx.Request.Header, &rq.scan, &ho)
	*hp = head[:0]
	be.InFlight.Add(1)
	defer be.InFlight.Add(-1)
	for attempt := 0; ; attempt++ {
		var bc *bconn
		var err error
		if attempt == 0 {
			bc, err = up.acquire(p.connWait)
		} else {
			bc, err = up.fresh(p.connWait)
		}
		if err != nil {
			return fwdResult{}, acquireFailure(err)
		}
		// A request that must not be sent twice never goes to a pooled connection the backend has
		// already closed: look first (the only retry it gets).
		for bc.reused && (!fo.idempotent || rq.stream != nil) && bc.stale() {
			bc.close()
			if bc, err = up.acquire(p.connWait); err != nil {
				return fwdResult{}, acquireFailure(err)
			}
		}
		res, retry, err := p.exchange(ctx, rt, bc, rq, fo, head)
		if err == nil {
			return res, nil
		}
		if retry && attempt == 0 {
			continue
		}
		return fwdResult{}, err
	}
}

// acquireFailure is whose fault a failure to get a backend connection is: the local connection
// limit's, or the backend's (a dial or TLS error).
func acquireFailure(err error) *fwdError {
	if errors.Is(err, errNoFreeConns) {
		return &fwdError{kind: failLocal, err: err}
	}
	return &fwdError{kind: failBackend, err: err}
}

// connFate says what becomes of a backend connection after an exchange.
type connFate uint8

const (
	fateClose  connFate = iota // closed (failed, close-delimited, or the backend said so)
	fateReuse                  // back to the pool
	fateStream                 // the body streams: the stream releases it
)

// exchange runs one request on bc. retry reports a reused connection that failed before any
// answer byte (and before any byte was written, unless the request is idempotent): it is closed,
// and the request may go again on a fresh one. The client-abort watch (fo.watch) covers the wait
// for the answer and is off before the connection goes back to the pool.
func (p *Proxy) exchange(ctx *fasthttp.RequestCtx, rt *rtConfig, bc *bconn, rq *request, fo fwdOpts, head []byte) (fwdResult, bool, error) {
	var w *watchedConn
	if fo.watch && rq.guard != nil {
		w = p.watch(rq.guard)
	}
	res, fate, retry, err := p.roundTrip(ctx, rt, bc, rq, fo, head, w)
	if w != nil {
		w.disarm()
	}
	if err != nil && bc.aborted.Load() {
		err, retry = &fwdError{kind: failAborted, err: errClientGone}, false
	}
	switch fate {
	case fateReuse:
		bc.up.release(bc, true)
	case fateClose:
		bc.close()
	}
	return res, retry, err
}

// armDelay is how long a watched request waits for its answer before the client-abort watch is
// armed: an answer that is there at once (most polls while messages flow) costs no epoll_ctl, and a
// client that leaves a pending long-poll is still noticed at once after it.
const armDelay = 2 * time.Millisecond

// awaitAnswer waits for the first byte of the answer (deadline is the exchange's); with a watch,
// the watch is armed once the answer is not there within armDelay.
func awaitAnswer(bc *bconn, w *watchedConn, deadline time.Time) error {
	if w == nil {
		_, err := bc.br.Peek(1)
		return err
	}
	early := time.Now().Add(armDelay)
	if keep := bc.rdl; early.Before(deadline) {
		bc.setReadDeadline(early)
		_, err := bc.br.Peek(1)
		bc.setReadDeadline(keep)
		if err == nil || !isTimeout(err) {
			return err
		}
	}
	w.arm(bc)
	_, err := bc.br.Peek(1)
	return err
}

// roundTrip writes the request on bc and reads the answer's head and, when it is read whole, body.
func (p *Proxy) roundTrip(ctx *fasthttp.RequestCtx, rt *rtConfig, bc *bconn, rq *request, fo fwdOpts, head []byte, w *watchedConn) (fwdResult, connFate, bool, error) {
	reused := bc.reused
	deadline := time.Now().Add(rt.UpstreamTimeout)
	bc.keepDeadline(deadline, deadlineSlack(rt.UpstreamTimeout))
	n, err := writeRequest(bc, rq, head, rt.MaxBodyBytes)
	if err != nil {
		rq.sent()
		if fe, ok := err.(*fwdError); ok {
			return fwdResult{}, fateClose, false, fe
		}
		retry := reused && (n == 0 || fo.idempotent && rq.stream == nil)
		return fwdResult{}, fateClose, retry, &fwdError{kind: failBackend, err: err}
	}
	resp := &ctx.Response
	if w == nil {
		// Not a long-poll: the backend answers at once (a POST's "ok", a handshake). A yield lets the
		// goroutines that are ready run first, and the read after it mostly finds the answer there:
		// no read that fails with EAGAIN, no park and netpoller wake (docs/bench/findings.md).
		runtime.Gosched()
	}
	err = awaitAnswer(bc, w, deadline)
	// A POST counts as sent once its answer begins: a backend reads requests on different
	// connections in no fixed order (Node handles one written later on another connection first,
	// now and then), so only its answer says it has the POST.
	rq.sent()
	if err != nil {
		if isTimeout(err) {
			return fwdResult{}, fateClose, false, &fwdError{kind: failTimeout, err: err}
		}
		retry := reused && fo.idempotent && rq.stream == nil
		return fwdResult{}, fateClose, retry, &fwdError{kind: failBackend, err: err}
	}
	for {
		if err := resp.Header.Read(bc.br); err != nil {
			return fwdResult{}, fateClose, false, &fwdError{kind: failProtocol, err: fmt.Errorf("%w: %w", errBadResponse, err)}
		}
		status := resp.Header.StatusCode()
		if status == fasthttp.StatusSwitchingProtocols {
			// never back into the pool: what follows is another protocol
			return fwdResult{}, fateClose, false, &fwdError{kind: failProtocol, err: err101}
		}
		if status >= 200 || status < 100 {
			break
		}
		// 100 Continue, 102, 103: interim answers are consumed
	}
	keep := fateReuse
	if resp.Header.ConnectionClose() {
		keep = fateClose
	}
	stripResponse(&resp.Header, false)
	cl := resp.Header.ContentLength()
	status := resp.Header.StatusCode()
	if rq.isHead || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		return fwdResult{}, keep, false, nil
	}
	limit := smallBody
	if fo.inspect {
		limit = inspectLimit(rt)
	}
	if fo.inspect && cl < 0 || cl >= 0 && cl <= limit {
		if err := resp.ReadBody(bc.br, limit); err != nil {
			return fwdResult{}, fateClose, false, &fwdError{kind: failProtocol, err: fmt.Errorf("%w: body: %w", errBadResponse, err)}
		}
		if cl == -1 {
			if err := resp.Header.ReadTrailer(bc.br); err != nil {
				return fwdResult{}, fateClose, false, &fwdError{kind: failProtocol, err: fmt.Errorf("%w: trailer: %w", errBadResponse, err)}
			}
			resp.Header.SetTrailerBytes(nil) // a whole body carries its trailers in the head
		}
		if cl == -2 {
			keep = fateClose
		}
		return fwdResult{buffered: true}, keep, false, nil
	}
	p.stream(ctx, rt, bc, cl, keep == fateClose)
	return fwdResult{}, fateStream, false, nil
}

// writeRequest writes the head and a read body in one write, then streams a body that was not
// read (up to maxBody bytes). n counts the bytes written; a *fwdError is the client's body failing.
func writeRequest(bc *bconn, rq *request, head []byte, maxBody int) (int, error) {
	buf := head
	if len(rq.body) > 0 && len(rq.body) <= smallBody {
		buf = append(head, rq.body...) // head has spare capacity in its pooled buffer
	}
	n, err := bc.nc.Write(buf)
	if err != nil {
		return n, err
	}
	if len(rq.body) > 0 && len(buf) == len(head) {
		k, err := bc.nc.Write(rq.body)
		if n += k; err != nil {
			return n, err
		}
	}
	if rq.stream == nil {
		return n, nil
	}
	k, err := copyBody(bc.nc, rq.stream, rq.bodyLen, int64(maxBody), rq.header)
	return n + int(k), err
}

// appendTrailers appends the trailer fields a client sent after a chunked body.
func appendTrailers(dst []byte, h *fasthttp.RequestHeader) []byte {
	for k := range h.Trailers() {
		if v := h.PeekBytes(k); len(v) > 0 {
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, v...)
			dst = append(dst, "\r\n"...)
		}
	}
	return dst
}

// copyBody streams a request body to the backend: n bytes when n >= 0, else chunked until the
// client's stream ends, then the client's trailer fields (from h). A client failure (or a body over
// max) is a *fwdError of kind failClient.
func copyBody(dst io.Writer, src io.Reader, n, max int64, h *fasthttp.RequestHeader) (int64, error) {
	bp := streamPool.Get().(*[]byte)
	defer streamPool.Put(bp)
	buf := *bp
	var total int64
	for n < 0 || total < n {
		want := buf
		if n >= 0 && int64(len(want)) > n-total {
			want = want[:n-total]
		}
		k, rerr := src.Read(want)
		if k > 0 {
			total += int64(k)
			if total > max {
				return total, &fwdError{kind: failClient, status: fasthttp.StatusRequestEntityTooLarge, err: errBodyTooBig}
			}
			var werr error
			if n < 0 {
				_, werr = fmt.Fprintf(dst, "%x\r\n", k)
				if werr == nil {
					_, werr = dst.Write(want[:k])
				}
				if werr == nil {
					_, werr = io.WriteString(dst, "\r\n")
				}
			} else {
				_, werr = dst.Write(want[:k])
			}
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			if n >= 0 && total < n {
				return total, &fwdError{kind: failClient, status: fasthttp.StatusBadRequest, err: io.ErrUnexpectedEOF}
			}
			break
		}
		if rerr != nil {
			status := fasthttp.StatusBadRequest
			if isTimeout(rerr) {
				status = fasthttp.StatusRequestTimeout
			}
			return total, &fwdError{kind: failClient, status: status, err: rerr}
		}
	}
	if n < 0 {
		end := append(appendTrailers([]byte("0\r\n"), h), "\r\n"...)
		if _, err := dst.Write(end); err != nil {
			return total, err
		}
	}
	return total, nil
}

var streamPool = sync.Pool{New: func() any { b := make([]byte, streamBufSize); return &b }}

// respStream relays a backend body to the client as it arrives: fasthttp copies from it through
// its own small buffer. Each read renews the backend's read deadline and the client's write
// deadline, so a stream lasts as long as bytes move (server-sent events, downloads); Close puts
// the connection back when the body was read to its end.
type respStream struct {
	ctx       *fasthttp.RequestCtx
	wTimeout  time.Duration
	bc        *bconn
	resp      *fasthttp.ResponseHeader
	upTimeout time.Duration
	remaining int64 // length mode: bytes left
	chunked   bool
	chunks    chunkedReader
	untilEOF  bool
	done      bool
	reusable  bool
	err       error
}

// stream sets ctx.Response to relay the body of bc's answer (cl as fasthttp parsed it).
func (p *Proxy) stream(ctx *fasthttp.RequestCtx, rt *rtConfig, bc *bconn, cl int, backendClose bool) {
	s := &respStream{ctx: ctx, wTimeout: rt.writeTimeout(), bc: bc, resp: &ctx.Response.Header, upTimeout: rt.UpstreamTimeout, reusable: !backendClose}
	size := -1
	switch {
	case cl >= 0:
		s.remaining, size = int64(cl), cl
	case cl == -1:
		s.chunked = true
		s.chunks = chunkedReader{br: bc.br, trailer: ctx.Response.Header.ReadTrailer}
	default:
		s.untilEOF, s.reusable = true, false
	}
	ctx.SetWriteDeadline(time.Now().Add(s.wTimeout))
	ctx.Response.SetBodyStream(s, size)
	// The head goes out before the body: an event stream's client sees it at once, and a body cut
	// short (a backend lying about its length) reaches the client as a cut body, not as nothing.
	ctx.Response.ImmediateHeaderFlush = true
}

// Read implements io.Reader.
func (s *respStream) Read(b []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if s.err != nil {
		return 0, s.err
	}
	now := time.Now()
	s.bc.setReadDeadline(now.Add(s.upTimeout))
	s.ctx.SetWriteDeadline(now.Add(s.wTimeout))
	var n int
	var err error
	switch {
	case s.untilEOF:
		n, err = s.bc.br.Read(b)
		if err == io.EOF {
			s.done = true
			return n, io.EOF
		}
	case s.chunked:
		n, err = s.chunks.Read(b)
		if err == io.EOF {
			s.done = true
			return n, io.EOF
		}
	default:
		if s.remaining == 0 {
			s.done = true
			return 0, io.EOF
		}
		if int64(len(b)) > s.remaining {
			b = b[:s.remaining]
		}
		n, err = s.bc.br.Read(b)
		s.remaining -= int64(n)
		if err == nil && s.remaining == 0 {
			s.done = true
			return n, io.EOF
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

// Close implements io.Closer (fasthttp calls it once the answer is written, or abandoned).
func (s *respStream) Close() error {
	s.bc.up.release(s.bc, s.done && s.reusable && s.err == nil)
	return nil
}

// chunkedReader decodes a chunked body from br; the trailer section goes to trailer (fasthttp's
// parser, into the answer's head, which fasthttp then sends as trailers).
type chunkedReader struct {
	br        *bufio.Reader
	trailer   func(*bufio.Reader) error
	remaining int64 // bytes left in the current chunk
	done      bool
}

// Read implements io.Reader: io.EOF after the last chunk and the trailer section.
func (c *chunkedReader) Read(b []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.remaining == 0 {
		size, err := readChunkSize(c.br)
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := c.trailer(c.br); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
			c.done = true
			return 0, io.EOF
		}
		c.remaining = size
	}
	if int64(len(b)) > c.remaining {
		b = b[:c.remaining]
	}
	n, err := c.br.Read(b)
	c.remaining -= int64(n)
	if err == nil && c.remaining == 0 {
		err = readCRLF(c.br)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// maxChunkLine bounds a chunk-size line (extensions included).
const maxChunkLine = 4096

// readChunkSize reads a chunk-size line ("1a;ext=v\r\n") and returns the size.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, errors.New("chunk size line too long")
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(line) > maxChunkLine {
		return 0, errors.New("chunk size line too long")
	}
	return parseChunkSize(line)
}

// parseChunkSize parses a chunk-size line as read (with its line end).
func parseChunkSize(line []byte) (int64, error) {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	line = line[:n]
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 { // at most 2^60-1: no overflow
		return 0, fmt.Errorf("bad chunk size %q", line)
	}
	v, err := strconv.ParseInt(string(line), 16, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad chunk size %q", line)
	}
	return v, nil
}

func readCRLF(br *bufio.Reader) error {
	c, err := br.ReadByte()
	if err == nil && c == '\r' {
		c, err = br.ReadByte()
	}
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if c != '\n' {
		return errors.New("missing CRLF after chunk")
	}
	return nil
}

// answerFailure answers a request whose exchange failed, as far as the proxy's own answer goes:
// callers answering Engine.IO-style (a lost session) do so before this.
func answerFailure(ctx *fasthttp.RequestCtx, fe *fwdError, retryAfter int) {
	switch fe.kind {
	case failLocal:
		unavailable(ctx, fasthttp.StatusServiceUnavailable, max(1, retryAfter))
	case failTimeout:
		unavailable(ctx, fasthttp.StatusGatewayTimeout, 0)
	case failClient:
		plainError(ctx, fe.status)
		ctx.SetConnectionClose()
	case failAborted:
		resetResponse(ctx)
		ctx.SetStatusCode(statusClientClosed)
		ctx.SetConnectionClose()
	default:
		unavailable(ctx, fasthttp.StatusBadGateway, 0)
	}
}

// statusClientClosed is what metrics record for a request whose client went away (as nginx logs
// it); the client never sees it.
const statusClientClosed = 499

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || errors.Is(err, fasthttp.ErrTimeout)
}
