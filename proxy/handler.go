package proxy

import (
	"bytes"
	"errors"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// Kind is what a request is, for metrics and logs.
type Kind uint8

// Request kinds.
const (
	KindPoll      Kind = iota // a polling GET or POST of a session
	KindHandshake             // a polling handshake (no sid)
	KindUpgrade               // a WebSocket upgrade, with or without a sid
	KindOther                 // any other request
	NumKinds                  // the number of kinds, for arrays indexed by Kind
)

var kindNames = [NumKinds]string{"poll", "handshake", "upgrade", "other"}

// String returns the kind's metric label: poll, handshake, upgrade or other.
func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "other"
}

// Handle is the fasthttp handler: check, classify, route, forward or tunnel.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx) {
	rt := p.rt.Load()
	start := p.now()
	var rq request
	rq.header = &ctx.Request.Header
	if rq.guard = guardOf(ctx.Conn()); rq.guard != nil {
		rq.guard.handling()
	}
	kind := p.serve(ctx, rt, &rq)
	rq.releaseBody()
	status := ctx.Response.StatusCode()
	if kind == KindUpgrade && ctx.Hijacked() {
		status = fasthttp.StatusSwitchingProtocols
	}
	p.metrics.Request(kind, status, p.now().Sub(start))
}

// serve handles one request and returns its kind.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request) Kind {
	h := &ctx.Request.Header
	if p.takeOversize(h) {
		// the whole over-limit body was already there: fasthttp ran the handler anyway
		refuse(ctx, rq, fasthttp.StatusRequestEntityTooLarge, true)
		return KindOther
	}
	scanRequest(h, &rq.scan)
	switch {
	case rq.scan.bad != 0:
		refuse(ctx, rq, rq.scan.bad, true)
		return KindOther
	case h.IsConnect():
		refuse(ctx, rq, fasthttp.StatusMethodNotAllowed, true)
		return KindOther
	case !h.IsHTTP11() && !bytes.Equal(h.Protocol(), []byte("HTTP/1.0")):
		refuse(ctx, rq, fasthttp.StatusHTTPVersionNotSupported, true)
		return KindOther
	case !h.IsHTTP11() && len(h.Host()) == 0:
		refuse(ctx, rq, fasthttp.StatusBadRequest, true)
		return KindOther
	}
	uri := h.RequestURI()
	if len(uri) == 0 || uri[0] != '/' {
		var arr [512]byte
		authority, origin, ok := absoluteForm(arr[:0], uri)
		if !ok {
			refuse(ctx, rq, fasthttp.StatusBadRequest, false)
			return KindOther
		}
		// The target's authority is the request's host (RFC 9112 3.2.2); the scheme is the backend's.
		h.SetHostBytes(authority)
		ctx.Request.SetRequestURIBytes(origin)
		uri = h.RequestURI()
	}
	if bytes.IndexByte(uri, '#') >= 0 {
		refuse(ctx, rq, fasthttp.StatusBadRequest, false)
		return KindOther
	}
	path, query := splitURI(uri)
	info := rt.classifier.Classify(path, query, rq.scan.upgrade)
	if info.Ambiguous || ambiguousPath(rt.classifier, path) || len(info.SID) > maxSIDLen {
		refuse(ctx, rq, fasthttp.StatusBadRequest, false)
		return KindOther
	}
	rq.peer = peerAddr(ctx)
	var scratch [256]byte
	rq.client = requestClient(h, &rq.scan, rq.peer, rt.trusted, scratch[:0])
	rq.isHead = h.IsHead()

	switch {
	case info.EngineIO && info.SID != nil:
		p.sticky(ctx, rt, rq, &info, path, query)
		if info.Upgrade {
			return KindUpgrade
		}
		return KindPoll
	case info.EngineIO && !info.Upgrade && info.Transport == sticky.TransportPolling && ctx.IsGet():
		p.handshake(ctx, rt, rq)
		return KindHandshake
	}
	p.placed(ctx, rt, rq, &info)
	if info.Upgrade {
		return KindUpgrade
	}
	return KindOther
}

