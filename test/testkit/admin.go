package testkit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"sioproxy/admin"
)

// adminClient is the HTTP client of the admin API helpers.
var adminClient = &http.Client{Timeout: 10 * time.Second}

// BackendState is one backend as the admin API's GET /backends shows it: admin's own view, so
// a field the API gains is there for the tests too.
type BackendState = admin.BackendView

// BackendStates returns GET /backends of the proxy's admin listener, by backend id.
func (p *Proxy) BackendStates() (map[string]BackendState, error) {
	resp, err := adminClient.Get(p.AdminURL("/backends"))
	if err != nil {
		return nil, fmt.Errorf("GET /backends: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /backends: status %d", resp.StatusCode)
	}
	var vs []BackendState
	if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil {
		return nil, fmt.Errorf("GET /backends: %w", err)
	}
	out := make(map[string]BackendState, len(vs))
	for _, v := range vs {
		out[v.ID] = v
	}
	return out, nil
}

// Backends is BackendStates that fails the test on error.
func (p *Proxy) Backends(t testing.TB) map[string]BackendState {
	t.Helper()
	m, err := p.BackendStates()
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return m
}

// SessionSum is the sum of the backends' live session counts.
func SessionSum(m map[string]BackendState) int64 {
	var n int64
	for _, b := range m {
		n += b.Sessions
	}
	return n
}

// MetricsText returns the text of GET /metrics of the admin listener.
func (p *Proxy) MetricsText() (string, error) {
	resp, err := adminClient.Get(p.AdminURL("/metrics"))
	if err != nil {
		return "", fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return string(body), nil
}

// MetricValue sums the samples of metric name in a Prometheus text exposition whose label set
// contains every one of labels (each written `key="value"`); found is false when no sample matched.
func MetricValue(text, name string, labels ...string) (sum float64, found bool) {
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		match := true
		for _, want := range labels {
			match = match && strings.Contains(l, want)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// Metric reads one metric from the admin listener (see MetricValue); found is false when the proxy
// does not export it (or no sample matched).
func (p *Proxy) Metric(t testing.TB, name string, labels ...string) (float64, bool) {
	t.Helper()
	text, err := p.MetricsText()
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	v, ok := MetricValue(text, name, labels...)
	return v, ok
}

// Healthy reports whether the process runs and its admin listener answers GET /healthz.
func (p *Proxy) Healthy() error {
	if p.Exited() {
		return fmt.Errorf("%s exited: %v", p.Name, p.Err())
	}
	if p.Admin == "" {
		return nil
	}
	resp, err := adminClient.Get(p.AdminURL("/healthz"))
	if err != nil {
		return fmt.Errorf("%s: GET /healthz: %w", p.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: GET /healthz: status %d", p.Name, resp.StatusCode)
	}
	return nil
}

// States maps backend id to state in GET /backends.
func (p *Proxy) States(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	for id, b := range p.Backends(t) {
		m[id] = b.State
	}
	return m
}

// Metrics fetches and parses GET /metrics of the admin listener.
func (p *Proxy) Metrics(t testing.TB) Metrics {
	t.Helper()
	text, err := p.MetricsText()
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	m, err := ParseMetrics(text)
	if err != nil {
		t.Fatalf("%s: GET /metrics: %v", p.Name, err)
	}
	return m
}

// AdminGet fetches path from the proxy's admin listener and returns the status and body.
func (p *Proxy) AdminGet(t testing.TB, path string) (int, []byte) {
	t.Helper()
	return adminDo(t, http.MethodGet, p.AdminURL(path))
}

// AdminPost sends a POST without a body (and without a Content-Type: the admin API refuses form
// types on mutating endpoints) to path on the admin listener and returns the status and body.
func (p *Proxy) AdminPost(t testing.TB, path string) (int, []byte) {
	t.Helper()
	return adminDo(t, http.MethodPost, p.AdminURL(path))
}

// MustAdminPost is AdminPost that fails t unless the answer is 200.
func (p *Proxy) MustAdminPost(t testing.TB, path string) {
	t.Helper()
	if code, body := p.AdminPost(t, path); code != http.StatusOK {
		t.Fatalf("%s: POST %s: %d %s", p.Name, path, code, body)
	}
}

func adminDo(t testing.TB, method, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, body
}
