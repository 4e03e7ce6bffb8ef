package configs

import (
	"reflect"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
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
		{"nested value", func(c *Config) { c.Discovery.Consul.TLS.CAFile = "ca.pem" }, []string{"discovery"}},
		{"several", func(c *Config) {
			c.Proxy.DialTimeout = Duration(time.Second)
			c.Log.Level = "debug"
			c.Mirror.Enabled = true
		}, []string{"proxy", "log", "mirror"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, nw := base(), base()
			tt.change(nw)
			if got := Diff(old, nw); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiffSameFileTwice(t *testing.T) {
	a, err := Parse("a.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(a, b); d != nil {
		t.Errorf("Diff of the same content = %v, want none (file names and lines are not config)", d)
	}
}

func TestDiffNil(t *testing.T) {
	got := Diff(nil, Default())
	want := []string{"listen", "sticky", "balancer", "proxy", "log", "admin", "discovery", "health", "mirror", "tls"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff(nil, Default()) = %v, want %v", got, want)
	}
	if got := Diff(nil, nil); got != nil {
		t.Errorf("Diff(nil, nil) = %v", got)
	}
}
