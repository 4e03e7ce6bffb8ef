package proxy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Limits bound what clients can hold of the process: connections in total and per client address,
// WebSocket tunnels, and descriptors kept free for backend dials. Zero values of MaxClientConns and
// MaxTunnels mean "derive from the descriptor limit" (see ResolveLimits).
type Limits struct {
	MaxClientConns int // client connections at once; 0 = auto
	MaxConnsPerIP  int // client connections per client address; 0 = off
	MaxTunnels     int // WebSocket tunnels at once; 0 = auto
	ReservedFDs    int // descriptors a new client connection may not take (backend dials, files); 0 = none
}

// DefaultReservedFDs is how many descriptors are held back for backend dials by default.
const DefaultReservedFDs = 64

// ResolveLimits fills the automatic limits from the process's descriptor limit nofile: each client
// connection may need a second descriptor (its tunnel's backend side), so client connections get
// half of what the reserve leaves, and tunnels what client connections leave (half of it when an
// explicit client limit leaves less). A nofile of 0 (unknown) leaves them unlimited.
func ResolveLimits(l Limits, nofile uint64) Limits {
	if l.ReservedFDs < 0 {
		l.ReservedFDs = 0
	}
	if nofile == 0 {
		return l
	}
	usable := int(min(nofile, 1<<30)) - l.ReservedFDs
	if usable < 2 {
		usable = 2
	}
	if l.MaxClientConns <= 0 {
		l.MaxClientConns = usable / 2
	}
	if l.MaxTunnels <= 0 {
		l.MaxTunnels = usable - l.MaxClientConns
		if l.MaxTunnels < usable/2 {
			l.MaxTunnels = usable / 2
		}
	}
	return l
}

// Refusal reasons of client connections, as the metrics label them.
const (
	RefusedMaxConns  = "max_conns"
	RefusedPerIP     = "per_ip"
	RefusedFDReserve = "fd_reserve"
	// RefusedProxyHeader: a PROXY protocol header missing from a trusted peer, malformed, or
	// sent by a peer that is not trusted.
	RefusedProxyHeader = "proxy_header"
)

// ipCounter counts live connections per client address. Connections open and close far less often
// than requests flow, and only when a per-address limit is set; one mutex is fine.
type ipCounter struct {
	mu sync.Mutex
	n  map[netip.Addr]int32
}

// acquire counts one more connection of a unless that would exceed max.
func (c *ipCounter) acquire(a netip.Addr, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[netip.Addr]int32)
	}
	if int(c.n[a]) >= max {
		return false
	}
	c.n[a]++
	return true
}

// release uncounts a connection of a; the entry goes when its count reaches zero, so the map holds
// only addresses with live connections.
func (c *ipCounter) release(a netip.Addr) {
	c.mu.Lock()
	if k := c.n[a] - 1; k > 0 {
		c.n[a] = k
	} else {
		delete(c.n, a)
	}
	c.mu.Unlock()
}

// len is the number of addresses with live connections.
func (c *ipCounter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}

// tunnelsFull answers an upgrade with 503 (and counts it) when the tunnel limit is reached. A
// session that asked to upgrade keeps polling; a WebSocket-only client retries after Retry-After.
func (p *Proxy) tunnelsFull(ctx *fasthttp.RequestCtx, rt *rtConfig) bool {
	if rt.MaxTunnels <= 0 || p.tunnelCount() < rt.MaxTunnels {
		return false
	}
	p.metrics.TunnelRefused()
	if p.tunnelLog.allow() {
		p.log.Warn("upgrade refused: tunnel limit reached", zap.Int("max_tunnels", rt.MaxTunnels))
	}
	unavailable(ctx, fasthttp.StatusServiceUnavailable, 5)
	ctx.SetConnectionClose()
	return true
}

// logEvery lets one log line through per interval (limits hit in bursts log once, not per event).
type logEvery struct{ last atomic.Int64 }

func (e *logEvery) allow() bool {
	now := time.Now().UnixNano()
	last := e.last.Load()
	return now-last >= int64(time.Second) && e.last.CompareAndSwap(last, now)
}
