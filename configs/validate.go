package configs

import (
	"crypto/x509"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits enforced by Validate.
const (
	// MinLongPollTimeout is the floor of proxy.upstream_timeout and proxy.tunnel_idle_timeout: a
	// long-poll or an idle WebSocket must outlive pingInterval+pingTimeout (design invariant 3).
	MinLongPollTimeout = 60 * time.Second
	// MaxConsulWait is the longest blocking query Consul serves.
	MaxConsulWait = 10 * time.Minute
	maxRate       = 1e6
)

// validator collects validation errors, locating each key path through the source line map.
type validator struct {
	src  *source
	errs []*Error
}

func (v *validator) add(path, format string, args ...any) {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if v.src != nil {
		if flag, ok := v.src.flagOf(path); ok {
			e.Path = "-" + flag + " (" + path + ")"
		} else {
			e.File = v.src.file
			e.Line = v.src.lineOf(path)
		}
	}
	v.errs = append(v.errs, e)
}

// flagOf returns the flag that set path or one of its ancestors.
func (s *source) flagOf(path string) (string, bool) {
	for p := path; p != ""; p = parentPath(p) {
		if f, ok := s.flags[p]; ok {
			return f, true
		}
	}
	return "", false
}

// derived reports whether a parsed config got path from Normalize rather than from the file; the
// key it derives from is checked instead, so the problem is reported once.
func (v *validator) derived(path string) bool {
	if v.src == nil {
		return false
	}
	_, inFile := v.src.lines[path]
	return !inFile
}

// lineOf returns the line of path, or of its nearest ancestor present in the file; 0 if none.
func (s *source) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := s.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Validate checks every value and cross-key rule. Errors are *Error values joined with errors.Join,
// located by file and line when the Config came from Parse or Load.
func (c *Config) Validate() error {
	v := &validator{src: c.src}
	v.hostPort("listen", c.Listen, true)
	v.backends("backends", c.Backends)
	if len(c.Backends) == 0 && !c.Discovery.Enabled() {
		v.add("backends", "no backends: set backends, discovery.consul.services or discovery.kubernetes.services")
	}
	v.sticky(&c.Sticky)
	v.balancer(&c.Balancer)
	v.proxy(&c.Proxy)
	v.listener(c)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "console")
	if c.Admin.Listen != "" {
		v.hostPort("admin.listen", c.Admin.Listen, true)
	}
	v.exclusive("admin", "token", c.Admin.Token, "token_file", c.Admin.TokenFile)
	v.consul(&c.Discovery.Consul)
	v.kubernetes(&c.Discovery.Kubernetes)
	v.health(&c.Health.Active)
	v.mirror(&c.Mirror)
	return joinErrors(v.errs)
}

func (v *validator) hostPort(path, s string, allowZeroPort bool) {
	if err := checkHostPort(s, allowZeroPort); err != nil {
		v.add(path, "%v", err)
	}
}

// checkHostPort accepts "host:port", "[v6]:port" and ":port" with a numeric port.
func checkHostPort(s string, allowZeroPort bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if strings.ContainsAny(host, " \t/\\@?#") {
		return fmt.Errorf("%q has an invalid host", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !allowZeroPort) {
		return fmt.Errorf("%q has an invalid port", s)
	}
	return nil
}

func (v *validator) oneOf(path, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		v.add(path, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

func (v *validator) exclusive(section, a, av, b, bv string) {
	if av != "" && bv != "" {
		v.add(joinPath(section, b), "set %s or %s, not both", a, b)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be positive (got %s)", d)
	}
}

func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative (got %s)", d)
	}
}

func (v *validator) atLeast(path string, d Duration, floor time.Duration) {
	if d.Duration() < floor {
		v.add(path, "must be at least %s (got %s)", floor, d)
	}
}

// fraction checks 0 <= f <= 1 (NaN fails).
func (v *validator) fraction(path string, f float64) {
	if !(f >= 0 && f <= 1) {
		v.add(path, "must be between 0 and 1 (got %v)", f)
	}
}

func (v *validator) backends(path string, bs []Backend) {
	seen := map[string]string{}
	for i, b := range bs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if _, err := parseBackendURL(b.URL); err != nil {
			v.add(p+".url", "%v", err)
		}
		if w := b.EffectiveWeight(); w < 0 || w > MaxWeight {
			v.add(p+".weight", "must be between 0 and %d (got %d)", MaxWeight, w)
		}
		v.backendTLS(p+".tls", b)
		id := b.EffectiveID()
		if id == "" {
			continue
		}
		if strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			v.add(p+".id", "%q must not contain spaces or control characters", id)
		}
		if prev, dup := seen[id]; dup {
			v.add(p+".id", "duplicate backend id %q (also %s)", id, prev)
			continue
		}
		seen[id] = p
	}
}

