package proxy

import (
	"net/netip"

	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
)

// KeyFuncFor builds the affinity key function of the hash policy: source is "ip" (the client
// address, X-Forwarded-For believed only from trusted proxies), "header", "cookie" or "query", and
// name the header, cookie or query parameter. An unknown source returns nil (no key).
func KeyFuncFor(source, name string) KeyFunc {
	switch source {
	case "ip", "remote_addr":
		return func(_ *fasthttp.RequestCtx, ip netip.Addr) (uint64, bool) {
			if !ip.IsValid() {
				return 0, false
			}
			b := ip.As16()
			return balancer.HashKey(b[:]), true
		}
	case "header":
		return func(ctx *fasthttp.RequestCtx, _ netip.Addr) (uint64, bool) {
			return hashIf(peekHeaderName(&ctx.Request.Header, name))
		}
	case "cookie":
		return func(ctx *fasthttp.RequestCtx, _ netip.Addr) (uint64, bool) {
			return hashIf(ctx.Request.Header.Cookie(name))
		}
	case "query":
		return func(ctx *fasthttp.RequestCtx, _ netip.Addr) (uint64, bool) {
			ctx.URI().DisablePathNormalizing = true // the request is forwarded as the client sent it
			return hashIf(ctx.QueryArgs().Peek(name))
		}
	}
	return nil
}

func hashIf(v []byte) (uint64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	return balancer.HashKey(v), true
}