// refuse answers a request the proxy will not forward (a client's mistake: no backend sees it and
// none counts it).
func refuse(ctx *fasthttp.RequestCtx, rq *request, status int, closeConn bool) {
	plainError(ctx, status)
	if closeConn {
		ctx.SetConnectionClose()
	}
}

// resolve finds the owner of a sid: by its tag, else by the session table. raw is the sid without
// its tag; tagged tells whether the request URI must be rewritten; known whether the session table
// has the sid (a tagged sid it lacks is routed, and adopted once its backend answers with success);
// order is the known session's request-ordering state (nil otherwise).
func (p *Proxy) resolve(snap *balancer.Snapshot, sid []byte) (be *balancer.Backend, raw []byte, tagged, known bool, order *sticky.Order) {
	if tag, r, ok := sticky.SplitTagged(sid); ok {
		if be = snap.ByTag(tag); be != nil {
			_, order, known = p.table.Lookup(r) // refreshes the entry's expiry
			return be, r, true, known, order
		}
		if id, o, ok := p.table.Lookup(r); ok {
			if be = p.ledger.owner(snap, id, r); be == nil {
				o = nil
			}
			return be, r, true, true, o
		}
	}
	if id, o, ok := p.table.Lookup(sid); ok {
		if be = p.ledger.owner(snap, id, sid); be == nil {
			o = nil
		}
		return be, sid, false, true, o
	}
	return nil, sid, false, false, nil
}

// sticky handles a request that carries a sid: it goes to the owner or nowhere (invariant 1).
func (p *Proxy) sticky(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, info *sticky.Info, path, query []byte) {
	sid := info.SID
	if info.SIDEncoded {
		sid = sticky.AppendUnescaped(make([]byte, 0, len(sid)), sid) // as engine.io reads it (rare: a copy)
	}
	snap := p.balancer.Snapshot()
	be, raw, tagged, known, order := p.resolve(snap, sid)
	if be == nil {
		p.metrics.SIDUnknown()
		p.logSID(zap.DebugLevel, "session id unknown", ctx, nil, raw)
		sidUnknown(ctx, info.Upgrade)
		return
	}
	if tagged || info.SIDEncoded {
		raw = rewriteSID(ctx, path, query, info.SIDStart, len(info.SID), raw) // backends never see tags
	}
	if info.Upgrade {
		p.tunnel(ctx, rt, rq, be, raw, known)
		return
	}
	post, get := ctx.IsPost(), ctx.IsGet()
	if post && order != nil {
		// The session's GETs wait for this POST to be sent, and their answers for its answer to be
		// written (sticky.Order): the guard ends it after the answer's first write, or at once when
		// there is no guard.
		order.BeginPost()
		rq.unsent = order
		defer rq.sent() // when no request was written
		if rq.guard == nil || !rq.guard.endPostAfterWrite(order) {
			defer order.EndPost()
		}
	}
	if status := p.prepareBody(ctx, rt, rq, true); status != 0 {
		plainError(ctx, status)
		return
	}
	if get && order != nil {
		order.AwaitSent(p.postWait) // never overtake the session's POST on the way to the backend
	}
	closing := post && sticky.HasClosePacket(rq.body)
	mirrored := p.mirror != nil && p.mirror.Mirrored(raw)
	if mirrored && post {
		p.mirror.ClientPolling(raw, rq.body)
	}
	if get && order != nil {
		order.BeginGet() // this process holds the session's pending poll (a drain closes it here)
		defer order.EndGet()
	}
	res, err := p.forward(ctx, rt, be, rq, fwdOpts{idempotent: !post, inspect: true, watch: get})
	if err != nil {
		fe := failOf(err)
		if !fe.counts() {
			// A local limit, the client's own failure or departure, or an answer that cannot be
			// relayed: the session is not lost for that.
			p.logSID(zap.DebugLevel, "request failed", ctx, be, raw, zap.Error(err))
			answerFailure(ctx, fe, 1)
			return
		}
		// The owner is unreachable: the session is lost; tell the client at once, Engine.IO style.
		p.balancer.ReportFailure(be)
		p.ledger.end(raw)
		p.logSID(zap.WarnLevel, "owner unreachable", ctx, be, raw, zap.Error(err))
		p.metrics.SIDUnknown()
		sidUnknown(ctx, false)
		return
	}
	if !res.buffered {
		return // an answer too large to inspect streams through as it is
	}
	if get && order != nil {
		if rq.guard != nil {
			rq.guard.endPendingPost() // a POST answered on this connection is ahead of this answer anyway
		}
		order.AwaitPosts(p.postWait) // never overtake the answer of the session's POST in flight
	}
	resp := &ctx.Response
	status := resp.StatusCode()
	var payload []byte // a poll's answer as Engine.IO wrote it (decompressed when the backend compressed it)
	if status == fasthttp.StatusOK && get {
		payload = resp.Body()
		if enc := resp.Header.ContentEncoding(); len(enc) > 0 {
			payload, _ = sticky.Decompress(string(enc), payload, decodedLimit(rt))
		}
		if mirrored {
			p.mirror.ServerPolling(raw, payload)
		}
	}
	switch {
	case status == fasthttp.StatusBadRequest || closing || sticky.HasClosePacket(payload):
		p.ledger.end(raw)
	case !known && status == fasthttp.StatusOK && info.Transport == sticky.TransportPolling &&
		sticky.IsPollingAnswer(post, resp.Header.ContentType(), resp.Header.ContentEncoding(), resp.Body()):
		p.ledger.adopt(raw, be, rt.SessionTTL+rt.TTLMargin)
	}
}

