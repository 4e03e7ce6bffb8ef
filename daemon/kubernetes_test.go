package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"sioproxy/configs"
	"sioproxy/health/kubetest"
)

// kubeDiscovery is the discovery section of a daemon test watching services as user of cl.
func kubeDiscovery(cl *kubetest.Cluster, user string, services ...string) string {
	return fmt.Sprintf("discovery:\n  kubernetes:\n    kubeconfig: %s\n    services: [%s]\n    grace: 1s\n",
		cl.Kubeconfig(user), strings.Join(services, ", "))
}

// waitBackends waits until /backends renders (id=state, in id order) as want.
func (r *running) waitBackends(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got strings.Builder
		for _, v := range r.backends(t) {
			fmt.Fprintf(&got, "%s=%s ", v.ID, v.State)
		}
		if got.String() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/backends %q, want %q", got.String(), want)
		}
		time.Sleep(20 * time.Millisecond) // /backends is HTTP state: nothing to wait on
	}
}

// Kubernetes discovery in the running process, against a real API server: started with the
// daemon, its gauge registered once across reloads that add a service, a reload whose identity
// may not watch refused with the running watch kept, a service no longer watched draining for
// its grace, and a start that cannot watch failing Run. The slices' endpoints are terminating
// (draining): nothing dials their addresses; sessions go to the static backend.
func TestKubernetesDiscoveryLifecycle(t *testing.T) {
	cl := kubetest.Start(t, kubetest.Options{Users: []string{"proxy", "nowatch"}})
	api := cl.Client(kubetest.Admin)
	kubetest.Namespace(t, api, "sio")
	kubetest.Grant(t, api, "sio", "proxy", "list", "watch")
	kubetest.Grant(t, api, "sio", "nowatch", "list")
	kubetest.Apply(t, api, kubetest.Slice("sio", "chat", "chat-x", "http", 3000,
		kubetest.Endpoint("sio", "chat-1", "10.213.0.11", "z1", kubetest.Terminating)))
	kubetest.Apply(t, api, kubetest.Slice("sio", "other", "other-x", "http", 3000,
		kubetest.Endpoint("sio", "other-1", "10.213.0.21", "z1", kubetest.Terminating)))

	urls := demoBackends(t, 1)
	r := startDaemon(t, urls, kubeDiscovery(cl, "proxy", "sio/chat"))
	r.waitBackends(t, "b1=active sio/chat-1=draining ")
	if _, owner := r.session(t); owner != "b1" {
		t.Fatalf("session on %s", owner)
	}
	r.write(t, urls, kubeDiscovery(cl, "proxy", "sio/chat", "sio/other"))
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload adding a service: %d %s", code, body)
	}
	r.waitBackends(t, "b1=active sio/chat-1=draining sio/other-1=draining ")
	if m := r.metrics(t); strings.Count(m, "\nsioproxy_kubernetes_healthy 1") != 1 {
		t.Fatalf("sioproxy_kubernetes_healthy: %s", grep(m, "kubernetes"))
	}

	before := r.d.disco.current.Load()
	r.write(t, urls, kubeDiscovery(cl, "nowatch", "sio/chat"))
	code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", "")
	if code != 400 || !strings.Contains(body, "not allowed to watch") {
		t.Fatalf("reload as an identity without watch: %d %s, want 400 naming the missing right", code, body)
	}
	if now := r.d.disco.current.Load(); now != before || before.kubeCancel == nil || !r.d.disco.kubeHealthy() {
		t.Fatal("a refused reload replaced or stopped the running Kubernetes watch")
	}
	r.waitBackends(t, "b1=active sio/chat-1=draining sio/other-1=draining ")

	// Kubernetes discovery off: its backends drain for the 1 s grace, then go.
	r.write(t, urls, "")
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload without Kubernetes: %d %s", code, body)
	}
	if now := r.d.disco.current.Load(); now == before || now.kube != nil || before.kubeCancel != nil {
		t.Fatal("the replaced watch set still runs")
	}
	r.waitBackends(t, "b1=active ")
	if _, owner := r.session(t); owner != "b1" {
		t.Fatalf("session on %s", owner)
	}

	// A process whose identity may not watch does not start.
	cfg, err := configs.Parse("k.yaml", []byte("listen: 127.0.0.1:0\nadmin:\n  listen: ''\n"+kubeDiscovery(cl, "nowatch", "sio/chat")))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Run(ctx); err == nil || !strings.Contains(err.Error(), `not allowed to watch endpointslices.discovery.k8s.io in namespace "sio"`) {
		t.Fatalf("Run as an identity without watch: %v", err)
	}
}
