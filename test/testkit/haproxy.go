package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartHAProxy writes cfg (an HAProxy configuration) into the test's log directory, runs HAProxy
// (Requirements.Tools must name "haproxy") in the foreground on it (-db: no daemon, logs on
// stderr) and waits until addr, one of its bind addresses, accepts connections. The config is
// checked first (-c), so that a bad one fails with HAProxy's own message.
func StartHAProxy(t testing.TB, name, cfg, addr string) *Proc {
	t.Helper()
	bin := Tool("haproxy")
	path := filepath.Join(LogDir(t), FileName(name)+".cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("%s: haproxy -c %s: %v\n%s", name, path, err, out)
	}
	p := Start(t, Command{Name: name, Dir: LogDir(t), Bin: bin, Args: []string{"-db", "-f", path}})
	WaitTCP(t, p, addr, 30*time.Second)
	return p
}
