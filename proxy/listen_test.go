package proxy

import (
	"os"
	"path/filepath"
	"testing"
)

// The start-up warning about net.ipv4.tcp_migrate_req reads the sysctl so: "0" is off, anything
// else on, an unreadable file unknown (no warning).
func TestSysctlOn(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content   string
		on, known bool
	}{{"0\n", false, true}, {"1\n", true, true}, {"2", true, true}} {
		p := filepath.Join(dir, "s")
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if on, known := sysctlOn(p); on != tc.on || known != tc.known {
			t.Errorf("sysctl %q: on %v known %v, want %v %v", tc.content, on, known, tc.on, tc.known)
		}
	}
	if _, known := sysctlOn(filepath.Join(dir, "missing")); known {
		t.Error("a missing sysctl file is known")
	}
}
