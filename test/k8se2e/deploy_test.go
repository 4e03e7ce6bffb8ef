package k8se2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/health"
	"sioproxy/health/kubetest"
	"sioproxy/test/testkit"
)

// kubectl runs kubectl with kubeconfig and returns its combined output.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl not found on PATH: apt-get install kubernetes-client (test/run.sh installs it)")
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// testDeployManifests applies deploy/kubernetes/example (the base and an example Socket.IO
// Deployment) to a real API server: first with --dry-run=server (every object validated and
// admitted by the server, nothing stored), then a broken copy that the server must refuse, then
// for real, and checks that the service account it creates may do exactly what sioproxy needs:
// a watcher started with that account's token reads the Service's slices. (A subtest of
// TestKubernetesDiscovery, which shares its API server.)
func testDeployManifests(t *testing.T, cl *kubetest.Cluster) {
	begin := time.Now()
	admin := cl.Client(kubetest.Admin)
	kubetest.Namespace(t, admin, "chat")
	dir := filepath.Join(testkit.Root(), "deploy", "kubernetes", "example")
	kc := cl.AdminKubeconfig

	out, err := kubectl(t, kc, "apply", "-k", dir, "--dry-run=server", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
	}
	got := strings.Fields(out)
	for i, name := range got {
		if strings.HasPrefix(name, "configmap/sioproxy-config-") {
			got[i] = "configmap/sioproxy-config-HASH"
		}
	}
	slices.Sort(got)
	want := []string{"configmap/sioproxy-config-HASH", "deployment.apps/sioproxy", "deployment.apps/socketio",
		"poddisruptionbudget.policy/sioproxy", "role.rbac.authorization.k8s.io/sioproxy-endpointslices",
		"rolebinding.rbac.authorization.k8s.io/sioproxy-endpointslices", "service/sioproxy", "service/socketio",
		"serviceaccount/sioproxy"}
	if !slices.Equal(got, want) {
		t.Fatalf("dry run applied %v\nwant %v", got, want)
	}
	if _, err := admin.AppsV1().Deployments("chat").Get(kubetest.Ctx(t), "sioproxy", metav1.GetOptions{}); err == nil {
		t.Fatal("the dry run stored the Deployment")
	}

	// The server validates: a copy with a negative replica count is refused.
	broken := t.TempDir()
	if err := os.CopyFS(broken, os.DirFS(filepath.Join(testkit.Root(), "deploy", "kubernetes"))); err != nil {
		t.Fatal(err)
	}
	dep := filepath.Join(broken, "base", "deployment.yaml")
	b, _ := os.ReadFile(dep)
	if err := os.WriteFile(dep, []byte(strings.Replace(string(b), "replicas: 2", "replicas: -1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl(t, kc, "apply", "-k", filepath.Join(broken, "example"), "--dry-run=server"); err == nil ||
		!strings.Contains(out, "spec.replicas") {
		t.Fatalf("a Deployment with replicas -1 was not refused: %v\n%s", err, out)
	}

	// For real; then the service account's rights, as the API server decides them.
	if out, err := kubectl(t, kc, "apply", "-k", dir); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	sa := "system:serviceaccount:chat:sioproxy"
	for _, c := range []struct {
		verb, resource string
		want           string
	}{
		{"list", "endpointslices.discovery.k8s.io", "yes"},
		{"watch", "endpointslices.discovery.k8s.io", "yes"},
		{"get", "secrets", "no"},
		{"list", "pods", "no"},
		{"create", "endpointslices.discovery.k8s.io", "no"},
	} {
		out, _ := kubectl(t, kc, "auth", "can-i", c.verb, c.resource, "-n", "chat", "--as", sa)
		if out != c.want {
			t.Errorf("can %s %s in chat: %q, want %s", c.verb, c.resource, out, c.want)
		}
	}

	// The config in the ConfigMap is valid for this sioproxy and watches the example's Service.
	cfgFile := filepath.Join(testkit.Root(), "deploy", "kubernetes", "base", "sioproxy.yaml")
	cfg, err := configs.Load(cfgFile)
	if err != nil {
		t.Fatalf("%s: %v", cfgFile, err)
	}
	k := cfg.Discovery.Kubernetes
	if !slices.Equal(k.Services, []string{"chat/socketio"}) || k.Kubeconfig != "" || cfg.Admin.Listen != "0.0.0.0:9090" {
		t.Fatalf("%s: services %v, kubeconfig %q, admin %q", cfgFile, k.Services, k.Kubeconfig, cfg.Admin.Listen)
	}
	if _, err := admin.CoreV1().Services("chat").Get(kubetest.Ctx(t), "socketio", metav1.GetOptions{}); err != nil {
		t.Fatalf("the watched Service: %v", err)
	}
	if out, err := exec.Command(testkit.ProxyBin(), "check", "-config", cfgFile, "-k8s-zone=zone-a").CombinedOutput(); err != nil {
		t.Fatalf("sioproxy check with the Deployment's flags: %v\n%s", err, out)
	}

	// A watcher with the service account's own token (TokenRequest, as the kubelet would mount
	// it) starts: list and watch are enough; it reads a slice of the Service.
	token, err := kubectl(t, kc, "create", "token", "sioproxy", "-n", "chat")
	if err != nil {
		t.Fatalf("kubectl create token: %v\n%s", err, token)
	}
	saKC := filepath.Join(t.TempDir(), "kubeconfig")
	kcText, _ := os.ReadFile(cl.Kubeconfig(kubetest.Admin))
	if err := os.WriteFile(saKC, []byte(strings.Replace(string(kcText), cl.Token(kubetest.Admin), token, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	kubetest.Apply(t, admin, kubetest.Slice("chat", "socketio", "socketio-abc12", "http", 3000,
		kubetest.Endpoint("chat", "socketio-7d9f-x1", podIP(1), "zone-a", kubetest.Ready)))
	published := make(chan []balancer.Spec, 4)
	w, err := health.NewKubernetesWatcher(health.KubernetesOptions{Kubeconfig: saKC, Services: k.Services, PortName: k.PortName,
		Grace: k.Grace.Duration(), Publish: func(_ string, s []balancer.Spec) { published <- s }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.Wait() }()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("watcher with the service account's token: %v", err)
	}
	if s := <-published; len(s) != 1 || s[0].ID != "chat/socketio-7d9f-x1" || s[0].Addr != podIP(1)+":3000" {
		t.Fatalf("published %+v", s)
	}
	t.Logf("deploy test: %v", time.Since(begin).Round(time.Millisecond))
}
