package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
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
		owner, _, _, _, _ := p.resolve(snap, info.SID)
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

// cpuTime is the CPU time (user and system) of this process so far: the benchmarks below report it
// per operation beside the wall time, which a busy machine stretches.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startLeanBackend is a backend that costs next to nothing: it answers a request with a sid with a
// fixed 6-byte poll payload and any other with a handshake, so benchmarks measure the proxy.
func startLeanBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	hs := `0{"sid":"leansid0000000000001","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}`
	handshakeResp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: " + strconv.Itoa(len(hs)) + "\r\n\r\n" + hs)
	pollResp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 6\r\nCache-Control: no-store\r\n\r\n4hello")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8192)
				n := 0
				for {
					k, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += k
					for {
						end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if end < 0 {
							break
						}
						resp := handshakeResp
						if bytes.Contains(buf[:end], []byte("sid=")) {
							resp = pollResp
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						n = copy(buf, buf[end+4:n])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkPollLean runs Handle on a sid'd polling GET against the lean backend: the proxy's own
// per-request work (classification, routing, the backend exchange on a pooled connection) and
// its allocations.
func BenchmarkPollLean(b *testing.B) {
	addr := startLeanBackend(b)
	p := startProxy(b, nil, []balancer.Spec{{ID: "lean", Addr: addr, Weight: 1, State: balancer.Active, Source: "static"}})
	sid := handshake(b, p.addr)
	raw := []byte("GET /socket.io/?EIO=4&transport=polling&t=PqX9ab1&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: node\r\n\r\n")
	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	var rd bytes.Reader
	br := bufio.NewReader(&rd)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Init(&ctx.Request, remote, nil)
		ctx.Request.Header.DisableNormalizing()
		ctx.Response.Header.DisableNormalizing()
		ctx.Response.Header.SetNoDefaultContentType(true)
		rd.Reset(raw)
		br.Reset(&rd)
		if err := ctx.Request.Read(br); err != nil {
			b.Fatal(err)
		}
		p.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPollEndToEnd sends sid'd polling GETs through the proxy's listener on one keep-alive
// connection and reads each answer: the server's parsing and writing included.
func BenchmarkPollEndToEnd(b *testing.B) {
	addr := startLeanBackend(b)
	p := startProxy(b, nil, []balancer.Spec{{ID: "lean", Addr: addr, Weight: 1, State: balancer.Active, Source: "static"}})
	sid := handshake(b, p.addr)
	req := []byte("GET /socket.io/?EIO=4&transport=polling&t=PqX9ab1&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: node\r\n\r\n")
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := resp.Read(br); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != 200 {
			b.Fatalf("status %d", resp.StatusCode())
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkOpenFDs is the descriptor count the listener takes on every accept (descriptor reserve).
func BenchmarkOpenFDs(b *testing.B) {
	for b.Loop() {
		if OpenFDs() < 0 {
			b.Fatal("OpenFDs failed")
		}
	}
}
