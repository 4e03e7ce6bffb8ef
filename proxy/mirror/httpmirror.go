package mirror

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
	"sioproxy/internal/backendtls"
)

// Plain HTTP mirroring bounds.
const (
	httpQueue   = 256
	httpWorkers = 2
	httpTimeout = 5 * time.Second
)

// httpMirror copies sampled plain HTTP requests to a target, fire and forget: a bounded queue and a
// few workers; responses are read and discarded.
type httpMirror struct {
	m      *Mirror
	queue  chan *fasthttp.Request
	start  sync.Once
	client *fasthttp.Client
}

func newHTTPMirror(m *Mirror) *httpMirror {
	return &httpMirror{
		m:     m,
		queue: make(chan *fasthttp.Request, httpQueue),
		client: &fasthttp.Client{
			Name:                     "sioproxy-mirror",
			NoDefaultUserAgentHeader: true,
			ReadTimeout:              httpTimeout,
			WriteTimeout:             httpTimeout,
			MaxConnsPerHost:          16,
			MaxResponseBodySize:      1 << 20,
		},
	}
}

// configureTarget gives the client of an https target its verification (CA file, server name).
func (m *Mirror) configureTarget(hc *fasthttp.HostClient) error {
	if !hc.IsTLS {
		return nil
	}
	for _, be := range m.targets.Snapshot().Backends {
		if be.Addr == hc.Addr && be.TLS {
			conf, err := backendtls.Config(be.Spec)
			if err != nil {
				return err
			}
			hc.TLSConfig = conf
			return nil
		}
	}
	return nil
}

// send copies req (when its body is within the cap) and queues it; a full queue drops and counts.
func (h *httpMirror) send(req *fasthttp.Request) {
	if req.IsBodyStream() || len(req.Body()) > h.m.maxHTTPBody {
		h.m.stats.httpDropped.Add(1)
		return
	}
	h.start.Do(func() {
		for range httpWorkers {
			go h.work()
		}
	})
	r := fasthttp.AcquireRequest()
	req.CopyTo(r)
	select {
	case h.queue <- r:
	default:
		fasthttp.ReleaseRequest(r)
		h.m.stats.httpDropped.Add(1)
	}
}

func (h *httpMirror) work() {
	resp := fasthttp.AcquireResponse()
	resp.SkipBody = true
	for r := range h.queue {
		if h.do(r, resp) {
			h.m.stats.httpMirrored.Add(1)
		} else {
			h.m.stats.httpFailed.Add(1)
		}
		fasthttp.ReleaseRequest(r)
		resp.Reset()
		resp.SkipBody = true
	}
}

func (h *httpMirror) do(r *fasthttp.Request, resp *fasthttp.Response) bool {
	be := h.m.targets.Place(&balancer.Pick{Now: h.m.now().UnixNano()})
	if be == nil {
		return false
	}
	uri := r.URI()
	if be.TLS {
		uri.SetScheme("https")
	} else {
		uri.SetScheme("http")
	}
	uri.SetHost(be.Addr)
	r.Header.SetHost(be.Addr)
	r.Header.Set("X-Sioproxy-Mirror", "1")
	if err := h.client.DoTimeout(r, resp, httpTimeout); err != nil {
		h.m.targets.ReportFailure(be)
		return false
	}
	return true
}
