package proxy

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// closeBody is an Engine.IO close packet that both framings read as one: v3 text ("1:" length
// prefix, packet "1") and v4 (a packet of type close whose data is ignored).
var closeBody = []byte("1:1")

// CloseSessions ends up to n live sessions of a backend (a drain deadline) and returns how many it
// ended and how many of the backend's sessions and tunnels this process still knows. A polling
// session is closed at the backend on the client's behalf: the backend answers the client's pending
// poll with a close packet, so the client reconnects (elsewhere, as the backend is draining) without
// losing a message. Only the sessions whose pending poll this process holds are closed so (with
// several replicas, exactly one holds it, so no session is closed twice; the others are held
// elsewhere or between polls, and are tried again at the next call), and only while none of its POSTs
// passes through this process (Engine.IO ends a session whose POSTs overlap); a session carried by one of this
// process's WebSocket tunnels is closed by closing the tunnel, a parked one once it has relayed
// nothing for a moment (drainQuiet: the ack of an emit just relayed is not cut off). When no polling
// session can be closed now, tunnels are closed instead.
func (p *Proxy) CloseSessions(id string, n int) (closed, left int) {
	rt := p.rt.Load()
	be := p.balancer.Snapshot().ByID(id)
	sids := p.table.EvictBackendIf(id, n, func(o *sticky.Order) bool { return o.GetsInFlight() > 0 && o.PostsInFlight() == 0 && !o.Tunnelled() })
	for _, sid := range sids {
		if be == nil || len(rt.Paths) == 0 {
			continue
		}
		status, err := p.closeAtBackend(be, rt, sid)
		if ce := p.log.Check(zap.DebugLevel, "drain: session closed"); ce != nil {
			ce.Write(zap.String("backend", id), sidField(sid), zap.Int("status", status), zap.Error(err))
		}
	}
	k := len(sids)
	if k < n {
		k += p.closeTunnels(id, n-k)
	}
	left = p.table.Count(id)
	if st := p.balancer.Stats(id); st != nil {
		left += int(st.Tunnels.Load()) // spliced, parked and being parked: the ledger keeps the count
	}
	return k, left
}

// closeAtBackend posts a close packet for sid to its backend and returns the answer's status.
func (p *Proxy) closeAtBackend(be *balancer.Backend, rt *rtConfig, sid string) (int, error) {
	up := p.upstream(be, rt)
	bc, err := up.acquire(p.connWait)
	if err != nil {
		return 0, err
	}
	req := make([]byte, 0, 256)
	req = append(req, "POST "...)
	req = append(req, rt.Paths[0]...)
	req = append(req, "?EIO=4&transport=polling&sid="...)
	req = appendQueryEscaped(req, []byte(sid))
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, be.Addr...)
	req = append(req, "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: "...)
	req = strconv.AppendInt(req, int64(len(closeBody)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, closeBody...)
	bc.setDeadline(time.Now().Add(5 * time.Second))
	if _, err := bc.nc.Write(req); err != nil {
		bc.close()
		return 0, err
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := resp.ReadLimitBody(bc.br, 64<<10); err != nil {
		bc.close()
		return 0, err
	}
	up.release(bc, !resp.Header.ConnectionClose() && resp.Header.ContentLength() >= 0)
	return resp.StatusCode(), nil
}
