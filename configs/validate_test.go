package configs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // appended to minimal unless it sets backends itself
		want []string
	}{
		{"listen not host:port", "listen: localhost\n", []string{`p.yaml:3: listen: "localhost" is not host:port`}},
		{"listen bad port", "listen: :http\n", []string{`p.yaml:3: listen: ":http" has an invalid port`}},
		{"listen port out of range", "listen: :70000\n", []string{`p.yaml:3: listen: ":70000" has an invalid port`}},
		{"backend url scheme", "backends:\n  - url: ftp://a:1\n",
			[]string{`p.yaml:2: backends[0].url: URL "ftp://a:1" needs an http, https, ws or wss scheme`}},
		{"backend url without port", "backends:\n  - url: http://a\n",
			[]string{`p.yaml:2: backends[0].url: URL "http://a": "a" is not host:port`}},
		{"backend url with path", "backends:\n  - url: http://a:1/app\n",
			[]string{`p.yaml:2: backends[0].url: URL "http://a:1/app" must not have a path ("/app"); the request path is forwarded as is`}},
		{"backend url missing", "backends:\n  - id: x\n", []string{`p.yaml:2: backends[0].url: required`}},
		{"negative weight", "backends:\n  - url: http://a:1\n    weight: -1\n",
			[]string{`p.yaml:3: backends[0].weight: must be between 0 and 1000000 (got -1)`}},
		{"duplicate ids", "backends:\n  - {id: a, url: 'http://a:1'}\n  - {id: a, url: 'http://b:1'}\n",
			[]string{`p.yaml:3: backends[1].id: duplicate backend id "a" (also backends[0])`}},
		{"duplicate defaulted ids", "backends:\n  - url: http://a:1\n  - url: http://a:1\n",
			[]string{`p.yaml:3: backends[1].id: duplicate backend id "http://a:1" (also backends[0])`}},
		{"id with spaces", "backends:\n  - {id: a b, url: 'http://a:1'}\n",
			[]string{`p.yaml:2: backends[0].id: "a b" must not contain spaces or control characters`}},
		{"no backends", "backends: []\n", []string{`p.yaml:1: backends: no backends: set backends, discovery.consul.services or discovery.kubernetes.services`}},
		{"sticky paths", "sticky:\n  paths: [socket.io, '/a?b']\n", []string{
			`p.yaml:4: sticky.paths[0]: "socket.io" must start with /`,
			`p.yaml:4: sticky.paths[1]: "/a?b" is not a plain URL path`}},
		{"sticky paths empty", "sticky:\n  paths: []\n", []string{`p.yaml:4: sticky.paths: needs at least one Engine.IO path`}},
		{"sticky ttl", "sticky:\n  session_ttl: 0s\n  ttl_margin: -1s\n", []string{
			`p.yaml:4: sticky.session_ttl: must be positive (got 0s)`,
			`p.yaml:5: sticky.ttl_margin: must not be negative (got -1s)`}},
		{"sticky cookie", "sticky:\n  cookie: 'a;b'\n", []string{`p.yaml:4: sticky.cookie: "a;b" is not a valid cookie name`}},
		{"unknown policy", "balancer:\n  policy: random\n",
			[]string{`p.yaml:4: balancer.policy: "random" is not one of round_robin, least_sessions, p2c, hash`}},
		{"hash key source", "balancer:\n  hash_key: {source: body}\n",
			[]string{`p.yaml:4: balancer.hash_key.source: "body" is not one of ip, header, cookie, query`}},
		{"hash key name missing", "balancer:\n  hash_key:\n    source: header\n",
			[]string{`p.yaml:4: balancer.hash_key.name: required with source header`}},
		{"hash key name with ip", "balancer:\n  hash_key:\n    name: x\n",
			[]string{`p.yaml:5: balancer.hash_key.name: not used with source ip (remove it)`}},
		{"epsilon", "balancer:\n  epsilon: 0\n", []string{`p.yaml:4: balancer.epsilon: must be a positive number (got 0)`}},
		{"epsilon NaN", "balancer:\n  epsilon: .nan\n", []string{`p.yaml:4: balancer.epsilon: must be a positive number (got NaN)`}},
		{"admission", "balancer:\n  admission: {rate: -1, burst: -2, max_sessions: -3}\n", []string{
			`p.yaml:4: balancer.admission.rate: must be between 0 and 1e+06 handshakes/s (got -1)`,
			`p.yaml:4: balancer.admission.burst: must not be negative (got -2)`,
			`p.yaml:4: balancer.admission.max_sessions: must not be negative (got -3)`}},
		{"ejection", "balancer:\n  ejection:\n    cooldown: 0s\n    max_fraction: 1.5\n", []string{
			`p.yaml:5: balancer.ejection.cooldown: must be positive (got 0s)`,
			`p.yaml:6: balancer.ejection.max_fraction: must be between 0 and 1 (got 1.5)`}},
		{"proxy limits", "proxy:\n  max_body_bytes: 0\n  upstream_timeout: 59s\n  dial_timeout: 0s\n  tunnel_idle_timeout: 1s\n  max_conns_per_backend: 0\n  shutdown_timeout: -1s\n", []string{
			`p.yaml:4: proxy.max_body_bytes: must be positive (got 0)`,
			`p.yaml:5: proxy.upstream_timeout: must be at least 1m0s (got 59s)`,
			`p.yaml:6: proxy.dial_timeout: must be positive (got 0s)`,
			`p.yaml:7: proxy.tunnel_idle_timeout: must be at least 1m0s (got 1s)`,
			`p.yaml:8: proxy.max_conns_per_backend: must be positive (got 0)`,
			`p.yaml:9: proxy.shutdown_timeout: must be positive (got -1s)`}},
		{"proxy timeouts", "proxy:\n  header_timeout: 0s\n  read_timeout: -1s\n  write_timeout: 0s\n", []string{
			`p.yaml:4: proxy.header_timeout: must be positive (got 0s)`,
			`p.yaml:5: proxy.read_timeout: must be positive (got -1s)`,
			`p.yaml:6: proxy.write_timeout: must be positive (got 0s)`}},
		{"backend tls on plain http", "backends:\n  - url: http://a:1\n    tls: {server_name: a.test}\n",
			[]string{`p.yaml:3: backends[0].tls: needs an https or wss url ("http://a:1" is plain)`}},
		{"backend tls ca file", "backends:\n  - url: https://a:1\n    tls:\n      ca_file: /nonexistent/ca.pem\n      server_name: 'a b'\n", []string{
			`p.yaml:4: backends[0].tls.ca_file: cannot read /nonexistent/ca.pem: open /nonexistent/ca.pem: no such file or directory`,
			`p.yaml:5: backends[0].tls.server_name: "a b" is not a host name or IP address`}},
		{"trusted proxies", "proxy:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n    - example.com\n", []string{
			`p.yaml:6: proxy.trusted_proxies[1]: "10.0.0.0/33" is not an IP address or CIDR`,
			`p.yaml:7: proxy.trusted_proxies[2]: "example.com" is not an IP address or CIDR`}},
		{"client limits", "proxy:\n  max_client_conns: -1\n  max_conns_per_ip: -2\n  max_tunnels: -3\n  reserved_fds: -4\n", []string{
			`p.yaml:4: proxy.max_client_conns: must not be negative (got -1; 0 means derived from the descriptor limit)`,
			`p.yaml:5: proxy.max_conns_per_ip: must not be negative (got -2; 0 means off)`,
			`p.yaml:6: proxy.max_tunnels: must not be negative (got -3; 0 means derived from the descriptor limit)`,
			`p.yaml:7: proxy.reserved_fds: must not be negative (got -4; 0 means no reserve)`}},
		{"proxy protocol peers", "proxy_protocol_from: [10.0.0.0/8, 10.0.0.0/33, lb.example]\n", []string{
			`p.yaml:3: proxy_protocol_from[1]: "10.0.0.0/33" is not an IP address or CIDR`,
			`p.yaml:3: proxy_protocol_from[2]: "lb.example" is not an IP address or CIDR`}},
		{"tls", "tls:\n  certificates:\n    - cert_file: a.pem\n    - key_file: b.key\n  min_version: '1.1'\n  client_auth:\n    mode: sometimes\n  redirect_listen: ':http'\n", []string{
			`p.yaml:5: tls.certificates[0].key_file: is required`,
			`p.yaml:6: tls.certificates[1].cert_file: is required`,
			`p.yaml:7: tls.min_version: "1.1" is not one of 1.2, 1.3`,
			`p.yaml:9: tls.client_auth.mode: "sometimes" is not one of required, optional`,
			`p.yaml:10: tls.redirect_listen: ":http" has an invalid port`}},
		{"tls options without certificates", "tls:\n  client_auth: {ca_file: ca.pem}\n  redirect_listen: ':80'\n", []string{
			`p.yaml:4: tls.client_auth.ca_file: needs tls.certificates (client certificates are a TLS feature)`,
			`p.yaml:5: tls.redirect_listen: needs tls.certificates (it redirects to the https listener)`}},
		{"log", "log:\n  level: verbose\n  format: xml\n", []string{
			`p.yaml:4: log.level: "verbose" is not one of debug, info, warn, error`,
			`p.yaml:5: log.format: "xml" is not one of json, console`}},
		{"admin", "admin:\n  listen: nowhere\n  token: a\n  token_file: b\n", []string{
			`p.yaml:4: admin.listen: "nowhere" is not host:port`,
			`p.yaml:6: admin.token_file: set token or token_file, not both`}},
		{"consul", "discovery:\n  consul:\n    address: ftp://c:1\n    services: [chat, chat, '']\n    tls: {cert_file: c}\n    wait_time: 11m\n    deregister_grace: -1s\n", []string{
			`p.yaml:5: discovery.consul.address: "ftp://c:1" needs an http, https or unix scheme`,
			`p.yaml:6: discovery.consul.services[1]: duplicate service "chat"`,
			`p.yaml:6: discovery.consul.services[2]: "" is not a Consul service name`,
			`p.yaml:7: discovery.consul.tls: cert_file and key_file must be set together`,
			`p.yaml:8: discovery.consul.wait_time: must be at most 10m0s (Consul's limit; got 11m0s)`,
			`p.yaml:9: discovery.consul.deregister_grace: must not be negative (got -1s)`}},
		{"health", "health:\n  active:\n    kind: tcp\n    path: health\n    interval: 1s\n    timeout: 2s\n    rise: 0\n    fall: 0\n", []string{
			`p.yaml:5: health.active.kind: "tcp" is not one of engineio, http`,
			`p.yaml:6: health.active.path: "health" must start with /`,
			`p.yaml:8: health.active.timeout: must not exceed interval (2s > 1s)`,
			`p.yaml:9: health.active.rise: must be at least 1 (got 0)`,
			`p.yaml:10: health.active.fall: must be at least 1 (got 0)`}},
		{"mirror without targets", "mirror:\n  enabled: true\n  sample: 2\n  queue: 0\n", []string{
			`p.yaml:4: mirror.enabled: mirroring needs mirror.backends or mirror.consul_service`,
			`p.yaml:5: mirror.sample: must be between 0 and 1 (got 2)`,
			`p.yaml:6: mirror.queue: must be positive (got 0)`}},
		{"mirror with both targets", "mirror:\n  backends: [{url: 'http://s:1'}]\n  consul_service: shadow\n",
			[]string{`p.yaml:5: mirror.consul_service: set mirror.backends or mirror.consul_service, not both`}},
		{"mirror backends checked", "mirror:\n  backends: [{url: 'http://s'}]\n",
			[]string{`p.yaml:4: mirror.backends[0].url: URL "http://s": "s" is not host:port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.yaml
			if !strings.HasPrefix(in, "backends:") {
				in = minimal + in
			}
			_, err := Parse("p.yaml", []byte(in))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, testCAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, yaml string }{
		{"https backend verified by a CA file", "backends:\n  - url: https://10.0.0.1:3443\n    tls: {ca_file: '" + ca + "', server_name: app.internal}\n"},
		{"wss backend verified by IP", "backends:\n  - url: wss://10.0.0.1:3443\n    tls: {server_name: 10.0.0.1}\n"},
		{"consul only", "discovery:\n  consul:\n    services: [chat]\n"},
		{"consul address forms", minimal + "discovery:\n  consul:\n    address: https://consul.service:8501\n"},
		{"consul unix socket", minimal + "discovery:\n  consul:\n    address: unix:///run/consul.sock\n"},
		{"listen any interface, port 0", minimal + "listen: ':0'\n"},
		{"ipv6 listen", minimal + "listen: '[::1]:8080'\n"},
		{"admin disabled", minimal + "admin:\n  listen: ''\n"},
		{"zero grace values", minimal + "sticky:\n  ttl_margin: 0s\nbalancer:\n  slow_start: 0\n"},
		{"hash on a header", minimal + "balancer:\n  policy: hash\n  hash_key: {source: header, name: X-User}\n"},
		{"mirror via consul", minimal + "mirror:\n  enabled: true\n  consul_service: chat-next\n"},
		{"weight zero", "backends:\n  - url: http://a:1\n    weight: 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("ok.yaml", []byte(tt.yaml)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil || err.Error() != "backends: no backends: set backends, discovery.consul.services or discovery.kubernetes.services" {
		t.Errorf("Default().Validate() = %v, want the no-backends error without a file", err)
	}
	c.Backends = []Backend{{URL: "http://127.0.0.1:3001"}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate before Normalize: %v", err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Normalize: %v", err)
	}
	c.Proxy.UpstreamTimeout = Duration(0)
	if err := c.Validate(); err == nil || err.Error() != "proxy.upstream_timeout: must be at least 1m0s (got 0s)" {
		t.Errorf("Validate = %v", err)
	}
}

func TestValidateDefaultedKeyUsesParentLine(t *testing.T) {
	// timeout keeps its default (not in the file), so the error points at the nearest key present:
	// health.active on line 4.
	_, err := Parse("p.yaml", []byte(minimal+"health:\n  active:\n    interval: 1s\n"))
	want := "p.yaml:4: health.active.timeout: must not exceed interval (2s > 1s)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// testCAPEM is a self-signed CA certificate made for the test (PEM).
func testCAPEM(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
