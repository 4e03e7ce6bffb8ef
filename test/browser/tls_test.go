package browser

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/internal/testpki"
	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// trustingHome makes a HOME whose NSS database (.pki/nssdb, where Chromium on Linux looks for
// locally trusted roots) trusts the CA certificate caFile for TLS servers, with certutil.
func trustingHome(t *testing.T, caFile string) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + db, "--empty-password"},
		{"-A", "-d", "sql:" + db, "-n", "sioproxy test CA", "-t", "C,,", "-i", caFile},
	} {
		if out, err := exec.Command(testkit.Tool("certutil"), args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(testkit.Tool("certutil"), "-L", "-d", "sql:"+db).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sioproxy test CA") {
		t.Fatalf("certutil -L: the CA is not in the database: %v\n%s", err, out)
	}
	return home
}

// TestDemoOverHTTPS opens the page of `sioproxy demo -tls-cert -tls-key` over https in Chromium,
// whose NSS database trusts the test CA (certificate errors are not ignored): each tab upgrades to
// wss, and a message from tab 1 reaches every tab. The shared browser, which does not trust the
// CA, must refuse the same page.
func TestDemoOverHTTPS(t *testing.T) {
	const tabs = 3
	ca, err := testpki.NewCA(t.TempDir(), "browser")
	if err != nil {
		t.Fatal(err)
	}
	site, err := ca.Server("demo", testpki.ECDSAP256, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	drv, err := startDriverEnv("browser-tls-tmp", "HOME="+trustingHome(t, ca.CertFile))
	if err != nil {
		t.Fatalf("browser with the test CA: %v", err)
	}
	defer drv.stop()

	addr := testkit.FreeAddr(t)
	p := testkit.Start(t, testkit.Command{Name: "sioproxy demo tls", Dir: testkit.Root(), Bin: testkit.ProxyBin(),
		Args: []string{"demo", "-listen", addr, "-log-level", "warn", "-tls-cert", site.CertFile, "-tls-key", site.KeyFile}})
	testkit.WaitTCP(t, p, addr, testkit.ProxyReadyTimeout)
	_, port, _ := strings.Cut(addr, ":")
	url := "https://localhost:" + port + "/"

	message := "hello over https at " + time.Now().Format("15:04:05.000")
	var res struct {
		Tabs []struct {
			Tab        int    `json:"tab"`
			Error      string `json:"error"`
			Backend    string `json:"backend"`
			Transport  string `json:"transport"`
			SID        string `json:"sid"`
			SawMessage bool   `json:"sawMessage"`
		} `json:"tabs"`
	}
	drv.do(t, map[string]any{"kind": "demo", "url": url, "tabs": tabs, "message": message,
		"screenshot": "/tmp/sioproxy-demo-https.png", "timeoutMs": 30000}, 90*time.Second, &res)
	if len(res.Tabs) != tabs {
		t.Fatalf("got %d tab results, want %d", len(res.Tabs), tabs)
	}
	for i, tab := range res.Tabs {
		t.Logf("tab %d over https: backend %q transport %q", i+1, tab.Backend, tab.Transport)
		if tab.Error != "" || tab.Backend == "" || tab.Transport != "websocket" || tab.SID == "" {
			t.Errorf("tab %d: error %q, backend %q, transport %q, sid_hash %q; want a backend over websocket (wss)", i+1, testkit.RedactSIDs(tab.Error), tab.Backend, tab.Transport, proxy.SIDHash(tab.SID))
		}
		if !tab.SawMessage {
			t.Errorf("tab %d (backend %q) never showed the message from tab 1", i+1, tab.Backend)
		}
	}

	// Control: a browser without the CA refuses the page; the trust above came from the database.
	var plain struct {
		Tabs []struct {
			Errors []string `json:"errors"`
		} `json:"tabs"`
	}
	browserDriver(t).do(t, map[string]any{"kind": "clients", "urls": []string{url}, "timeoutMs": 15000}, 60*time.Second, &plain)
	if len(plain.Tabs) != 1 || !strings.Contains(strings.Join(plain.Tabs[0].Errors, " "), "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("a browser without the test CA: %+v; want net::ERR_CERT_AUTHORITY_INVALID", plain.Tabs)
	}
}
