package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/eioclient"
)

const eioPath = "/socket.io/?EIO=4&transport=polling"

// pollResult is the outcome of the polling workload.
type pollResult struct {
	Requests int64
	Errors   int64
}

// runPolling runs sessions polling sessions concurrently, each: handshake, Socket.IO connect
// (POST + GET), rounds x (POST an acked "echo" event + GET its ack), close (POST "1"). Every
// request is counted, so CPU per request is exact.
func runPolling(base string, sessions, rounds int, payload string) pollResult {
	u, _ := url.Parse(base)
	hc := &fasthttp.HostClient{Addr: u.Host, MaxConns: sessions * 2, ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second}
	var reqs, errs atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := pollSession(hc, u.Host, rounds, payload)
			reqs.Add(int64(n))
			if err != nil {
				errs.Add(1)
			}
		}()
	}
	wg.Wait()
	hc.CloseIdleConnections()
	return pollResult{Requests: reqs.Load(), Errors: errs.Load()}
}

func pollSession(hc *fasthttp.HostClient, host string, rounds int, payload string) (int, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	n := 0
	do := func(method, uri, body string) ([]byte, error) {
		req.Reset()
		req.Header.SetMethod(method)
		req.SetRequestURI(uri)
		req.Header.SetHost(host)
		if body != "" {
			req.Header.SetContentType("text/plain;charset=UTF-8")
			req.SetBodyString(body)
		}
		n++
		if err := hc.Do(req, resp); err != nil {
			return nil, err
		}
		if resp.StatusCode() != 200 {
			return nil, fmt.Errorf("%s %s: status %d", method, uri, resp.StatusCode())
		}
		return resp.Body(), nil
	}
	body, err := do("GET", "http://"+host+eioPath, "")
	if err != nil {
		return n, err
	}
	var open struct{ SID string }
	if len(body) < 2 || body[0] != '0' || json.Unmarshal(body[1:], &open) != nil || open.SID == "" {
		return n, fmt.Errorf("bad handshake %q", body)
	}
	uri := "http://" + host + eioPath + "&sid=" + url.QueryEscape(open.SID)
	if _, err := do("POST", uri, "40"); err != nil {
		return n, err
	}
	if err := pollUntil(do, uri, []byte("40")); err != nil {
		return n, err
	}
	ev := `["echo",` + strconv.Quote(payload) + `]`
	for r := 0; r < rounds; r++ {
		id := strconv.Itoa(r + 1)
		if _, err := do("POST", uri, "42"+id+ev); err != nil {
			return n, err
		}
		if err := pollUntil(do, uri, []byte("43"+id+"[")); err != nil {
			return n, err
		}
	}
	_, err = do("POST", uri, "1")
	return n, err
}

// pollUntil GETs until a payload holds want (a heartbeat ping may come first; it is answered).
func pollUntil(do func(method, uri, body string) ([]byte, error), uri string, want []byte) error {
	for tries := 0; tries < 4; tries++ {
		body, err := do("GET", uri, "")
		if err != nil {
			return err
		}
		if bytes.Contains(body, want) {
			return nil
		}
		if bytes.Contains(body, []byte("2")) {
			if _, err := do("POST", uri, "3"); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("no %q after 4 polls", want)
}

// dialer opens WebSocket-only Socket.IO sessions, spreading source addresses round robin.
type dialer struct {
	base    string
	sources []net.IP
	next    atomic.Uint64
}

func (d *dialer) dial(ctx context.Context) (*eioclient.Conn, error) {
	opts := eioclient.Options{URL: d.base, Mode: eioclient.WebSocket, Timeout: 20 * time.Second}
	if len(d.sources) > 0 {
		opts.LocalAddr = &net.TCPAddr{IP: d.sources[d.next.Add(1)%uint64(len(d.sources))]}
	}
	return eioclient.Dial(ctx, opts)
}

// openMany opens n sessions with at most par dials in flight; it returns the sessions opened.
func (d *dialer) openMany(ctx context.Context, n, par int) ([]*eioclient.Conn, int) {
	conns := make([]*eioclient.Conn, 0, n)
	var mu sync.Mutex
	var failed atomic.Int64
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := d.dial(ctx)
			if err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return conns, int(failed.Load())
}

func closeAll(conns []*eioclient.Conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); c.Close() }()
	}
	wg.Wait()
}

