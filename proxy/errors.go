package proxy

import (
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
	headerACAO       = []byte("Access-Control-Allow-Origin")
	headerACAC       = []byte("Access-Control-Allow-Credentials")
	headerRetryAfter = []byte("Retry-After")
	valueTrue        = []byte("true")
)

// sidUnknown answers a request whose session has no reachable owner the way an Engine.IO server
// does, so that the client makes a fresh handshake at once: polling gets 400 with the JSON code 1 and
// CORS headers (so browsers see the status rather than a CORS failure), an upgrade a plain 400.
func sidUnknown(ctx *fasthttp.RequestCtx, upgrade bool) {
	ctx.Response.Reset()
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
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	if retryAfter > 0 {
		ctx.Response.Header.SetBytesKV(headerRetryAfter, strconv.AppendInt(nil, int64(retryAfter), 10))
	}
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	setCORS(ctx)
	ctx.Response.SetBodyRaw(bodyUnavailable)
}

func setCORS(ctx *fasthttp.RequestCtx) {
	if origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin); len(origin) > 0 {
		ctx.Response.Header.SetBytesKV(headerACAO, origin)
		ctx.Response.Header.SetBytesKV(headerACAC, valueTrue)
	}
}