// rewriteSID replaces the sid value (oldLen bytes at sidStart in query) with raw, escaped where a
// query needs it, and returns raw as it now stands: the rewrite reuses the URI buffer that path,
// query and raw may point into.
func rewriteSID(ctx *fasthttp.RequestCtx, path, query []byte, sidStart, oldLen int, raw []byte) []byte {
	if sidStart < 0 || sidStart+oldLen > len(query) {
		return raw // not the shape Classify reports; forward as is
	}
	var arr [1024]byte // the header copies the URI; a stack buffer spares an allocation per request
	buf := arr[:0]
	buf = append(buf, path...)
	buf = append(buf, '?')
	buf = append(buf, query[:sidStart]...)
	off := len(buf)
	buf = appendQueryEscaped(buf, raw)
	escaped := len(buf)-off != len(raw)
	if escaped {
		raw = append([]byte(nil), raw...) // rare: a sid with bytes a query escapes
	}
	buf = append(buf, query[sidStart+oldLen:]...)
	ctx.Request.SetRequestURIBytes(buf)
	if escaped {
		return raw
	}
	return ctx.Request.Header.RequestURI()[off : off+len(raw) : off+len(raw)]
}

// handshake places a new polling session, forwards it (retrying on another backend when one is
// down: a handshake is safe to retry), and learns and tags the sid from the open packet. The session
// counts against its backend from placement on (its claim), so a burst of handshakes spreads.
func (p *Proxy) handshake(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request) {
	if status := p.prepareBody(ctx, rt, rq, true); status != 0 {
		plainError(ctx, status)
		return
	}
	// An encoded handshake would have to be decoded to read the sid; ask for identity instead.
	be, claim, res, err := p.placeAndForward(ctx, rt, rq, true, fwdOpts{idempotent: true, inspect: true, dropAE: true})
	if be == nil || err != nil {
		return
	}
	if ctx.Response.StatusCode() != fasthttp.StatusOK || !res.buffered {
		claim.Release()
		if ctx.Response.StatusCode() >= 500 {
			p.balancer.ReportFailure(be)
		}
		return
	}
	p.balancer.ReportSuccess(be)
	p.learn(ctx, rt, be, &claim)
}

