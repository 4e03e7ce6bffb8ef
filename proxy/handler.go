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

// Handle is the fasthttp handler: classify, route, forward or tunnel.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx) {
	rt := p.rt.Load()
	start := p.now()
	uri := ctx.Request.Header.RequestURI()
	path, query := splitURI(uri)
	upgrade := isUpgrade(&ctx.Request.Header)
	info := rt.classifier.Classify(path, query, upgrade)

	var kind Kind
	switch {
	case info.EngineIO && info.SID != nil:
		kind = KindPoll
		if upgrade {
			kind = KindUpgrade
		}
		p.sticky(ctx, rt, &info, path, query)
	case info.EngineIO && !upgrade && info.Transport == sticky.TransportPolling && ctx.IsGet():
		kind = KindHandshake
		p.handshake(ctx, rt, &info)
	default:
		kind = KindOther
		if upgrade {
			kind = KindUpgrade
		}
		p.placed(ctx, rt, &info, upgrade)
	}
	status := ctx.Response.StatusCode()
	if upgrade && ctx.Hijacked() {
		status = fasthttp.StatusSwitchingProtocols
	}
	p.metrics.Request(kind, status, p.now().Sub(start))
}

// splitURI splits a request URI (origin or absolute form) into path and raw query.
func splitURI(uri []byte) (path, query []byte) {
	if len(uri) > 0 && uri[0] != '/' {
		// absolute-form: scheme://host/path?query
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				uri = nil
			}
		}
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, nil
}

// resolve finds the owner of a sid: by its tag, else by the session table. raw is the sid without
// its tag; tagged tells whether the request URI must be rewritten; known whether the session table
// has the sid (a tagged sid it lacks is routed, and adopted once its backend answers with success).
func (p *Proxy) resolve(snap *balancer.Snapshot, sid []byte) (be *balancer.Backend, raw []byte, tagged, known bool) {
	if tag, r, ok := sticky.SplitTagged(sid); ok {
		if be = snap.ByTag(tag); be != nil {
			_, known = p.table.Get(r) // refreshes the entry's expiry
			return be, r, true, known
		}
		if id, ok := p.table.Get(r); ok {
			return p.ledger.owner(snap, id, r), r, true, true
		}
	}
	if id, ok := p.table.Get(sid); ok {
		return p.ledger.owner(snap, id, sid), sid, false, true
	}
	return nil, sid, false, false
}

// sticky handles a request that carries a sid: it goes to the owner or nowhere (invariant 1).
func (p *Proxy) sticky(ctx *fasthttp.RequestCtx, rt *rtConfig, info *sticky.Info, path, query []byte) {
	snap := p.balancer.Snapshot()
	be, raw, tagged, known := p.resolve(snap, info.SID)
	if be == nil {
		p.metrics.SIDUnknown()
		p.logSID(zap.DebugLevel, "session id unknown", ctx, nil, raw)
		sidUnknown(ctx, info.Upgrade)
		return
	}
	if tagged {
		// The rewrite reuses the URI buffer that path, query and raw point into: take raw anew.
		raw = stripTag(ctx, path, query, info.SIDStart, len(info.SID)-len(raw), raw)
	}
	if info.Upgrade {
		p.tunnel(ctx, rt, be, raw, known)
		return
	}
	post := ctx.IsPost()
	closing := post && sticky.HasClosePacket(ctx.Request.Body())
	mirrored := p.mirror != nil && p.mirror.Mirrored(raw)
	if mirrored && post {
		p.mirror.ClientPolling(raw, ctx.Request.Body())
	}
	err := p.forward(ctx, rt, be)
	if err != nil {
		// The owner is unreachable: the session is lost; tell the client at once, Engine.IO style.
		p.balancer.ReportFailure(be)
		p.ledger.end(raw)
		p.logSID(zap.WarnLevel, "owner unreachable", ctx, be, raw, zap.Error(err))
		p.metrics.SIDUnknown()
		sidUnknown(ctx, false)
		return
	}
	resp := &ctx.Response
	status := resp.StatusCode()
	if mirrored && status == fasthttp.StatusOK && ctx.IsGet() {
		body := resp.Body()
		if enc := resp.Header.ContentEncoding(); len(enc) > 0 {
			body, _ = sticky.Decompress(string(enc), body, 4*rt.MaxBodyBytes+1<<16)
		}
		p.mirror.ServerPolling(raw, body)
	}
	switch {
	case status == fasthttp.StatusBadRequest || closing ||
		(status == fasthttp.StatusOK && ctx.IsGet() && sticky.HasClosePacket(resp.Body())):
		p.ledger.end(raw)
	case !known && status == fasthttp.StatusOK && info.Transport == sticky.TransportPolling &&
		sticky.IsPollingAnswer(post, resp.Header.ContentType(), resp.Header.ContentEncoding(), resp.Body()):
		p.ledger.adopt(raw, be, rt.SessionTTL+rt.TTLMargin)
	}
}

// stripTag rewrites the request URI without the sid tag (backends never see tags) and returns the
// raw sid as it now stands in the new URI.
func stripTag(ctx *fasthttp.RequestCtx, path, query []byte, sidStart, tagLen int, raw []byte) []byte {
	if sidStart < 0 || tagLen <= 0 || sidStart+tagLen+len(raw) > len(query) {
		return raw // not the shape Classify reports; forward as is
	}
	var arr [512]byte // the header copies the URI; a stack buffer spares an allocation per request
	buf := arr[:0]
	buf = append(buf, path...)
	buf = append(buf, '?')
	buf = append(buf, query[:sidStart]...)
	buf = append(buf, query[sidStart+tagLen:]...)
	ctx.Request.SetRequestURIBytes(buf)
	off := len(path) + 1 + sidStart
	return ctx.Request.Header.RequestURI()[off : off+len(raw)]
}