// backendTLS checks a backend's tls section: only for an https or wss URL, a CA file that reads
// as PEM certificates, a server name that is a host name or an IP address.
func (v *validator) backendTLS(path string, b Backend) {
	t := b.TLS
	if t == (BackendTLS{}) {
		return
	}
	if _, isTLS := b.Addr(); !isTLS {
		if _, err := parseBackendURL(b.URL); err == nil {
			v.add(path, "needs an https or wss url (%q is plain)", b.URL)
		}
	}
	if t.CAFile != "" {
		if err := checkPEMCerts(t.CAFile); err != nil {
			v.add(path+".ca_file", "%v", err)
		}
	}
	if t.ServerName != "" && !validServerName(t.ServerName) {
		v.add(path+".server_name", "%q is not a host name or IP address", t.ServerName)
	}
}

// checkPEMCerts reads file and requires at least one PEM certificate in it.
func checkPEMCerts(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", file, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("%s holds no PEM certificate", file)
	}
	return nil
}

// validServerName accepts an IP address or a DNS name (labels of letters, digits, '-' and '_').
func validServerName(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (v *validator) sticky(s *Sticky) {
	if len(s.Paths) == 0 {
		v.add("sticky.paths", "needs at least one Engine.IO path")
	}
	for i, p := range s.Paths {
		v.path(fmt.Sprintf("sticky.paths[%d]", i), p)
	}
	v.positive("sticky.session_ttl", s.SessionTTL)
	v.nonNegative("sticky.ttl_margin", s.TTLMargin)
	if s.Cookie != "" && !isToken(s.Cookie) {
		v.add("sticky.cookie", "%q is not a valid cookie name", s.Cookie)
	}
}

// path checks an absolute URL path.
func (v *validator) path(path, p string) {
	if !strings.HasPrefix(p, "/") {
		v.add(path, "%q must start with /", p)
		return
	}
	if strings.ContainsAny(p, "?# \t") || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		v.add(path, "%q is not a plain URL path", p)
	}
}

func (v *validator) balancer(b *BalancerConfig) {
	v.oneOf("balancer.policy", b.Policy, Policies...)
	switch b.HashKey.Source {
	case "ip":
		if b.HashKey.Name != "" {
			v.add("balancer.hash_key.name", "not used with source ip (remove it)")
		}
	case "header", "cookie", "query":
		if b.HashKey.Name == "" {
			v.add("balancer.hash_key.name", "required with source %s", b.HashKey.Source)
		} else if b.HashKey.Source != "query" && !isToken(b.HashKey.Name) {
			v.add("balancer.hash_key.name", "%q is not a valid %s name", b.HashKey.Name, b.HashKey.Source)
		}
	default:
		v.oneOf("balancer.hash_key.source", b.HashKey.Source, "ip", "header", "cookie", "query")
	}
	if !(b.Epsilon > 0) || math.IsInf(b.Epsilon, 0) {
		v.add("balancer.epsilon", "must be a positive number (got %v)", b.Epsilon)
	}
	v.nonNegative("balancer.slow_start", b.SlowStart)
	v.nonNegative("balancer.remove_grace", b.RemoveGrace)
	a := b.Admission
	if !(a.Rate >= 0 && a.Rate <= maxRate) {
		v.add("balancer.admission.rate", "must be between 0 and %g handshakes/s (got %v)", float64(maxRate), a.Rate)
	}
	if a.Burst < 0 {
		v.add("balancer.admission.burst", "must not be negative (got %d)", a.Burst)
	}
	if a.MaxSessions < 0 {
		v.add("balancer.admission.max_sessions", "must not be negative (got %d)", a.MaxSessions)
	}
	v.positive("balancer.ejection.cooldown", b.Ejection.Cooldown)
	v.fraction("balancer.ejection.max_fraction", b.Ejection.MaxFraction)
}