// learn extracts the sid from a handshake response, tags it, and records the session, whose claim
// it takes over: kept by the new table entry, or released when no session resulted.
func (p *Proxy) learn(ctx *fasthttp.RequestCtx, rt *rtConfig, be *balancer.Backend, claim *balancer.Claim) {
	defer claim.Release() // a no-op once the ledger kept it
	resp := &ctx.Response
	body := resp.Body()
	if enc := resp.Header.ContentEncoding(); len(enc) > 0 {
		plain, err := sticky.Decompress(string(enc), body, decodedLimit(rt))
		if err != nil {
			p.log.Warn("handshake body not decodable", zap.String("backend", be.ID), zap.Error(err))
			return
		}
		resp.Header.DelBytes([]byte(fasthttp.HeaderContentEncoding))
		resp.SetBody(plain)
		body = resp.Body()
	}
	var hs sticky.Handshake
	var err error
	if rt.TagSIDs && be.Tag != "" {
		var out []byte
		out, hs, err = sticky.RewriteHandshake(nil, body, be.Tag)
		if err == nil {
			resp.SetBodyRaw(out)
		} else if !errors.Is(err, sticky.ErrNotRewritable) {
			p.log.Warn("handshake not understood", zap.String("backend", be.ID), zap.Error(err))
			return
		}
	} else {
		hs, err = sticky.ParseHandshake(body)
		if err != nil {
			p.log.Warn("handshake not understood", zap.String("backend", be.ID), zap.Error(err))
			return
		}
	}
	ttl := rt.SessionTTL
	if hs.PingInterval > 0 || hs.PingTimeout > 0 {
		ttl = hs.PingInterval + hs.PingTimeout
	}
	sid := string(hs.SID)
	if !p.ledger.learn(claim, be, sid, ttl+rt.TTLMargin) {
		return
	}
	p.metrics.Handshake(be.ID)
	if p.mirror != nil {
		p.mirror.OpenPolling(sid, &ctx.Request)
	}
	if ce := p.log.Check(zap.DebugLevel, "session start"); ce != nil {
		ce.Write(sidField(sid), zap.String("backend", be.ID), zap.Stringer("client", ctx.RemoteAddr()))
	}
}

// placed handles requests without a session: other paths, WebSocket-only handshakes, and
// Engine.IO requests the backend will refuse (POST without sid, bad transport) or answer (OPTIONS).
func (p *Proxy) placed(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, info *sticky.Info) {
	if info.Upgrade {
		p.placeTunnel(ctx, rt, rq, info.EngineIO)
		return
	}
	if status := p.prepareBody(ctx, rt, rq, info.EngineIO); status != 0 {
		plainError(ctx, status)
		return
	}
	if !info.EngineIO && p.mirror != nil {
		p.mirror.HTTP(&ctx.Request)
	}
	fo := fwdOpts{idempotent: ctx.IsGet() || ctx.IsHead(), inspect: info.EngineIO}
	if !info.EngineIO && rt.AffinityCookie != "" {
		if be := p.byCookie(ctx, rt); be != nil {
			if _, err := p.forward(ctx, rt, be, rq, fo); err != nil {
				fe := failOf(err)
				if fe.counts() {
					p.balancer.ReportFailure(be)
				}
				answerFailure(ctx, fe, 1)
			}
			return
		}
	}
	be, _, _, err := p.placeAndForward(ctx, rt, rq, false, fo)
	if be != nil && err == nil && !info.EngineIO && rt.AffinityCookie != "" && be.Tag != "" {
		setAffinityCookie(ctx, rt.AffinityCookie, be.Tag)
	}
}