// wsResult is the outcome of the WebSocket workload.
type wsResult struct {
	Messages int64 // WebSocket messages relayed: emits + acks
	Errors   int64
	CPU      float64
}

// runWebSocket opens sessions WebSocket sessions, then (measured from here) has each send emits
// acked "echo" events one after the other, then closes them. CPU is the proxy's during the emits.
func runWebSocket(ctx context.Context, p *peer, base string, sessions, emits int, payload string) (wsResult, error) {
	d := &dialer{base: base}
	conns, failed := d.openMany(ctx, sessions, 64)
	defer closeAll(conns)
	if failed > 0 {
		return wsResult{}, fmt.Errorf("%d of %d WebSocket sessions failed to open", failed, sessions)
	}
	before, err := readUsage(p.pids())
	if err != nil {
		return wsResult{}, err
	}
	var msgs, errs atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < emits; i++ {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := c.EmitAck(actx, "echo", payload)
				cancel()
				if err != nil {
					errs.Add(1)
					return
				}
				msgs.Add(2)
			}
		}()
	}
	wg.Wait()
	after, err := readUsage(p.pids())
	if err != nil {
		return wsResult{}, err
	}
	return wsResult{Messages: msgs.Load(), Errors: errs.Load(), CPU: after.CPU - before.CPU}, nil
}

// holdStep is the memory of a peer while holding Sessions idle WebSocket sessions.
type holdStep struct {
	Sessions int
	Failed   int
	RSSKB    int64 // resident memory of the proxy processes
	BaseKB   int64 // resident memory before the first session
}

// PerSessionKB is the resident memory added per held session.
func (h holdStep) PerSessionKB() float64 {
	if h.Sessions == 0 {
		return 0
	}
	return float64(h.RSSKB-h.BaseKB) / float64(h.Sessions)
}

// runHold opens idle WebSocket sessions up to each count of ladder in turn, waits settle, and
// reads the proxy's resident memory. It stops early at the first step where opens fail.
func runHold(ctx context.Context, p *peer, d *dialer, ladder []int, settle time.Duration, par int) ([]holdStep, error) {
	base, err := readUsage(p.pids())
	if err != nil {
		return nil, err
	}
	var all []*eioclient.Conn
	defer func() { closeAll(all) }()
	var steps []holdStep
	for _, target := range ladder {
		conns, failed := d.openMany(ctx, target-len(all), par)
		all = append(all, conns...)
		if ctx.Err() != nil {
			break
		}
		time.Sleep(settle) // let handshakes finish on the proxy side and the heap settle
		alive := 0
		for _, c := range all {
			select {
			case <-c.Done():
			default:
				alive++
			}
		}
		u, err := readUsage(p.pids())
		if err != nil {
			return steps, err
		}
		steps = append(steps, holdStep{Sessions: alive, Failed: failed, RSSKB: u.RSSKB, BaseKB: base.RSSKB})
		if failed > 0 {
			break
		}
	}
	return steps, nil
}

// loadSummary is the part of sioload's JSON summary the benchmark reads.
type loadSummary struct {
	Sessions struct {
		OK     int64 `json:"ok"`
		Failed int64 `json:"failed"`
	} `json:"sessions"`
	HandshakesPerSec float64 `json:"handshakes_per_s"`
	Emits            struct {
		Acked       uint64  `json:"acked"`
		AckedPerSec float64 `json:"acked_per_s"`
		SteadyPerS  float64 `json:"steady_per_s"`
	} `json:"emits"`
	Ack struct {
		P50  float64 `json:"p50_ms"`
		P99  float64 `json:"p99_ms"`
		P999 float64 `json:"p999_ms"`
	} `json:"ack_ms"`
	Errors map[string]uint64 `json:"errors"`
}

// sioload runs the load generator with args and parses its JSON summary.
func sioload(ctx context.Context, bin string, args ...string) (loadSummary, error) {
	var s loadSummary
	cmd := exec.CommandContext(ctx, bin, append(args, "-json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if jerr := json.Unmarshal(out, &s); jerr != nil {
		return s, errors.Join(err, jerr, errors.New(stderr.String()))
	}
	return s, nil
}
