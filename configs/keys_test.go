package configs

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestChangedKeys(t *testing.T) {
	base := func() *Config {
		c, err := Parse("d.yaml", []byte(minimal))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"listen", func(c *Config) { c.Listen = ":1" }, []string{"listen"}},
		{"backend weight", func(c *Config) { w := 5; c.Backends[0].Weight = &w }, []string{"backends"}},
		{"backend added", func(c *Config) { c.Backends = append(c.Backends, Backend{URL: "http://b:1"}) }, []string{"backends"}},
		{"nil and empty lists are equal", func(c *Config) { c.Proxy.TrustedProxies = []string{} }, nil},
		{"nested value", func(c *Config) { c.Discovery.Consul.TLS.CAFile = "ca.pem" }, []string{"discovery.consul.tls.ca_file"}},
		{"several", func(c *Config) {
			c.Proxy.DialTimeout = Duration(time.Second)
			c.Log.Level = "debug"
			c.Mirror.Enabled = true
		}, []string{"proxy.dial_timeout", "log.level", "mirror.enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, nw := base(), base()
			tt.change(nw)
			if got := ChangedKeys(old, nw); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ChangedKeys = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangedKeysSameFileTwice(t *testing.T) {
	a, err := Parse("a.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	if d := ChangedKeys(a, b); d != nil {
		t.Errorf("ChangedKeys of the same content = %v, want none (file names and lines are not config)", d)
	}
}

func TestChangedKeysNil(t *testing.T) {
	got := ChangedKeys(nil, Default())
	if !slices.Contains(got, "listen") || !slices.Contains(got, "proxy.upstream_timeout") || slices.Contains(got, "backends") {
		t.Errorf("ChangedKeys(nil, Default()) = %v", got)
	}
	if got := ChangedKeys(nil, nil); got != nil {
		t.Errorf("ChangedKeys(nil, nil) = %v", got)
	}
}

func TestKeysAndChangedKeys(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"listen", "backends", "sticky.paths", "proxy.upstream_timeout", "discovery.consul.tls.ca_file", "mirror.backends"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks %q", want)
		}
	}
	for _, section := range []string{"sticky", "proxy", "discovery", "discovery.consul", "discovery.consul.tls"} {
		if slices.Contains(keys, section) {
			t.Errorf("Keys() lists the section %q as a key", section)
		}
	}
	a, b := Default(), Default()
	if got := ChangedKeys(a, b); got != nil {
		t.Fatalf("ChangedKeys of two defaults = %v", got)
	}
	b.Proxy.DialTimeout = Duration(time.Second)
	b.Discovery.Consul.TLS.CAFile = "ca.pem"
	b.Backends = []Backend{{URL: "http://127.0.0.1:1"}}
	b.Sticky.Paths = []string{"/socket.io/"} // same list, a new slice
	if got, want := ChangedKeys(a, b), []string{"backends", "proxy.dial_timeout", "discovery.consul.tls.ca_file"}; !slices.Equal(got, want) {
		t.Fatalf("ChangedKeys = %v, want %v", got, want)
	}
}

func TestRedactedYAML(t *testing.T) {
	c := Default()
	c.Admin.Token = "s3cret-admin"
	c.Discovery.Consul.Token = "s3cret-consul"
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "s3cret") || !strings.Contains(s, "upstream_timeout: 1m30s") {
		t.Fatalf("redacted YAML:\n%s", s)
	}
	if c.Admin.Token != "s3cret-admin" {
		t.Fatal("Redacted changed the original")
	}
	if _, err := Decode("back.yaml", out); err != nil { // the schema's own keys, all of them known
		t.Fatalf("the YAML does not decode: %v", err)
	}
}
