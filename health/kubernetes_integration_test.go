package health

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sioproxy/balancer"
	"sioproxy/health/kubetest"
)

// kRecorder keeps the last set published for each service and counts publishes.
type kRecorder struct {
	mu     sync.Mutex
	last   map[string][]balancer.Spec
	count  map[string]int
	notify chan struct{}
}

func newKRecorder() *kRecorder {
	return &kRecorder{last: map[string][]balancer.Spec{}, count: map[string]int{}, notify: make(chan struct{}, 1)}
}

func (r *kRecorder) publish(service string, specs []balancer.Spec) {
	r.mu.Lock()
	r.last[service] = specs
	r.count[service]++
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *kRecorder) get(service string) ([]balancer.Spec, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[service], r.count[service]
}

// waitFor waits until the set of service renders as want; it returns the time since start.
func (r *kRecorder) waitFor(t *testing.T, service string, start time.Time, limit time.Duration, want string) time.Duration {
	t.Helper()
	deadline := time.After(limit)
	for {
		last, _ := r.get(service)
		if states(last) == want {
			return time.Since(start)
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("%s: after %v published %q, want %q", service, limit, states(last), want)
		}
	}
}

const testNS = "sio"

// pod is the endpoint of pod name at 10.213.0.N (never dialled: the watcher only reads).
func pod(name string, n int, c kubetest.Condition) discoveryv1.Endpoint {
	return kubetest.Endpoint(testNS, name, fmt.Sprintf("10.213.0.%d", n), "zone-"+string(rune('a'+n%2)), c)
}

