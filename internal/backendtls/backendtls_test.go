package backendtls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sioproxy/balancer"
)

func TestConfig(t *testing.T) {
	c, err := Config(balancer.Spec{ID: "b", Addr: "10.0.0.1:3443", TLS: true})
	if err != nil || c.ServerName != "10.0.0.1" || c.RootCAs != nil || c.InsecureSkipVerify {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = Config(balancer.Spec{ID: "b", Addr: "10.0.0.1:3443", TLSServerName: "app.internal"})
	if err != nil || c.ServerName != "app.internal" {
		t.Fatalf("server name: %+v %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, err := Config(balancer.Spec{ID: "b", Addr: "h:1", TLSCAFile: f}); err == nil || !strings.Contains(err.Error(), "backend b") {
			t.Errorf("CA file %s: %v, want an error naming the backend", f, err)
		}
	}
}
