package browser

import (
	"encoding/json"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// page is a browser page kept open by run.js between jobs, for tests that act on a page and look
// at the proxy in turns.
type page struct {
	t      *testing.T
	d      *driver
	id     int
	closed bool
}

// openPage opens url in a page of its own browser context (own storage and connections).
func openPage(t *testing.T, d *driver, url string, width, height int) *page {
	t.Helper()
	var res struct{ Page int }
	d.do(t, map[string]any{"kind": "open", "url": url, "width": width, "height": height, "timeoutMs": 30000}, 60*time.Second, &res)
	p := &page{t: t, d: d, id: res.Page}
	t.Cleanup(func() {
		if !p.closed {
			p.close()
		}
	})
	return p
}

// wait waits until the JavaScript expression expr is truthy in the page and decodes its value into
// out (nil: ignored). It fails the test after timeout, with msg.
func (p *page) wait(expr string, timeout time.Duration, out any, msg string) {
	p.t.Helper()
	var res struct{ Value json.RawMessage }
	if !p.try(map[string]any{"kind": "wait", "page": p.id, "expr": expr, "timeoutMs": timeout.Milliseconds()}, timeout+30*time.Second, &res) {
		p.t.Fatalf("%s (waited %v for %s)", msg, timeout, expr)
	}
	if out != nil {
		if err := json.Unmarshal(res.Value, out); err != nil {
			p.t.Fatalf("decode %s: %v", testkit.RedactSIDs(string(res.Value)), err)
		}
	}
}

// eval evaluates the JavaScript expression expr (a promise is awaited) and decodes its value.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	var res struct{ Value json.RawMessage }
	p.d.do(p.t, map[string]any{"kind": "eval", "page": p.id, "expr": expr}, 30*time.Second, &res)
	if out != nil {
		if err := json.Unmarshal(res.Value, out); err != nil {
			p.t.Fatalf("decode %s: %v", testkit.RedactSIDs(string(res.Value)), err)
		}
	}
}

func (p *page) click(selector string) {
	p.t.Helper()
	p.d.do(p.t, map[string]any{"kind": "click", "page": p.id, "selector": selector}, 30*time.Second, &struct{}{})
}

func (p *page) fill(selector, value string) {
	p.t.Helper()
	p.d.do(p.t, map[string]any{"kind": "fill", "page": p.id, "selector": selector, "value": value}, 30*time.Second, &struct{}{})
}

func (p *page) viewport(width, height int) {
	p.t.Helper()
	p.d.do(p.t, map[string]any{"kind": "viewport", "page": p.id, "width": width, "height": height}, 30*time.Second, &struct{}{})
}

func (p *page) screenshot(path string) {
	p.t.Helper()
	p.d.do(p.t, map[string]any{"kind": "screenshot", "page": p.id, "path": path}, 60*time.Second, &struct{}{})
}

// errors returns the console errors and uncaught exceptions of the page so far.
func (p *page) errors() []string {
	p.t.Helper()
	var res struct{ Errors []string }
	p.d.do(p.t, map[string]any{"kind": "errors", "page": p.id}, 30*time.Second, &res)
	return res.Errors
}

// close closes the page and returns its errors.
func (p *page) close() []string {
	p.t.Helper()
	p.closed = true
	var res struct{ Errors []string }
	p.d.do(p.t, map[string]any{"kind": "close", "page": p.id}, 30*time.Second, &res)
	return res.Errors
}

// try runs a job and reports whether it succeeded (a wait that timed out is not a driver failure).
func (p *page) try(job map[string]any, timeout time.Duration, out any) bool {
	p.t.Helper()
	ok, errText := p.d.tryDo(p.t, job, timeout, out)
	if !ok {
		p.t.Logf("run.js %v: %s", job["kind"], testkit.RedactSIDs(errText))
	}
	return ok
}