// handshake places a new polling session, forwards it (retrying on another backend when one is
// down: a handshake is safe to retry), and learns and tags the sid from the open packet. The session
// counts against its backend from placement on (its claim), so a burst of handshakes spreads.
func (p *Proxy) handshake(ctx *fasthttp.RequestCtx, rt *rtConfig, info *sticky.Info) {
	// An encoded handshake would have to be decoded to read the sid; ask for identity instead.
	ctx.Request.Header.Del(fasthttp.HeaderAcceptEncoding)
	be, claim, err := p.placeAndForward(ctx, rt, true)
	if be == nil || err != nil {
		return
	}
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
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
		plain, err := sticky.Decompress(string(enc), body, 4*rt.MaxBodyBytes+1<<16)
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
func (p *Proxy) placed(ctx *fasthttp.RequestCtx, rt *rtConfig, info *sticky.Info, upgrade bool) {
	if upgrade {
		p.placeTunnel(ctx, rt)
		return
	}
	if !info.EngineIO && p.mirror != nil {
		p.mirror.HTTP(&ctx.Request)
	}
	if !info.EngineIO && rt.AffinityCookie != "" {
		if be := p.byCookie(ctx, rt); be != nil {
			if err := p.forward(ctx, rt, be); err != nil {
				p.balancer.ReportFailure(be)
				unavailable(ctx, fasthttp.StatusBadGateway, 0)
			}
			return
		}
	}
	if !info.EngineIO {
		// Other paths may stream (downloads, server-sent events): never hold them back.
		ctx.Response.StreamBody = true
	}
	be, _, err := p.placeAndForward(ctx, rt, false)
	if be != nil && err == nil && !info.EngineIO && rt.AffinityCookie != "" && be.Tag != "" {
		setAffinityCookie(ctx, rt.AffinityCookie, be.Tag)
	}
}

// maxHandshakeTries bounds how many backends one new-session request may try.
const maxHandshakeTries = 3

// placeAndForward places a request without a session and forwards it, trying up to
// maxHandshakeTries backends when a backend cannot be reached. With session set, the backend that
// answered holds the returned claim of the new session (the caller keeps or releases it).
// It has answered the client when it returns a nil backend or an error.
func (p *Proxy) placeAndForward(ctx *fasthttp.RequestCtx, rt *rtConfig, session bool) (*balancer.Backend, balancer.Claim, error) {
	var tried [maxHandshakeTries]*balancer.Backend
	pick := balancer.Pick{Now: p.now().UnixNano()}
	if rt.HashKey != nil {
		pick.Key, pick.HasKey = rt.HashKey(ctx, clientAddr(ctx, rt.trusted))
	}
	var lastErr error
	for i := 0; i < maxHandshakeTries; i++ {
		pick.Exclude = tried[:i]
		be, reason := p.balancer.PlaceWithReason(&pick)
		if be == nil {
			if lastErr != nil {
				p.log.Warn("no backend answered", zap.Error(lastErr), zap.Stringer("client", ctx.RemoteAddr()))
				unavailable(ctx, fasthttp.StatusBadGateway, 0)
				return nil, balancer.Claim{}, lastErr
			}
			p.metrics.Unavailable(reason)
			if reason == balancer.AllFull {
				unavailable(ctx, fasthttp.StatusServiceUnavailable, int(p.balancer.RetryAfter()/time.Second))
			} else {
				unavailable(ctx, fasthttp.StatusServiceUnavailable, 2)
			}
			return nil, balancer.Claim{}, nil
		}
		tried[i] = be
		var claim balancer.Claim
		if session {
			claim = be.Claim()
		}
		err := p.forward(ctx, rt, be)
		if err == nil {
			return be, claim, nil
		}
		claim.Release()
		lastErr = err
		p.balancer.ReportFailure(be)
		p.log.Warn("backend unreachable", zap.String("backend", be.ID), zap.Error(err))
		if ctx.Request.IsBodyStream() {
			break
		}
	}
	unavailable(ctx, fasthttp.StatusBadGateway, 0)
	return nil, balancer.Claim{}, lastErr
}

// forward sends the request to be and puts its response into ctx.Response. A non-nil error means
// no response came from the backend (nothing was written to the client yet).
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, rt *rtConfig, be *balancer.Backend) error {
	req := &ctx.Request
	clientClose := req.Header.ConnectionClose()
	stripHopRequest(&req.Header)
	req.Header.ResetConnectionClose()
	req.Header.SetNoDefaultContentType(true) // forward the request as sent: an added octet-stream type breaks engine.io POSTs
	var scratch [128]byte
	setForwarded(ctx, rt.trusted, scratch[:0])
	// The scheme is the backend's: a request that came in over TLS goes to a plain backend as http.
	if be.TLS {
		req.URI().SetSchemeBytes(valueHTTPS)
	} else {
		req.URI().SetSchemeBytes(valueHTTP)
	}
	be.InFlight.Add(1)
	err := p.client(be, rt).Do(req, &ctx.Response)
	be.InFlight.Add(-1)
	if clientClose {
		req.Header.SetConnectionClose()
	}
	if err != nil {
		ctx.Response.Reset()
		return err
	}
	stripHopResponse(&ctx.Response.Header)
	ctx.Response.Header.ResetConnectionClose()
	if clientClose {
		ctx.SetConnectionClose()
	}
	return nil
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

// upstreamDeadline is how long a tunnel waits for the backend's answer to an upgrade.
func (p *Proxy) upstreamDeadline(rt *rtConfig) time.Time {
	return p.now().Add(rt.DialTimeout + 10*time.Second)
}