// defaultPostWait bounds how long a polling GET waits for its session's POSTs in flight: before it
// is sent, for them to reach the backend; before its answer is written, for theirs. Engine.IO
// answers a POST at once, so the waits are microseconds, but a loaded backend may write a POST's
// "ok" milliseconds after the GET's answer: on a loaded 2-core machine a 2 ms bound still let 43
// CONNECT acks of 3,000 new sessions overtake their POST's "ok", 25 ms one.
const defaultPostWait = 25 * time.Millisecond

// maxHandshakeTries bounds how many backends one new-session request may try.
const maxHandshakeTries = 3

// placeAndForward places a request without a session and forwards it. A handshake (session set),
// GET or HEAD that a backend failed moves to another backend, up to maxHandshakeTries; anything
// else is answered 502 (it may have reached the backend: never sent twice). With session set, the
// backend that answered holds the returned claim of the new session (the caller keeps or releases
// it). It has answered the client when it returns a nil backend or an error.
func (p *Proxy) placeAndForward(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request, session bool, fo fwdOpts) (*balancer.Backend, balancer.Claim, fwdResult, error) {
	var tried [maxHandshakeTries]*balancer.Backend
	pick := p.newPick(ctx, rt, rq)
	movable := (session || fo.idempotent) && rq.stream == nil
	var last *fwdError
	for i := 0; i < maxHandshakeTries; i++ {
		pick.Exclude = tried[:i]
		be, reason := p.balancer.PlaceWithReason(&pick)
		if be == nil {
			if last != nil {
				p.log.Warn("no backend answered", zap.Error(last), zap.Stringer("client", ctx.RemoteAddr()))
				answerFailure(ctx, last, 1)
				return nil, balancer.Claim{}, fwdResult{}, last
			}
			p.noBackend(ctx, reason)
			return nil, balancer.Claim{}, fwdResult{}, nil
		}
		tried[i] = be
		var claim balancer.Claim
		if session {
			claim = be.Claim()
		}
		res, err := p.forward(ctx, rt, be, rq, fo)
		if err == nil {
			return be, claim, res, nil
		}
		claim.Release()
		last = failOf(err)
		if last.counts() {
			p.balancer.ReportFailure(be)
			p.log.Warn("backend unreachable", zap.String("backend", be.ID), zap.Error(err))
		}
		// Only a backend's failure before any answer byte moves the request: a timeout never (a
		// long request must not be duplicated), nor a local limit (it waited already).
		if !movable || last.kind != failBackend {
			break
		}
	}
	answerFailure(ctx, last, 1)
	return nil, balancer.Claim{}, fwdResult{}, last
}

// newPick starts the placement of a new session or sessionless request (by the hash key when one
// is configured).
func (p *Proxy) newPick(ctx *fasthttp.RequestCtx, rt *rtConfig, rq *request) balancer.Pick {
	pick := balancer.Pick{Now: p.now().UnixNano()}
	if rt.HashKey != nil {
		pick.Key, pick.HasKey = rt.HashKey(ctx, rq.client)
	}
	return pick
}

// noBackend answers, and counts, a request that no backend could take: 503, retried after the
// balancer's estimate when every backend is full, else after 2 s.
func (p *Proxy) noBackend(ctx *fasthttp.RequestCtx, reason balancer.Reason) {
	p.metrics.Unavailable(reason)
	retry := 2
	if reason == balancer.AllFull {
		retry = int(p.balancer.RetryAfter() / time.Second)
	}
	unavailable(ctx, fasthttp.StatusServiceUnavailable, retry)
}

func (p *Proxy) logSID(level zapcore.Level, msg string, ctx *fasthttp.RequestCtx, be *balancer.Backend, raw []byte, extra ...zap.Field) {
	ce := p.log.Check(level, msg)
	if ce == nil {
		return
	}
	fields := append([]zap.Field{sidField(raw), zap.Stringer("client", ctx.RemoteAddr())}, extra...)
	if be != nil {
		fields = append(fields, zap.String("backend", be.ID))
	}
	ce.Write(fields...)
}
