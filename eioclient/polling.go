package eioclient

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/eioproto"
)

// polling is the long-polling transport: one GET loop and one POST loop, each with at most one
// request in flight, as Engine.IO requires. Outgoing packets queue up and leave in one POST.
type polling struct {
	c     *Conn
	hc    *fasthttp.HostClient
	conns connSet
	tseq  atomic.Uint64

	mu      sync.Mutex
	queue   []eioproto.Packet
	paused  bool // upgrade in progress: no new requests
	closing bool // Close: exit the POST loop once the queue is flushed

	kick     chan struct{} // cap 1: the queue has packets
	stop     chan struct{}
	stopOnce sync.Once
	getDone  chan struct{}
	postDone chan struct{}
}

var _ transport = (*polling)(nil)

func newPolling(c *Conn) *polling {
	p := &polling{
		c:        c,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		getDone:  make(chan struct{}),
		postDone: make(chan struct{}),
	}
	p.hc = &fasthttp.HostClient{
		Addr:  c.ep.addr,
		IsTLS: c.ep.tls,
		Dial: func(addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
			defer cancel()
			return p.conns.dial(ctx, c.opts.LocalAddr, addr)
		},
		TLSConfig:                 c.opts.TLSConfig,
		MaxConns:                  4,
		MaxIdemponentCallAttempts: 1, // never retry a polling request: a duplicate kills the session
		DisablePathNormalizing:    true,
		ReadBufferSize:            4096,
		WriteBufferSize:           4096,
	}
	return p
}

func (p *polling) name() string { return "polling" }

// url returns the polling URL of the session (sid "" for the handshake) with a fresh t.
func (p *polling) url(sid string) string {
	return p.c.ep.pollURL(sid, strconv.FormatUint(p.tseq.Add(1), 36))
}

// request performs one HTTP request and returns a copy of the 200 response body.
func (p *polling) request(op, method, uri string, body []byte, deadline time.Time) ([]byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	req.Header.SetMethod(method)
	for k, vs := range p.c.opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != nil {
		req.Header.SetContentType("text/plain;charset=UTF-8")
		req.SetBodyRaw(body)
	}
	if err := p.hc.DoDeadline(req, resp, deadline); err != nil {
		return nil, wrap(op, "", err)
	}
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		b := resp.Body()
		if len(b) > 120 {
			b = b[:120]
		}
		return nil, &Error{Kind: KindHTTPStatus, Op: op, Err: fmt.Errorf("status %d: %q", code, b)}
	}
	return append([]byte(nil), resp.Body()...), nil
}

// decode decodes a response payload for the Conn's Engine.IO revision.
func (p *polling) decode(body []byte) ([]eioproto.Packet, error) {
	if p.c.eio == 3 {
		return eioproto.DecodePayloadV3(body)
	}
	return eioproto.DecodePayloadV4(body)
}

// handshake performs the opening GET and returns its packets.
func (p *polling) handshake(ctx context.Context) ([]eioproto.Packet, error) {
	deadline, _ := ctx.Deadline()
	body, err := p.request("handshake", fasthttp.MethodGet, p.url(""), nil, deadline)
	if err != nil {
		return nil, err
	}
	pkts, err := p.decode(body)
	if err != nil {
		return nil, &Error{Kind: KindHandshake, Op: "handshake", Err: err}
	}
	return pkts, nil
}

// start launches the GET and POST loops.
func (p *polling) start() {
	p.c.wg.Add(2)
	go p.getLoop()
	go p.postLoop()
}

// getLoop keeps one long-poll GET outstanding until the transport stops or pauses.
func (p *polling) getLoop() {
	defer p.c.wg.Done()
	defer close(p.getDone)
	c := p.c
	wait := time.Duration(c.open.PingInterval+c.open.PingTimeout)*time.Millisecond + c.opts.Timeout
	for {
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			return
		}
		select {
		case <-p.stop:
			return
		default:
		}
		body, err := p.request("poll", fasthttp.MethodGet, p.url(c.open.SID), nil, time.Now().Add(wait))
		if err != nil {
			c.fail(err)
			return
		}
		pkts, err := p.decode(body)
		if err != nil {
			c.fail(&Error{Kind: KindProtocol, Op: "poll", Err: err})
			return
		}
		for _, pk := range pkts {
			c.handle(pk)
		}
	}
}

// postLoop sends the queued packets, one POST at a time.
func (p *polling) postLoop() {
	defer p.c.wg.Done()
	defer close(p.postDone)
	c := p.c
	var buf []byte
	for {
		select {
		case <-p.kick:
		case <-p.stop:
			return
		}
		p.mu.Lock()
		if p.paused {
			p.mu.Unlock()
			return
		}
		batch := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(batch) > 0 {
			if c.eio == 3 {
				buf = eioproto.AppendPayloadV3(buf[:0], batch)
			} else {
				buf = eioproto.AppendPayloadV4(buf[:0], batch)
			}
			if _, err := p.request("post", fasthttp.MethodPost, p.url(c.open.SID), buf, time.Now().Add(c.opts.Timeout)); err != nil {
				c.fail(err)
				return
			}
		}
		p.mu.Lock()
		done := p.closing && len(p.queue) == 0
		p.mu.Unlock()
		if done {
			return
		}
	}
}

// send queues pkts for the next POST.
func (p *polling) send(pkts []eioproto.Packet) error {
	p.mu.Lock()
	p.queue = append(p.queue, pkts...)
	p.mu.Unlock()
	notify(p.kick)
	return nil
}

// pause stops new requests (the upgrade's "pause polling"); in-flight ones complete.
func (p *polling) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	notify(p.kick)
}

// takeQueue returns and clears the packets queued while paused.
func (p *polling) takeQueue() []eioproto.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue = nil
	return q
}

// shutdown POSTs last after the queue, waits for it (at most timeout), then aborts.
func (p *polling) shutdown(last []eioproto.Packet, timeout time.Duration) {
	p.mu.Lock()
	running := !p.paused
	p.queue = append(p.queue, last...)
	p.closing = true
	p.mu.Unlock()
	if running {
		notify(p.kick)
		t := time.NewTimer(timeout)
		select {
		case <-p.postDone:
		case <-t.C:
		}
		t.Stop()
	}
	p.abort()
}

// abort stops both loops and closes every connection.
func (p *polling) abort() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.conns.closeAll()
		p.hc.CloseIdleConnections()
	})
}

// notify does a non-blocking send on a 1-slot channel.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
