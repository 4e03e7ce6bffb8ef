package configs

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// MaxWeight is the largest backend weight accepted.
const MaxWeight = 1_000_000

// EffectiveID is the backend's id: ID, or the URL when ID is empty.
func (b Backend) EffectiveID() string {
	if b.ID != "" {
		return b.ID
	}
	return b.URL
}

// EffectiveWeight is the backend's weight: *Weight, or 1 when unset.
func (b Backend) EffectiveWeight() int {
	if b.Weight == nil {
		return 1
	}
	return *b.Weight
}

// Addr returns the host:port to dial and whether to use TLS (https or wss). It returns "", false for
// a URL that does not validate.
func (b Backend) Addr() (hostport string, tls bool) {
	u, err := parseBackendURL(b.URL)
	if err != nil {
		return "", false
	}
	return u.Host, u.Scheme == "https" || u.Scheme == "wss"
}

// parseBackendURL parses and checks a backend URL: http, https, ws or wss, a host and an explicit
// port, no user info, no path beyond "/", no query or fragment.
func parseBackendURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss":
		return nil, fmt.Errorf("URL %q needs an http, https, ws or wss scheme", raw)
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("URL %q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("URL %q must not contain user info", raw)
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("URL %q must not have a path (%q); the request path is forwarded as is", raw, u.Path)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("URL %q must not have a query or fragment", raw)
	}
	if err := checkHostPort(u.Host, false); err != nil {
		return nil, fmt.Errorf("URL %q: %v", raw, err)
	}
	return u, nil
}

// BackendByID returns the static backend with the given effective id.
func (c *Config) BackendByID(id string) (Backend, bool) {
	for _, b := range c.Backends {
		if b.EffectiveID() == id {
			return b, true
		}
	}
	return Backend{}, false
}

// TrustedPrefixes returns proxy.trusted_proxies as prefixes (a bare IP becomes a /32 or /128).
// Entries that do not parse are skipped; Validate reports them.
func (p Proxy) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(p.TrustedProxies))
	for _, s := range p.TrustedProxies {
		if pfx, err := parseTrusted(s); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Enabled reports whether some discovery provider is on.
func (d Discovery) Enabled() bool { return d.Consul.Enabled() }

// Enabled reports whether Consul discovery is on (at least one service is watched).
func (c Consul) Enabled() bool { return len(c.Services) > 0 }

// ResolveToken returns the Consul ACL token: token, or the trimmed contents of token_file.
func (c Consul) ResolveToken() (string, error) { return resolveToken(c.Token, c.TokenFile) }

// Enabled reports whether the admin listener is on.
func (a Admin) Enabled() bool { return a.Listen != "" }

// ResolveToken returns the admin token: token, or the trimmed contents of token_file ("" = no token).
func (a Admin) ResolveToken() (string, error) { return resolveToken(a.Token, a.TokenFile) }

func resolveToken(token, file string) (string, error) {
	if file == "" {
		return token, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// Normalize fills the values that derive from other keys: backend ids (the URL) and weights (1),
// the admission burst (ceil(rate)), and the active probe path (the first sticky path for engineio,
// "/" for http). Parse calls it; call it on a Config built in code. It is idempotent.
func (c *Config) Normalize() {
	normalizeBackends(c.Backends)
	normalizeBackends(c.Mirror.Backends)
	if a := &c.Balancer.Admission; a.Burst == 0 && a.Rate > 0 && a.Rate <= maxRate {
		a.Burst = max(1, int(math.Ceil(a.Rate)))
	}
	if p := &c.Health.Active; p.Path == "" {
		switch {
		case p.Kind == "http":
			p.Path = "/"
		case len(c.Sticky.Paths) > 0:
			p.Path = c.Sticky.Paths[0]
		default:
			p.Path = "/socket.io/"
		}
	}
}

func normalizeBackends(bs []Backend) {
	for i := range bs {
		b := &bs[i]
		if b.ID == "" {
			b.ID = b.URL
		}
		if b.Weight == nil {
			w := 1
			b.Weight = &w
		}
	}
}
