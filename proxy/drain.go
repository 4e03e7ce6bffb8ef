package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// closeBody is an Engine.IO close packet that both framings read as one: v3 text ("1:" length
// prefix, packet "1") and v4 (a packet of type close whose data is ignored).
var closeBody = []byte("1:1")

// CloseSessions ends up to n live sessions of a backend (a drain deadline) and returns how many it
// ended. A polling session is closed at the backend on the client's behalf: the backend answers
// the client's pending poll with a close packet, so the client reconnects (elsewhere, as the backend
// is draining) without losing a message. When no polling session is left, WebSocket tunnels are
// closed instead.
func (p *Proxy) CloseSessions(id string, n int) int {
	rt := p.rt.Load()
	be := p.balancer.Snapshot().ByID(id)
	sids := p.table.EvictBackend(id, n)
	for _, sid := range sids {
		if be == nil || len(rt.Paths) == 0 {
			continue
		}
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(rt.Paths[0] + "?EIO=4&transport=polling&sid=" + sid)
		req.Header.SetHost(be.Addr)
		req.Header.SetContentType("text/plain;charset=UTF-8")
		req.SetBodyRaw(closeBody)
		err := p.client(be, rt).DoTimeout(req, resp, 5*time.Second)
		if ce := p.log.Check(zap.DebugLevel, "drain: session closed"); ce != nil {
			ce.Write(zap.String("backend", id), zap.String("sid_raw", sid), zap.Int("status", resp.StatusCode()), zap.Error(err))
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	k := len(sids)
	if k < n {
		k += p.tunnels.closeBackend(id, n-k)
	}
	return k
}
