package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkClassifyResolve is the per-request work that decides where a sid'd request goes.
func BenchmarkClassifyResolve(b *testing.B) {
	be := startBackend(b, "bench")
	p := startProxy(b, nil, specsOf(be))
	sid := handshake(b, p.addr)
	uri := []byte("/socket.io/?EIO=4&transport=polling&t=PqX9ab1&sid=" + sid)
	rt := p.rt.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		path, query := splitURI(uri)
		info := rt.classifier.Classify(path, query, false)
		snap := p.balancer.Snapshot()
		owner, _, _, _ := p.resolve(snap, info.SID)
		if owner == nil {
			b.Fatal("no owner")
		}
	}
}

// BenchmarkPollThroughProxy runs Handle on a sid'd polling GET against a real backend on loopback
// (the backend's own work is included).
func BenchmarkPollThroughProxy(b *testing.B) {
	be := startBackend(b, "bench")
	p := startProxy(b, nil, specsOf(be))
	sid := handshake(b, p.addr)
	raw := []byte("GET /socket.io/?EIO=4&transport=polling&t=PqX9ab1&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Init(&ctx.Request, remote, nil)
		if err := ctx.Request.ReadLimitBody(bufioReader(raw), 0); err != nil {
			b.Fatal(err)
		}
		p.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
}

// BenchmarkOpenFDs is the descriptor count the listener takes on every accept (descriptor reserve).
func BenchmarkOpenFDs(b *testing.B) {
	for b.Loop() {
		if OpenFDs() < 0 {
			b.Fatal("OpenFDs failed")
		}
	}
}
