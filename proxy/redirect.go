package proxy

import (
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// RedirectServer answers every request on a plain listener with a permanent redirect (308, which
// keeps the method and body) to the same host and URI over https on httpsPort ("443" is left out
// of the URL). A request without a usable Host gets 400.
func RedirectServer(httpsPort string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               func(ctx *fasthttp.RequestCtx) { redirect(ctx, httpsPort) },
		Name:                  "sioproxy",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           30 * time.Second,
		MaxRequestBodySize:    4096,
		ReadBufferSize:        8192,
		ErrorHandler:          requestError,
		CloseOnShutdown:       true,
	}
}

func redirect(ctx *fasthttp.RequestCtx, httpsPort string) {
	host := redirectHost(string(ctx.Request.Header.Host()))
	if host == "" {
		ctx.Error("Bad Request: no Host", fasthttp.StatusBadRequest)
		return
	}
	uri := ctx.Request.Header.RequestURI()
	if len(uri) == 0 || uri[0] != '/' {
		uri = []byte("/") // absolute-form or '*': redirect to the root rather than echo it
	}
	var b strings.Builder
	b.WriteString("https://")
	b.WriteString(host)
	if httpsPort != "" && httpsPort != "443" {
		b.WriteString(":")
		b.WriteString(httpsPort)
	}
	b.Write(uri)
	ctx.Response.Header.Set(fasthttp.HeaderLocation, b.String())
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
	ctx.SetBodyString("Redirecting to https\n")
}

// redirectHost returns the host of a Host header without its port, or "" when it is not a plain
// host name or IP address (nothing a client sends may turn the Location into another URL).
func redirectHost(h string) string {
	if h == "" {
		return ""
	}
	host := h
	if hp, _, err := net.SplitHostPort(h); err == nil {
		host = hp
	} else if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return "" // a bare IPv6 address must be bracketed; anything else with ':' is not a host
	}
	if strings.HasPrefix(host, "[") { // "[::1]" without a port
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() == nil {
			return "[" + ip.String() + "]"
		}
		return ip.String()
	}
	if len(host) > 253 {
		return ""
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return ""
		}
	}
	return host
}
