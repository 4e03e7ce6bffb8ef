package configs

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestBackendAddr(t *testing.T) {
	tests := []struct {
		url      string
		hostport string
		tls      bool
	}{
		{"http://10.0.0.1:3000", "10.0.0.1:3000", false},
		{"https://app.example:8443/", "app.example:8443", true},
		{"ws://[::1]:80", "[::1]:80", false},
		{"WSS://h:443", "h:443", true},
		{"ftp://h:21", "", false},
		{"http://h", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		hp, tls := Backend{URL: tt.url}.Addr()
		if hp != tt.hostport || tls != tt.tls {
			t.Errorf("Addr(%q) = %q, %v; want %q, %v", tt.url, hp, tls, tt.hostport, tt.tls)
		}
	}
}

func TestBackendEffective(t *testing.T) {
	zero := 0
	tests := []struct {
		b      Backend
		id     string
		weight int
	}{
		{Backend{URL: "http://a:1"}, "http://a:1", 1},
		{Backend{ID: "a", URL: "http://a:1", Weight: &zero}, "a", 0},
	}
	for _, tt := range tests {
		if id, w := tt.b.EffectiveID(), tt.b.EffectiveWeight(); id != tt.id || w != tt.weight {
			t.Errorf("%+v: id %q weight %d; want %q %d", tt.b, id, w, tt.id, tt.weight)
		}
	}
}

func TestBackendByID(t *testing.T) {
	c, err := Parse("b.yaml", []byte("backends:\n  - {id: a, url: 'http://a:1'}\n  - url: http://b:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := c.BackendByID("http://b:1"); !ok || b.URL != "http://b:1" {
		t.Errorf("BackendByID(url) = %+v, %v", b, ok)
	}
	if _, ok := c.BackendByID("zzz"); ok {
		t.Errorf("BackendByID(zzz) found something")
	}
}

func TestTrustedPrefixes(t *testing.T) {
	p := Proxy{TrustedProxies: []string{"10.1.2.3/8", "192.168.0.1", "::ffff:1.2.3.4", "fd00::/8", "junk"}}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.0.1/32"),
		netip.MustParsePrefix("1.2.3.4/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	if got := p.TrustedPrefixes(); !reflect.DeepEqual(got, want) {
		t.Errorf("TrustedPrefixes() = %v, want %v", got, want)
	}
}

func TestResolveToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := (Admin{TokenFile: file}).ResolveToken(); err != nil || got != "s3cret" {
		t.Errorf("Admin token from file = %q, %v", got, err)
	}
	if got, err := (Consul{Token: "t"}).ResolveToken(); err != nil || got != "t" {
		t.Errorf("Consul inline token = %q, %v", got, err)
	}
	if _, err := (Consul{TokenFile: file + ".missing"}).ResolveToken(); err == nil {
		t.Errorf("missing token file gave no error")
	}
}

func TestEnabledHelpers(t *testing.T) {
	d := Default()
	if d.Discovery.Consul.Enabled() || !d.Admin.Enabled() {
		t.Errorf("defaults: consul %v admin %v; want consul off, admin on", d.Discovery.Consul.Enabled(), d.Admin.Enabled())
	}
}

func TestNormalize(t *testing.T) {
	c := Default()
	c.Backends = []Backend{{URL: "http://a:1"}}
	c.Balancer.Admission.Rate = 2.5
	c.Sticky.Paths = []string{"/engine.io/"}
	c.Normalize()
	c.Normalize() // idempotent
	if c.Backends[0].ID != "http://a:1" || *c.Backends[0].Weight != 1 {
		t.Errorf("backend = %+v", c.Backends[0])
	}
	if c.Balancer.Admission.Burst != 3 {
		t.Errorf("burst = %d, want ceil(2.5) = 3", c.Balancer.Admission.Burst)
	}
	if c.Health.Active.Path != "/engine.io/" {
		t.Errorf("probe path = %q, want the first sticky path", c.Health.Active.Path)
	}
}