func (v *validator) proxy(p *Proxy) {
	if p.MaxBodyBytes <= 0 {
		v.add("proxy.max_body_bytes", "must be positive (got %d)", p.MaxBodyBytes)
	}
	v.positive("proxy.header_timeout", p.HeaderTimeout)
	v.positive("proxy.read_timeout", p.ReadTimeout)
	v.positive("proxy.write_timeout", p.WriteTimeout)
	v.atLeast("proxy.upstream_timeout", p.UpstreamTimeout, MinLongPollTimeout)
	v.positive("proxy.dial_timeout", p.DialTimeout)
	v.atLeast("proxy.tunnel_idle_timeout", p.TunnelIdleTimeout, MinLongPollTimeout)
	if p.MaxConnsPerBackend <= 0 {
		v.add("proxy.max_conns_per_backend", "must be positive (got %d)", p.MaxConnsPerBackend)
	}
	v.positive("proxy.shutdown_timeout", p.ShutdownTimeout)
	for i, s := range p.TrustedProxies {
		if _, err := parseTrusted(s); err != nil {
			v.add(fmt.Sprintf("proxy.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", s)
		}
	}
}

func (v *validator) consul(c *Consul) {
	if c.Address != "" {
		if err := checkConsulAddress(c.Address); err != nil {
			v.add("discovery.consul.address", "%v", err)
		}
	}
	v.exclusive("discovery.consul", "token", c.Token, "token_file", c.TokenFile)
	seen := map[string]bool{}
	for i, s := range c.Services {
		p := fmt.Sprintf("discovery.consul.services[%d]", i)
		switch {
		case strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\r\n/?#"):
			v.add(p, "%q is not a Consul service name", s)
		case seen[s]:
			v.add(p, "duplicate service %q", s)
		}
		seen[s] = true
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		v.add("discovery.consul.tls", "cert_file and key_file must be set together")
	}
	v.nonNegative("discovery.consul.deregister_grace", c.DeregisterGrace)
	v.positive("discovery.consul.wait_time", c.WaitTime)
	if c.WaitTime.Duration() > MaxConsulWait {
		v.add("discovery.consul.wait_time", "must be at most %s (Consul's limit; got %s)", MaxConsulWait, c.WaitTime)
	}
}

// checkConsulAddress accepts host:port, http(s)://host:port and unix:///path.
func checkConsulAddress(s string) error {
	if !strings.Contains(s, "://") {
		return checkHostPort(s, false)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a valid address", s)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", s)
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%q has no socket path", s)
		}
	default:
		return fmt.Errorf("%q needs an http, https or unix scheme", s)
	}
	return nil
}

func (v *validator) health(p *ActiveProbe) {
	v.oneOf("health.active.kind", p.Kind, "engineio", "http")
	if p.Path != "" && !v.derived("health.active.path") {
		v.path("health.active.path", p.Path)
	}
	v.positive("health.active.interval", p.Interval)
	v.positive("health.active.timeout", p.Timeout)
	if p.Timeout > p.Interval && p.Interval > 0 {
		v.add("health.active.timeout", "must not exceed interval (%s > %s)", p.Timeout, p.Interval)
	}
	if p.Rise < 1 {
		v.add("health.active.rise", "must be at least 1 (got %d)", p.Rise)
	}
	if p.Fall < 1 {
		v.add("health.active.fall", "must be at least 1 (got %d)", p.Fall)
	}
}

func (v *validator) mirror(m *Mirror) {
	v.fraction("mirror.sample", m.Sample)
	if m.Queue <= 0 {
		v.add("mirror.queue", "must be positive (got %d)", m.Queue)
	}
	v.backends("mirror.backends", m.Backends)
	switch {
	case len(m.Backends) > 0 && m.ConsulService != "":
		v.add("mirror.consul_service", "set mirror.backends or mirror.consul_service, not both")
	case m.Enabled && len(m.Backends) == 0 && m.ConsulService == "":
		v.add("mirror.enabled", "mirroring needs mirror.backends or mirror.consul_service")
	}
	if m.ConsulService != "" && strings.ContainsAny(m.ConsulService, " \t\r\n/?#") {
		v.add("mirror.consul_service", "%q is not a Consul service name", m.ConsulService)
	}
}

// isToken reports whether s is an RFC 7230 token (header and cookie names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
