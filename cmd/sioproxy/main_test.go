package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sioproxy/configs"
)

func runArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := runArgs("-version"); code != 0 || !strings.HasPrefix(out, "sioproxy ") {
		t.Errorf("-version: %d %q", code, out)
	}
	if code, _, errs := runArgs("-h"); code != 0 || !strings.Contains(errs, "-backend") {
		t.Errorf("-h: %d %q", code, errs)
	}
}

func TestStartupErrorsAreOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{"no backends", []string{"-listen", "127.0.0.1:0"}, 1, "no backends"},
		{"bad backend", []string{"-backend", "ftp://x:1", "-admin-listen", ""}, 1, "backend"},
		{"bad level", []string{"-backend", "http://127.0.0.1:1", "-log-level", "loud"}, 1, "level"},
		{"port in use", []string{"-listen", busy.Addr().String(), "-backend", "http://127.0.0.1:1", "-admin-listen", ""}, 1, "address already in use"},
		{"missing file", []string{"-config", "/nonexistent.yaml"}, 1, "/nonexistent.yaml"},
		{"tls cert without key", []string{"-backend", "http://127.0.0.1:1", "-tls-cert", "c.pem"}, 1, "-tls-cert and -tls-key go together"},
		{"tls cert file missing", []string{"-listen", "127.0.0.1:0", "-backend", "http://127.0.0.1:1", "-admin-listen", "",
			"-tls-cert", "/nonexistent/c.pem", "-tls-key", "/nonexistent/k.pem"}, 1, "/nonexistent/c.pem"},
		{"bad proxy protocol peer", []string{"-backend", "http://127.0.0.1:1", "-proxy-protocol-from", "lb"}, 1, `(proxy_protocol_from[0]): "lb" is not an IP address or CIDR`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runArgs(c.args...)
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			last := lines[len(lines)-1]
			if code != c.code || !strings.Contains(last, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, c.code, c.want)
			}
			if c.code == 1 && len(lines) != 1 {
				t.Fatalf("want one line, got %d: %q", len(lines), errs)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:8080\nbackends:\n  - url: http://127.0.0.1:3001\n"), 0o644)
	os.WriteFile(bad, []byte("listen: 127.0.0.1:8080\nbackends:\n  - url: http://127.0.0.1:3001\nproxy:\n  upstream_timout: 90s\n"), 0o644)
	if code, out, errs := runArgs("check", "-config", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("good config: %d %q %q", code, out, errs)
	}
	code, _, errs := runArgs("check", "-config", bad)
	if code != 1 || !strings.Contains(errs, "bad.yaml:5") || !strings.Contains(errs, "upstream_timout") {
		t.Errorf("bad config: %d %q, want bad.yaml:5 and the key", code, errs)
	}
	if code, _, _ := runArgs("check"); code != 2 {
		t.Errorf("check without -config: %d", code)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	os.WriteFile(f, []byte("listen: 127.0.0.1:8080\nbackends:\n  - url: http://127.0.0.1:3001\n  - url: http://127.0.0.1:3002\nlog:\n  level: warn\n"), 0o644)
	o, err := parseFlags("t", []string{"-config", f, "-listen", "127.0.0.1:9999", "-backend", "http://127.0.0.1:4000"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || len(cfg.Backends) != 1 || cfg.Backends[0].URL != "http://127.0.0.1:4000" || cfg.Log.Level != "warn" {
		t.Fatalf("merged config: listen %s backends %v level %s", cfg.Listen, cfg.Backends, cfg.Log.Level)
	}
}

func TestListenerFlags(t *testing.T) {
	o, err := parseFlags("t", []string{"-backend", "http://127.0.0.1:4000", "-tls-cert", "c.pem", "-tls-key", "k.pem",
		"-proxy-protocol-from", "10.0.0.0/8", "-proxy-protocol-from", "192.0.2.7"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TLS.Certificates) != 1 || cfg.TLS.Certificates[0] != (configs.Certificate{CertFile: "c.pem", KeyFile: "k.pem"}) || cfg.TLS.MinVersion != "1.2" {
		t.Errorf("tls: %+v", cfg.TLS)
	}
	if got := cfg.ProxyProtocolPrefixes(); len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.7/32" {
		t.Errorf("proxy_protocol_from: %v", got)
	}
}

// Flags and file combine one way: the file is read, every given flag overrides its key, and the
// result is validated once. A file that only sets sticky.paths is fine when -backend flags give the
// backends (engine.io-client's own suite runs so, with /engine.io/).
func TestFlagsAndFileOneWay(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "paths.yaml")
	os.WriteFile(f, []byte("sticky:\n  paths: [/engine.io/]\n"), 0o644)
	o, err := parseFlags("t", []string{"-config", f, "-backend", "http://127.0.0.1:3001", "-backend", "http://127.0.0.1:3002"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatalf("a file with sticky.paths only and -backend flags: %v", err)
	}
	if len(cfg.Backends) != 2 || len(cfg.Sticky.Paths) != 1 || cfg.Sticky.Paths[0] != "/engine.io/" {
		t.Fatalf("merged: backends %v paths %v", cfg.Backends, cfg.Sticky.Paths)
	}
	// -path overrides the file's paths; the active probe path derives from the result.
	o, _ = parseFlags("t", []string{"-config", f, "-backend", "http://127.0.0.1:3001", "-path", "/a/", "-path", "/b/"}, &bytes.Buffer{})
	cfg, err = loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sticky.Paths) != 2 || cfg.Sticky.Paths[0] != "/a/" || cfg.Health.Active.Path != "/a/" {
		t.Fatalf("-path: paths %v, probe path %q", cfg.Sticky.Paths, cfg.Health.Active.Path)
	}
	// Flags alone work too, and a bad value set by a flag is reported as the flag's.
	code, _, errs := runArgs("-backend", "http://127.0.0.1:1", "-path", "socket.io", "-admin-listen", "")
	if code != 1 || !strings.Contains(errs, "-path (sticky.paths[0])") {
		t.Fatalf("bad -path: exit %d, %q; want the flag named", code, errs)
	}
}

// The Kubernetes flags: -kubeconfig, -k8s-service (repeatable, replacing the file's services) and
// -k8s-zone give discovery.kubernetes; with them no backend is needed; a bad service is reported
// as the flag's.
func TestKubernetesFlags(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.yaml")
	os.WriteFile(f, []byte("discovery:\n  kubernetes:\n    services: [a/b]\n    grace: 5s\n"), 0o644)
	o, err := parseFlags("t", []string{"-config", f, "-kubeconfig", "/etc/kc", "-k8s-service", "chat/socketio",
		"-k8s-service", "chat/api", "-k8s-zone", "eu-1a"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Discovery.Kubernetes
	if k.Kubeconfig != "/etc/kc" || len(k.Services) != 2 || k.Services[0] != "chat/socketio" || k.Services[1] != "chat/api" ||
		k.Zone != "eu-1a" || k.Grace.Duration().Seconds() != 5 || len(cfg.Backends) != 0 {
		t.Fatalf("merged: %+v, backends %v", k, cfg.Backends)
	}
	o, _ = parseFlags("t", []string{"-k8s-service", "chat/socketio"}, &bytes.Buffer{})
	if _, err := loadConfig(o); err != nil {
		t.Fatalf("flags alone: %v", err)
	}
	code, _, errs := runArgs("-k8s-service", "socketio", "-admin-listen", "")
	if code != 1 || !strings.Contains(errs, "-k8s-service (discovery.kubernetes.services[0])") || !strings.Contains(errs, "namespace/name") {
		t.Fatalf("bad -k8s-service: exit %d, %q", code, errs)
	}
	if code, _, errs := runArgs("-h"); code != 0 || !strings.Contains(errs, "-k8s-service NAMESPACE/NAME") {
		t.Errorf("-h does not show the Kubernetes usage: %q", errs)
	}
}
