package health

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"sioproxy/balancer"
)

// ep builds an endpoint of pod name at addr with the given conditions (nil = unset).
func ep(pod, addr string, ready, serving, terminating *bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	if pod != "" {
		e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: pod}
	}
	return e
}

// slice builds an IPv4 slice named name with one port per "name:port" pair.
func slice(name string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps}
}

func port(name string, p int32) discoveryv1.EndpointPort {
	dp := discoveryv1.EndpointPort{Port: ptr.To(p)}
	if name != "" {
		dp.Name = ptr.To(name)
	}
	return dp
}

func kspec(id, addr string, st balancer.State) balancer.Spec {
	return balancer.Spec{ID: id, Addr: addr, Weight: 1, State: st, Source: SourceKubernetes}
}

func TestEndpointState(t *testing.T) {
	T, F := ptr.To(true), ptr.To(false)
	for _, c := range []struct {
		ready, serving, terminating *bool
		want                        balancer.State
		ok                          bool
	}{
		{nil, nil, nil, balancer.Active, true}, // nil ready and serving read as true
		{T, T, F, balancer.Active, true},
		{T, nil, nil, balancer.Active, true},
		{F, T, T, balancer.Draining, true},   // in its termination grace, still serving
		{F, nil, T, balancer.Draining, true}, // serving unset: true
		{T, T, T, balancer.Draining, true},   // inconsistent, but terminating: no new sessions
		{F, F, T, balancer.Draining, false},  // terminating and no longer serving
		{F, F, F, balancer.Draining, false},  // failing readiness
		{F, nil, nil, balancer.Draining, false},
	} {
		st, ok := endpointState(discoveryv1.EndpointConditions{Ready: c.ready, Serving: c.serving, Terminating: c.terminating})
		if st != c.want || ok != c.ok {
			t.Errorf("ready=%v serving=%v terminating=%v: %v %v, want %v %v",
				ptr.Deref(c.ready, true), ptr.Deref(c.serving, true), ptr.Deref(c.terminating, false), st, ok, c.want, c.ok)
		}
	}
}

