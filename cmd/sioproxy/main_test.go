package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sioproxy/balancer"
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

func TestBackendSetMergesAndDrains(t *testing.T) {
	var published [][]balancer.Spec
	s := newBackendSet(func(specs []balancer.Spec) { published = append(published, specs) })
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}})
	s.Set("consul:chat", []balancer.Spec{{ID: "c", State: balancer.Active}, {ID: "a", State: balancer.Draining}})
	last := published[len(published)-1]
	if len(last) != 3 || last[0].ID != "c" || last[1].ID != "a" || last[1].State != balancer.Draining {
		t.Fatalf("merged: %+v (sources merge in name order, first wins a duplicate id)", last)
	}
	if err := s.Drain("b", true); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(published[len(published)-1], "b"); st != balancer.Draining {
		t.Fatalf("b after drain: %v", st)
	}
	s.Set("static", []balancer.Spec{{ID: "a"}, {ID: "b", State: balancer.Active}})
	if st := stateOf(published[len(published)-1], "b"); st != balancer.Draining {
		t.Fatalf("drain must survive a source update, b is %v", st)
	}
	s.Drain("b", false)
	if st := stateOf(published[len(published)-1], "b"); st != balancer.Active {
		t.Fatalf("b after undrain: %v", st)
	}
	if err := s.Drain("zzz", true); err == nil {
		t.Fatal("drain of an unknown backend succeeded")
	}
	n := len(published)
	s.SetStatus("b", false)
	s.SetStatus("b", false)
	if len(published) != n+1 || stateOf(published[len(published)-1], "b") != balancer.Draining {
		t.Fatalf("probe down: %d publishes, b %v", len(published)-n, stateOf(published[len(published)-1], "b"))
	}
}

func stateOf(specs []balancer.Spec, id string) balancer.State {
	for _, s := range specs {
		if s.ID == id {
			return s.State
		}
	}
	return 255
}
