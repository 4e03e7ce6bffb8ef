package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TLSFiles are a test CA and a server certificate it signed, as PEM files.
type TLSFiles struct {
	CA   string // the CA certificate
	Cert string // the server certificate
	Key  string // the server's private key
}

// MakeTLS creates, with openssl (Requirements.Tools must name it), a CA and a server certificate
// for the subject alternative names sans (each "DNS:name" or "IP:addr") in dir.
func MakeTLS(t testing.TB, dir string, sans ...string) TLSFiles {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key")}
	ext := filepath.Join(dir, "ext.cnf")
	extText := "subjectAltName=" + strings.Join(sans, ",") + "\nbasicConstraints=CA:FALSE\n" +
		"keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
	if err := os.WriteFile(ext, []byte(extText), 0o644); err != nil {
		t.Fatal(err)
	}
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
	steps := [][]string{
		append(append([]string{"req", "-x509"}, ec...), "-keyout", filepath.Join(dir, "ca.key"), "-out", f.CA,
			"-days", "2", "-subj", "/CN=sioproxy test CA"),
		append(append([]string{"req"}, ec...), "-keyout", f.Key, "-out", filepath.Join(dir, "server.csr"),
			"-subj", "/CN=sioproxy test backend"),
		{"x509", "-req", "-in", filepath.Join(dir, "server.csr"), "-CA", f.CA, "-CAkey", filepath.Join(dir, "ca.key"),
			"-CAcreateserial", "-out", f.Cert, "-days", "2", "-extfile", ext},
	}
	for _, args := range steps {
		cmd := exec.Command(Tool("openssl"), args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return f
}

// WriteFile writes content to name in a temporary directory of the test and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
