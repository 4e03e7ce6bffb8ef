package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid config; tests append to it.
const minimal = "backends:\n  - url: http://127.0.0.1:3001\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every line of the error, in order
	}{
		{"unknown top-level key", "listne: :8080\n" + minimal,
			[]string{"p.yaml:1: listne: unknown key (did you mean listen?)"}},
		{"unknown nested key", minimal + "proxy:\n  max_body_bytes: 10\n  upstream_timout: 90s\n",
			[]string{"p.yaml:5: proxy.upstream_timout: unknown key (did you mean upstream_timeout?)"}},
		{"unknown deeply nested key", minimal + "discovery:\n  consul:\n    tls:\n      ca_flie: x\n",
			[]string{"p.yaml:6: discovery.consul.tls.ca_flie: unknown key (did you mean ca_file?)"}},
		{"unknown key in a sequence element", "backends:\n  - url: http://a:1\n  - url: http://b:1\n    wieght: 2\n",
			[]string{"p.yaml:4: backends[1].wieght: unknown key (did you mean weight?)"}},
		{"key in the wrong section", minimal + "upstream_timeout: 90s\n",
			[]string{"p.yaml:3: upstream_timeout: unknown key (did you mean proxy.upstream_timeout?)"}},
		{"unknown key without suggestion", minimal + "zzz: 1\n",
			[]string{"p.yaml:3: zzz: unknown key"}},
		{"odd key is quoted", minimal + "\"a b\": 1\n",
			[]string{`p.yaml:3: "a b": unknown key`}},
		{"every error is reported", "listne: x\nproxy:\n  dial: 1s\nlog:\n  levle: info\n",
			[]string{
				"p.yaml:1: listne: unknown key (did you mean listen?)",
				"p.yaml:3: proxy.dial: unknown key",
				"p.yaml:5: log.levle: unknown key (did you mean level?)",
			}},
		{"complex key", minimal + "? [a]\n: 1\n",
			[]string{"p.yaml:3: keys must be strings"}},
		{"duplicate key", minimal + "listen: :1\nlisten: :2\n",
			[]string{"p.yaml:4: listen: duplicate key (first at line 3)"}},
		{"string given a sequence", "listen: [1]\n" + minimal,
			[]string{"p.yaml:1: listen: expected a string, got a sequence"}},
		{"string given a mapping", minimal + "log:\n  level: {a: 1}\n",
			[]string{"p.yaml:4: log.level: expected a string, got a mapping"}},
		{"int given a string", minimal + "proxy:\n  max_body_bytes: lots\n",
			[]string{`p.yaml:4: proxy.max_body_bytes: expected an integer, got "lots"`}},
		{"int given a fraction", minimal + "proxy:\n  max_body_bytes: 1.5\n",
			[]string{`p.yaml:4: proxy.max_body_bytes: expected an integer, got "1.5"`}},
		{"int overflow", minimal + "proxy:\n  max_body_bytes: 99999999999999999999\n",
			[]string{`p.yaml:4: proxy.max_body_bytes: expected an integer, got "99999999999999999999"`}},
		{"bool given a string", minimal + "sticky:\n  tag_sids: yes\n",
			[]string{`p.yaml:4: sticky.tag_sids: expected true or false, got "yes"`}},
		{"float given a string", minimal + "balancer:\n  epsilon: big\n",
			[]string{`p.yaml:4: balancer.epsilon: expected a number, got "big"`}},
		{"pointer int given a string", "backends:\n  - url: http://a:1\n    weight: heavy\n",
			[]string{`p.yaml:3: backends[0].weight: expected an integer, got "heavy"`}},
		{"duration without unit", minimal + "proxy:\n  dial_timeout: 3\n",
			[]string{`p.yaml:4: proxy.dial_timeout: duration "3" has no unit (write e.g. 3s or 3ms)`}},
		{"duration garbage", minimal + "proxy:\n  dial_timeout: soon\n",
			[]string{`p.yaml:4: proxy.dial_timeout: invalid duration "soon" (write e.g. 500ms, 30s, 1m30s)`}},
		{"duration given a sequence", minimal + "proxy:\n  dial_timeout: [1s]\n",
			[]string{`p.yaml:4: proxy.dial_timeout: expected a duration such as 30s, got a sequence`}},
		{"section given a scalar", minimal + "proxy: fast\n",
			[]string{`p.yaml:3: proxy: expected a mapping, got "fast"`}},
		{"sequence given a scalar", minimal + "sticky:\n  paths: /socket.io/\n",
			[]string{`p.yaml:4: sticky.paths: expected a sequence, got "/socket.io/"`}},
		{"sequence element of the wrong type", "backends:\n  - http://a:1\n",
			[]string{`p.yaml:2: backends[0]: expected a mapping, got "http://a:1"`}},
		{"document is not a mapping", "- a\n- b\n",
			[]string{"p.yaml:1: expected a mapping, got a sequence"}},
		{"syntax error on line 1", "a: b: c\n",
			[]string{"p.yaml:1: YAML syntax error: mapping values are not allowed in this context"}},
		{"syntax error later", minimal + "log:\n  level: \"info\n",
			[]string{"p.yaml:4: YAML syntax error: found unexpected end of stream"}},
		{"unknown anchor", minimal + "log: *nope\n",
			[]string{"p.yaml:3: YAML syntax error: unknown anchor 'nope' referenced"}},
		{"control character", minimal + "listen: \"a\x01\"\n",
			[]string{"p.yaml:3: YAML syntax error: control characters are not allowed"}},
		{"two documents", minimal + "---\nlisten: :1\n",
			[]string{"p.yaml:3: more than one YAML document (remove the second ---)"}},
		{"recursive merge", minimal + "proxy: &p\n  <<: *p\n",
			[]string{"p.yaml:3: proxy: nested too deeply (recursive alias or merge?)"}},
		{"bad merge value", minimal + "proxy:\n  <<: 5\n",
			[]string{"p.yaml:4: proxy: merge key (<<) needs a mapping or a sequence of mappings"}},
		{"validation error after a clean decode", minimal + "proxy:\n  upstream_timeout: 30s\n",
			[]string{"p.yaml:4: proxy.upstream_timeout: must be at least 1m0s (got 30s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("p.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseErrorIsStructured(t *testing.T) {
	_, err := Parse("p.yaml", []byte(minimal+"log:\n  level: loud\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	want := Error{File: "p.yaml", Line: 4, Path: "log.level", Msg: `"loud" is not one of debug, info, warn, error`}
	if *e != want {
		t.Errorf("got %+v, want %+v", *e, want)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("p.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	one := 1
	want.Backends = []Backend{{ID: "http://127.0.0.1:3001", URL: "http://127.0.0.1:3001", Weight: &one}}
	want.Health.Active.Path = "/socket.io/"
	if d := ChangedKeys(want, c); len(d) != 0 {
		t.Errorf("sections differ from the defaults: %v\n got %+v", d, c)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"sticky.paths", c.Sticky.Paths, []string{"/socket.io/"}},
		{"sticky.tag_sids", c.Sticky.TagSIDs, true},
		{"sticky.session_ttl", c.Sticky.SessionTTL.Duration(), 60 * time.Second},
		{"sticky.ttl_margin", c.Sticky.TTLMargin.Duration(), 15 * time.Second},
		{"balancer.policy", c.Balancer.Policy, "p2c"},
		{"balancer.hash_key.source", c.Balancer.HashKey.Source, "ip"},
		{"balancer.epsilon", c.Balancer.Epsilon, 0.25},
		{"balancer.slow_start", c.Balancer.SlowStart.Duration(), 30 * time.Second},
		{"balancer.ejection.cooldown", c.Balancer.Ejection.Cooldown.Duration(), 10 * time.Second},
		{"balancer.ejection.max_fraction", c.Balancer.Ejection.MaxFraction, 0.5},
		{"proxy.max_body_bytes", c.Proxy.MaxBodyBytes, 1_000_000},
		{"proxy.upstream_timeout", c.Proxy.UpstreamTimeout.Duration(), 90 * time.Second},
		{"proxy.dial_timeout", c.Proxy.DialTimeout.Duration(), 3 * time.Second},
		{"proxy.tunnel_idle_timeout", c.Proxy.TunnelIdleTimeout.Duration(), 90 * time.Second},
		{"proxy.max_conns_per_backend", c.Proxy.MaxConnsPerBackend, 20000},
		{"proxy.shutdown_timeout", c.Proxy.ShutdownTimeout.Duration(), 30 * time.Second},
		{"proxy.max_conns_per_ip", c.Proxy.MaxConnsPerIP, 0}, // the per-IP limit is off by default
		{"log", c.Log, Log{Level: "info", Format: "json"}},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9090"},
		{"discovery.consul.warning_eligible", c.Discovery.Consul.WarningEligible, true},
		{"discovery.consul.deregister_grace", c.Discovery.Consul.DeregisterGrace.Duration(), 30 * time.Second},
		{"discovery.consul.wait_time", c.Discovery.Consul.WaitTime.Duration(), 30 * time.Second},
		{"health.active", c.Health.Active, ActiveProbe{Kind: "engineio", Path: "/socket.io/", Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second), Rise: 2, Fall: 3}},
		{"mirror.sample", c.Mirror.Sample, 1.0},
		{"mirror.queue", c.Mirror.Queue, 256},
		{"backends[0].id", c.Backends[0].ID, "http://127.0.0.1:3001"},
		{"backends[0].weight", *c.Backends[0].Weight, 1},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestParseValues(t *testing.T) {
	y := `
base: &base
  weight: 3
backends:
  - <<: *base
    url: https://b1.example:8443
    drain: true
  - url: wss://[::1]:9000
    weight: 0
sticky:
  paths: [/engine.io/, /socket.io/]
  tag_sids: false
  session_ttl: 1m30s
  ttl_margin: 0
  cookie: SRV
listen: ~
proxy:
  max_body_bytes: 1e6
  trusted_proxies: [10.0.0.0/8, 192.168.1.1]
health:
  active:
    kind: http
`
	_, err := Parse("p.yaml", []byte(y))
	if err == nil || err.Error() != "p.yaml:2: base: unknown key" {
		t.Fatalf("err = %v, want the unknown anchor holder rejected", err)
	}
	// Anchors must live inside known keys; move the anchor onto the first backend instead.
	y = strings.Replace(y, "base: &base\n  weight: 3\n", "", 1)
	y = strings.Replace(y, "  - <<: *base\n", "  - &base\n    weight: 3\n", 1)
	y = strings.Replace(y, "  - url: wss", "  - <<: *base\n    url: wss", 1)
	c, err := Parse("p.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	b0, b1 := c.Backends[0], c.Backends[1]
	if b0.ID != "https://b1.example:8443" || *b0.Weight != 3 || !b0.Drain {
		t.Errorf("backend 0 = %+v (weight %d)", b0, *b0.Weight)
	}
	// The merge brings weight 3, url and drain; explicit keys override.
	if b1.URL != "wss://[::1]:9000" || *b1.Weight != 0 || !b1.Drain {
		t.Errorf("backend 1 = %+v (weight %d)", b1, *b1.Weight)
	}
	if got := c.Sticky; !reflect.DeepEqual(got, Sticky{Paths: []string{"/engine.io/", "/socket.io/"}, SessionTTL: Duration(90 * time.Second), Cookie: "SRV"}) {
		t.Errorf("sticky = %+v", got)
	}
	if c.Listen != "127.0.0.1:8080" {
		t.Errorf("null listen = %q, want the default", c.Listen)
	}
	if c.Proxy.MaxBodyBytes != 1_000_000 {
		t.Errorf("max_body_bytes = %d", c.Proxy.MaxBodyBytes)
	}
	if c.Health.Active.Path != "/" {
		t.Errorf("http probe path = %q, want /", c.Health.Active.Path)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "~\n"} {
		_, err := Parse("e.yaml", []byte(in))
		if err == nil || err.Error() != "e.yaml: backends: no backends: set backends, discovery.consul.services or discovery.kubernetes.services" {
			t.Errorf("Parse(%q) = %v, want the no-backends error", in, err)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("big.yaml", make([]byte, MaxFileSize+1))
	if err == nil || !strings.HasPrefix(err.Error(), "big.yaml: file too large") {
		t.Errorf("err = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(minimal+"proxy:\n  upstream_timout: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + ":4: proxy.upstream_timout: unknown key (did you mean upstream_timeout?)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), missing+": ") {
		t.Errorf("Load(missing) = %v, want a not-exist error naming the file", err)
	}
}
