package proxy

import (
	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
)

// byCookie returns the backend an affinity cookie names, when it still exists and takes traffic. The
// cookie holds the backend's opaque tag, never its address.
func (p *Proxy) byCookie(ctx *fasthttp.RequestCtx, rt *rtConfig) *balancer.Backend {
	v := ctx.Request.Header.Cookie(rt.AffinityCookie)
	if len(v) == 0 {
		return nil
	}
	be := p.balancer.Snapshot().ByTag(v)
	if be == nil || be.State != balancer.Active {
		return nil
	}
	return be
}

func setAffinityCookie(ctx *fasthttp.RequestCtx, name, tag string) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(name)
	c.SetValue(tag)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	ctx.Response.Header.SetCookie(c)
}