// TestKubernetesWatcherAgainstAPIServer drives a real kube-apiserver (on a real etcd)
// through the changes the EndpointSlice controller makes during a rollout, a 250-pod
// service, RBAC refusals, and an API server crash and restart; it measures how fast
// each change reaches Publish.
func TestKubernetesWatcherAgainstAPIServer(t *testing.T) {
	begin := time.Now()
	cl := kubetest.Start(t, kubetest.Options{Users: []string{"listonly", "nobody", "reader"}})
	t.Logf("etcd and kube-apiserver ready in %v", time.Since(begin))
	admin := cl.Client(kubetest.Admin)
	kubetest.Namespace(t, admin, testNS)
	kubetest.Grant(t, admin, testNS, "listonly", "list")
	kubetest.Grant(t, admin, testNS, "reader", "list", "watch")

	// chat: two slices, as the EndpointSlice controller may cut a service; an extra
	// slice of another service and one without the label selector's label are ignored.
	kubetest.Apply(t, admin, kubetest.Slice(testNS, "chat", "chat-a", "http", 3000, pod("chat-1", 11, kubetest.Ready), pod("chat-2", 12, kubetest.Ready)))
	kubetest.Apply(t, admin, kubetest.Slice(testNS, "chat", "chat-b", "http", 3000, pod("chat-3", 13, kubetest.Ready), pod("chat-9", 19, kubetest.NotReady)))
	kubetest.Apply(t, admin, kubetest.Slice(testNS, "other", "other-a", "http", 3000, pod("other-1", 21, kubetest.Ready)))
	canary := kubetest.Slice(testNS, "chat", "chat-canary", "http", 3000, pod("chat-c", 31, kubetest.Ready))
	delete(canary.Labels, discoveryv1.LabelManagedBy)
	kubetest.Apply(t, admin, canary)
	// big: 250 endpoints in three slices of 100, 100 and 50.
	for s := range 3 {
		var eps []discoveryv1.Endpoint
		for i := s * 100; i < min(250, (s+1)*100); i++ {
			eps = append(eps, kubetest.Endpoint(testNS, fmt.Sprintf("big-%03d", i), fmt.Sprintf("10.214.%d.%d", i/200, i%200+1), "", kubetest.Ready))
		}
		kubetest.Apply(t, admin, kubetest.Slice(testNS, "big", fmt.Sprintf("big-%d", s), "", 4000, eps...))
	}

	t.Run("start errors", func(t *testing.T) {
		for _, c := range []struct {
			user, service, want string
		}{
			{"listonly", testNS + "/chat", `not allowed to watch endpointslices.discovery.k8s.io in namespace "sio"`},
			{"nobody", testNS + "/chat", `not allowed to list endpointslices.discovery.k8s.io in namespace "sio"`},
			{kubetest.Admin, "nope/chat", `namespace "nope" does not exist`},
		} {
			w, err := NewKubernetesWatcher(KubernetesOptions{Kubeconfig: cl.Kubeconfig(c.user), Services: []string{c.service},
				Logger: zaptest.NewLogger(t), Publish: func(string, []balancer.Spec) { t.Error("published") }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			err = w.Start(ctx)
			cancel()
			w.Wait()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s as %s: Start = %v, want an error with %q", c.service, c.user, err, c.want)
			} else {
				t.Logf("%s as %s: %v", c.service, c.user, err)
			}
		}
		if _, err := NewKubernetesWatcher(KubernetesOptions{Kubeconfig: t.TempDir() + "/missing", Services: []string{"a/b"},
			Publish: func(string, []balancer.Spec) {}}); err == nil || !strings.Contains(err.Error(), "kubeconfig") {
			t.Errorf("missing kubeconfig: %v", err)
		}
	})

	// The watcher runs as "reader": list and watch on endpointslices in the namespace, nothing more.
	rec := newKRecorder()
	w, err := NewKubernetesWatcher(KubernetesOptions{
		Kubeconfig: cl.Kubeconfig("reader"), Services: []string{testNS + "/chat", testNS + "/big"},
		LabelSelector: discoveryv1.LabelManagedBy + "=" + kubetest.ManagedBy, Zone: "zone-b",
		Grace: time.Second, Resync: 200 * time.Millisecond,
		Logger: zaptest.NewLogger(t), Publish: rec.publish,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.Wait() }()
	start := time.Now()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Start (checks, list, watch, first publish) took %v", time.Since(start))
	const chat, big = testNS + "/chat", testNS + "/big"
	all := "sio/chat-1=active sio/chat-2=active sio/chat-3=active "
	// Published before Start returned, and whole.
	if got, _ := rec.get(chat); states(got) != all {
		t.Fatalf("chat at Start: %q, want %q", states(got), all)
	}
	if got, n := rec.get(big); len(got) != 250 || n != 1 || got[0].ID != "sio/big-000" || got[249].ID != "sio/big-249" || got[7].Addr != "10.214.0.8:4000" {
		t.Fatalf("big at Start: %d backends in %d publishes", len(got), n)
	}
	if got, _ := rec.get(chat); got[0] != (balancer.Spec{ID: "sio/chat-1", Addr: "10.213.0.11:3000", Weight: 1, State: balancer.Active,
		Source: SourceKubernetes, Zone: "zone-b"}) {
		t.Fatalf("spec %+v", got[0])
	}
	if !w.Healthy() {
		t.Fatal("not healthy after Start")
	}

	var delays []string
	step := func(name, service, want string, limit time.Duration, do func()) {
		t.Helper()
		start := time.Now()
		do()
		d := rec.waitFor(t, service, start, limit, want)
		delays = append(delays, fmt.Sprintf("%-44s %v", name+":", d.Round(time.Millisecond)))
	}
	sliceA := func(c2 kubetest.Condition) {
		kubetest.Apply(t, admin, kubetest.Slice(testNS, "chat", "chat-a", "http", 3000, pod("chat-1", 11, kubetest.Ready), pod("chat-2", 12, c2)))
	}
	step("endpoint terminating (serving)", chat, "sio/chat-1=active sio/chat-2=draining sio/chat-3=active ", 2*time.Second,
		func() { sliceA(kubetest.Terminating) })
	step("endpoint ready again", chat, all, 2*time.Second, func() { sliceA(kubetest.Ready) })
	step("endpoint not ready (draining)", chat, "sio/chat-1=active sio/chat-2=draining sio/chat-3=active ", 2*time.Second,
		func() { sliceA(kubetest.NotReady) })
	step("not ready: dropped after the 1 s grace", chat, "sio/chat-1=active sio/chat-3=active ", 3*time.Second, func() {})
	step("endpoint back", chat, all, 2*time.Second, func() { sliceA(kubetest.Ready) })
	step("slice deleted (draining)", chat, "sio/chat-1=active sio/chat-2=active sio/chat-3=draining ", 2*time.Second,
		func() { kubetest.Delete(t, admin, testNS, "chat-b") })
	step("deleted: dropped after the 1 s grace", chat, "sio/chat-1=active sio/chat-2=active ", 3*time.Second, func() {})
	step("slice added", chat, "sio/chat-1=active sio/chat-2=active sio/chat-4=active ", 2*time.Second, func() {
		kubetest.Apply(t, admin, kubetest.Slice(testNS, "chat", "chat-b", "http", 3000, pod("chat-4", 14, kubetest.Ready)))
	})
	all = "sio/chat-1=active sio/chat-2=active sio/chat-4=active "

	// A change of a slice that changes no backend publishes nothing (resyncs neither: at
	// 200 ms several ran by now); the next real change publishes once.
	_, before := rec.get(chat)
	sl, err := admin.DiscoveryV1().EndpointSlices(testNS).Get(kubetest.Ctx(t), "chat-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl.Labels["unrelated"] = "x"
	if _, err := admin.DiscoveryV1().EndpointSlices(testNS).Update(kubetest.Ctx(t), sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	step("terminating after a no-op update", chat, "sio/chat-1=active sio/chat-2=draining sio/chat-4=active ", 2*time.Second,
		func() { sliceA(kubetest.Terminating) })
	if _, after := rec.get(chat); after != before+1 {
		t.Fatalf("%d publishes for one change (a no-op update or a resync published)", after-before)
	}
	step("ready again", chat, all, 2*time.Second, func() { sliceA(kubetest.Ready) })
	if _, n := rec.get(big); n != 1 {
		t.Fatalf("big published %d times, want once (nothing changed)", n)
	}

	// The API server crashes: the last set stays, Healthy turns false.
	lastChat, countChat := rec.get(chat)
	start = time.Now()
	cl.KillAPIServer()
	pollUntil(t, 10*time.Second, func() bool { return !w.Healthy() })
	delays = append(delays, fmt.Sprintf("%-44s %v", "API server killed, unhealthy after:", time.Since(start).Round(time.Millisecond)))
	if got, n := rec.get(chat); !slices.Equal(got, lastChat) || n != countChat {
		t.Fatalf("set changed with the API server down: %q", states(got))
	}
	if got, _ := rec.get(big); len(got) != 250 {
		t.Fatalf("big lost backends with the API server down: %d", len(got))
	}
	// It comes back (same etcd): healthy again, no publish for the unchanged sets, and
	// changes flow again.
	start = time.Now()
	cl.StartAPIServer()
	restarted := time.Since(start)
	pollUntil(t, 70*time.Second, func() bool { return w.Healthy() }) // the reflector's backoff can reach 30 s (x2 jitter)
	delays = append(delays, fmt.Sprintf("%-44s %v (the API server's own start: %v)", "API server restarted, healthy after:",
		time.Since(start).Round(time.Millisecond), restarted.Round(time.Millisecond)))
	step("change after the restart", chat, "sio/chat-1=active sio/chat-2=draining sio/chat-4=active ", 5*time.Second,
		func() { sliceA(kubetest.Terminating) })
	if _, n := rec.get(chat); n != countChat+1 {
		t.Fatalf("%d publishes after the restart for one change, want 1 (no burst on reconnect)", n-countChat)
	}
	if _, n := rec.get(big); n != 1 {
		t.Fatalf("big published %d times, want once", n)
	}
	for _, d := range delays {
		t.Log(d)
	}
	t.Logf("whole test: %v", time.Since(begin).Round(time.Millisecond))
}
