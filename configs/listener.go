package configs

import (
	"fmt"
	"net/netip"
)

// ServerTLS configures TLS termination on the client listener (the `tls` section).
type ServerTLS struct {
	Certificates   []Certificate `yaml:"certificates"`    // served certificates, chosen by SNI; the first is the default
	MinVersion     string        `yaml:"min_version"`     // "1.2" or "1.3"; default "1.2"
	ClientAuth     ClientAuth    `yaml:"client_auth"`     // optional client certificates
	RedirectListen string        `yaml:"redirect_listen"` // host:port of a plain listener that redirects to https ("" = none)
}

// Certificate is one certificate and key pair, PEM files re-read on reload.
type Certificate struct {
	CertFile string `yaml:"cert_file"` // certificate chain, leaf first
	KeyFile  string `yaml:"key_file"`  // its private key
}

// ClientAuth configures client certificates.
type ClientAuth struct {
	CAFile string `yaml:"ca_file"` // PEM bundle of the CAs client certificates must chain to ("" = off)
	Mode   string `yaml:"mode"`    // "required" or "optional" (verified when given); default "required"
}

// TLS versions accepted by tls.min_version.
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// Client certificate modes of tls.client_auth.mode.
const (
	ClientAuthRequired = "required"
	ClientAuthOptional = "optional"
)

// Enabled reports whether TLS termination is configured.
func (t ServerTLS) Enabled() bool { return len(t.Certificates) > 0 }

// ProxyProtocolPrefixes returns proxy_protocol_from as prefixes (a bare IP becomes a /32 or /128).
// Entries that do not parse are skipped; Validate reports them.
func (c *Config) ProxyProtocolPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.ProxyProtocolFrom))
	for _, s := range c.ProxyProtocolFrom {
		if p, err := parseTrusted(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// listener validates the keys of the client listener: TLS, the PROXY protocol and the connection
// limits.
func (v *validator) listener(c *Config) {
	for i, s := range c.ProxyProtocolFrom {
		if _, err := parseTrusted(s); err != nil {
			v.add(fmt.Sprintf("proxy_protocol_from[%d]", i), "%q is not an IP address or CIDR", s)
		}
	}
	t := &c.TLS
	for i, cert := range t.Certificates {
		p := fmt.Sprintf("tls.certificates[%d]", i)
		if cert.CertFile == "" {
			v.add(p+".cert_file", "is required")
		}
		if cert.KeyFile == "" {
			v.add(p+".key_file", "is required")
		}
	}
	v.oneOf("tls.min_version", t.MinVersion, TLS12, TLS13)
	v.oneOf("tls.client_auth.mode", t.ClientAuth.Mode, ClientAuthRequired, ClientAuthOptional)
	if !t.Enabled() {
		if t.ClientAuth.CAFile != "" {
			v.add("tls.client_auth.ca_file", "needs tls.certificates (client certificates are a TLS feature)")
		}
		if t.RedirectListen != "" {
			v.add("tls.redirect_listen", "needs tls.certificates (it redirects to the https listener)")
		}
	}
	if t.RedirectListen != "" {
		v.hostPort("tls.redirect_listen", t.RedirectListen, true)
	}
	p := &c.Proxy
	for _, f := range []struct {
		key  string
		n    int
		zero string // what 0 means
	}{
		{"proxy.max_client_conns", p.MaxClientConns, "derived from the descriptor limit"},
		{"proxy.max_conns_per_ip", p.MaxConnsPerIP, "off"},
		{"proxy.max_tunnels", p.MaxTunnels, "derived from the descriptor limit"},
		{"proxy.reserved_fds", p.ReservedFDs, "no reserve"},
	} {
		if f.n < 0 {
			v.add(f.key, "must not be negative (got %d; 0 means %s)", f.n, f.zero)
		}
	}
}
