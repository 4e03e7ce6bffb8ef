package consultest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "consul")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cacheBin := filepath.Join(dir, "cache", "consul-"+Version)
	if err := os.MkdirAll(filepath.Dir(cacheBin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cacheBin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env, cache string
		want, wantErr    string
	}{
		{"env", exe, "", exe, ""},
		{"env missing", filepath.Join(dir, "nope"), "", "", "run test/consul/build.sh"},
		{"env directory", dir, "", "", "not an executable"},
		{"env not executable", plain, "", "", "not an executable"},
		{"cache", "", filepath.Join(dir, "cache"), cacheBin, ""},
		{"cache empty", "", filepath.Join(dir, "empty"), "", "SIOPROXY_CONSUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SIOPROXY_CONSUL", tc.env)
			t.Setenv("SIOPROXY_CACHE", tc.cache)
			got, err := Binary()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Binary() = %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Binary() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