func TestSlicePort(t *testing.T) {
	udp := port("", 53)
	udp.Protocol = ptr.To(corev1.ProtocolUDP)
	for _, c := range []struct {
		ports []discoveryv1.EndpointPort
		name  string
		want  int
		ok    bool
	}{
		{[]discoveryv1.EndpointPort{port("", 3000)}, "", 3000, true},
		{[]discoveryv1.EndpointPort{port("web", 3000)}, "", 3000, true}, // the only port, whatever its name
		{[]discoveryv1.EndpointPort{port("metrics", 9100), port("http", 3000)}, "", 3000, true},
		{[]discoveryv1.EndpointPort{port("metrics", 9100), port("web", 3000)}, "", 0, false},
		{[]discoveryv1.EndpointPort{port("metrics", 9100), port("web", 3000)}, "web", 3000, true},
		{[]discoveryv1.EndpointPort{port("http", 3000)}, "web", 0, false},
		{[]discoveryv1.EndpointPort{udp}, "", 0, false},
		{[]discoveryv1.EndpointPort{{Name: ptr.To("http")}}, "", 0, false}, // no port number: all ports
		{nil, "", 0, false},
	} {
		got, ok := slicePort(c.ports, c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("%d ports, name %q: %d %v, want %d %v", len(c.ports), c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestKubernetesID(t *testing.T) {
	if got := KubernetesID("ns", "chat", "10.1.0.5", &corev1.ObjectReference{Kind: "Pod", Name: "chat-7f9c-x2"}); got != "ns/chat-7f9c-x2" {
		t.Errorf("pod: %q", got)
	}
	if got := KubernetesID("ns", "chat", "10.1.0.5", &corev1.ObjectReference{Kind: "Pod", Namespace: "other", Name: "p"}); got != "other/p" {
		t.Errorf("pod in its own namespace: %q", got)
	}
	if got := KubernetesID("ns", "chat", "10.1.0.5", nil); got != "ns/chat/10.1.0.5" {
		t.Errorf("no targetRef: %q", got)
	}
	if got := KubernetesID("ns", "chat", "10.1.0.5", &corev1.ObjectReference{Kind: "Node", Name: "n1"}); got != "ns/chat/10.1.0.5" {
		t.Errorf("not a pod: %q", got)
	}
}

func TestSpecsFromSlices(t *testing.T) {
	T, F := ptr.To(true), ptr.To(false)
	http := []discoveryv1.EndpointPort{port("http", 3000)}
	a := slice("chat-a", http,
		ep("p1", "10.1.0.1", T, T, F),
		ep("p2", "10.1.0.2", F, T, T), // terminating, serving
		ep("p3", "10.1.0.3", F, F, F), // not ready: left out
		ep("", "10.1.0.4", nil, nil, nil),
		ep("p9", "not-an-ip", T, T, F),
		discoveryv1.Endpoint{}, // no address
	)
	a.Endpoints[0].Zone = ptr.To("z1")
	b := slice("chat-b", []discoveryv1.EndpointPort{port("metrics", 9100), port("http", 3001)},
		ep("p5", "10.1.0.5", T, T, F),
		ep("p2", "10.1.0.2", T, T, F), // p2 again (a new slice has it ready): the Active copy wins
	)
	noPort := slice("chat-c", []discoveryv1.EndpointPort{port("grpc", 9000), port("metrics", 9100)}, ep("p7", "10.1.0.7", T, T, F))
	v6 := slice("chat-v6", http, ep("p1", "fd00::1", T, T, F), ep("p8", "fd00::8", T, T, F), ep("p6", "10.1.0.6", T, T, F))
	v6.AddressType = discoveryv1.AddressTypeIPv6
	fqdn := slice("chat-fqdn", http, ep("p4", "chat.example", T, T, F))
	fqdn.AddressType = discoveryv1.AddressTypeFQDN

	got, skipped := SpecsFromSlices("ns", "chat", []*discoveryv1.EndpointSlice{a, nil, b, noPort, v6, fqdn}, "")
	z1 := kspec("ns/p1", "10.1.0.1:3000", balancer.Active)
	z1.Zone = "z1"
	want := []balancer.Spec{
		kspec("ns/chat/10.1.0.4", "10.1.0.4:3000", balancer.Active),
		z1, // the IPv4 copy of a dual-stack pod
		kspec("ns/p2", "10.1.0.2:3001", balancer.Active),
		kspec("ns/p5", "10.1.0.5:3001", balancer.Active),
		kspec("ns/p8", "[fd00::8]:3000", balancer.Active),
	}
	if !slices.Equal(got, want) {
		t.Errorf("specs:\n got %v\nwant %v", got, want)
	}
	if !slices.Equal(skipped, []string{"chat-c"}) {
		t.Errorf("skipped %v, want [chat-c]", skipped)
	}
	// The same slices in another order give the same set.
	again, _ := SpecsFromSlices("ns", "chat", []*discoveryv1.EndpointSlice{fqdn, v6, noPort, b, a}, "")
	if !slices.Equal(again, want) {
		t.Errorf("order matters:\n got %v\nwant %v", again, want)
	}
	// A named port.
	got, skipped = SpecsFromSlices("ns", "chat", []*discoveryv1.EndpointSlice{noPort}, "grpc")
	if !slices.Equal(got, []balancer.Spec{kspec("ns/p7", "10.1.0.7:9000", balancer.Active)}) || len(skipped) != 0 {
		t.Errorf("port grpc: %v, skipped %v", got, skipped)
	}
	// Draining when the only copy is terminating.
	got, _ = SpecsFromSlices("ns", "chat", []*discoveryv1.EndpointSlice{a}, "")
	if i := slices.IndexFunc(got, func(s balancer.Spec) bool { return s.ID == "ns/p2" }); i < 0 || got[i].State != balancer.Draining {
		t.Errorf("terminating p2: %v", got)
	}
}

func TestSpecsFromSlicesManyEndpoints(t *testing.T) {
	// 250 endpoints in three slices (100, 100, 50), as the EndpointSlice controller cuts them.
	var list []*discoveryv1.EndpointSlice
	for s := range 3 {
		sl := slice(fmt.Sprintf("big-%d", s), []discoveryv1.EndpointPort{port("", 3000)})
		for i := s * 100; i < min(250, (s+1)*100); i++ {
			sl.Endpoints = append(sl.Endpoints, ep(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.2.%d.%d", i/200, i%200+1), nil, nil, nil))
		}
		list = append(list, sl)
	}
	got, _ := SpecsFromSlices("ns", "big", list, "")
	if len(got) != 250 || got[0].ID != "ns/p000" || got[249].ID != "ns/p249" {
		t.Fatalf("%d specs, first %v, last %v", len(got), got[0], got[len(got)-1])
	}
}
