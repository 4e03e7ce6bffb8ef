package proxy

import (
	"bytes"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Engine.IO error bodies, as engine.io servers write them (engineio-for-proxies.md §6).
var (
	bodySIDUnknown   = []byte(`{"code":1,"message":"Session ID unknown"}`)
	textSIDUnknown   = []byte("Session ID unknown")
	bodyUnavailable  = []byte(`{"code":3,"message":"No backend available"}`)
	contentTypeJSON  = []byte("application/json")
	contentTypeHTML  = []byte("text/html")
	contentTypePlain = []byte("text/plain; charset=utf-8")
	headerACAO       = []byte("Access-Control-Allow-Origin")
	headerACAC       = []byte("Access-Control-Allow-Credentials")
	headerRetryAfter = []byte("Retry-After")
	valueTrue        = []byte("true")
)

// sidUnknown answers a request whose session has no reachable owner the way an Engine.IO server
// does, so that the client makes a fresh handshake at once: polling gets 400 with the JSON code 1 and
// CORS headers (so browsers see the status rather than a CORS failure), an upgrade a plain 400.
func sidUnknown(ctx *fasthttp.RequestCtx, upgrade bool) {
	resetResponse(ctx)
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	if upgrade {
		ctx.SetConnectionClose()
		ctx.Response.Header.SetContentTypeBytes(contentTypeHTML)
		ctx.Response.SetBodyRaw(textSIDUnknown)
		return
	}
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	setCORS(ctx)
	ctx.Response.SetBodyRaw(bodySIDUnknown)
}

// unavailable answers a new session that no backend can take: 503 with Retry-After (Engine.IO
// clients back off and retry), or 502 when backends exist but none answered.
func unavailable(ctx *fasthttp.RequestCtx, status int, retryAfter int) {
	resetResponse(ctx)
	ctx.SetStatusCode(status)
	if retryAfter > 0 {
		ctx.Response.Header.SetBytesKV(headerRetryAfter, strconv.AppendInt(nil, int64(retryAfter), 10))
	}
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	setCORS(ctx)
	ctx.Response.SetBodyRaw(bodyUnavailable)
}

// plainError answers the proxy's own refusal of a request: the status, its reason as the body,
// and CORS headers so that a browser sees the status.
func plainError(ctx *fasthttp.RequestCtx, status int) {
	resetResponse(ctx)
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypePlain)
	setCORS(ctx)
	ctx.Response.SetBodyString(fasthttp.StatusMessage(status))
}

// setCORS allows the request's Origin (whatever the case of its name) to read the proxy's answer.
func setCORS(ctx *fasthttp.RequestCtx) {
	if origin := peekHeader(&ctx.Request.Header, hdrOrigin); len(origin) > 0 {
		ctx.Response.Header.SetBytesKV(headerACAO, origin)
		ctx.Response.Header.SetBytesKV(headerACAC, valueTrue)
	}
}

// peekHeader returns the first value of a request field the proxy knows by id, whatever the case
// of its name.
func peekHeader(h *fasthttp.RequestHeader, id hdrID) []byte {
	it := headerLines{b: h.RawHeaders()}
	for {
		name, value, _, ok := it.next()
		if !ok {
			return nil
		}
		if headerID(name) == id {
			return value
		}
	}
}

// peekHeaderName returns the first value of the request field name, whatever its case.
func peekHeaderName(h *fasthttp.RequestHeader, name string) []byte {
	it := headerLines{b: h.RawHeaders()}
	for {
		n, value, _, ok := it.next()
		if !ok {
			return nil
		}
		if len(n) == len(name) && bytes.EqualFold(n, []byte(name)) {
			return value
		}
	}
}

// resetResponse clears what a failed exchange left in the response, keeping the server's settings.
func resetResponse(ctx *fasthttp.RequestCtx) {
	ctx.Response.Reset()
	ctx.Response.Header.DisableNormalizing()
	ctx.Response.Header.SetNoDefaultContentType(true)
}
