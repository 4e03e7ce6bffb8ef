package configs

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestKubernetesDefaults(t *testing.T) {
	k := Default().Discovery.Kubernetes
	if k.Enabled() || k.Grace.Duration() != 30*time.Second || k.Resync.Duration() != 10*time.Minute ||
		k.PreferZone || k.PortName != "" || k.Kubeconfig != "" {
		t.Errorf("defaults: %+v", k)
	}
}

func TestKubernetesOnly(t *testing.T) {
	c, err := Parse("k.yaml", []byte("discovery:\n  kubernetes:\n    services: [chat/socketio, other-ns/api-2]\n"+
		"    port_name: web\n    label_selector: 'track in (stable), !canary'\n    zone: eu-west-1a\n    prefer_zone: true\n"+
		"    grace: 0s\n    resync: 0s\n    kubeconfig: /etc/kube/config\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Discovery.Kubernetes
	want := Kubernetes{Kubeconfig: "/etc/kube/config", Services: []string{"chat/socketio", "other-ns/api-2"}, PortName: "web",
		LabelSelector: "track in (stable), !canary", Zone: "eu-west-1a", PreferZone: true}
	if !reflect.DeepEqual(k, want) || !k.Enabled() {
		t.Errorf("got %+v\nwant %+v", k, want)
	}
	def := Default()
	def.Normalize()
	want8 := []string{"discovery.kubernetes.kubeconfig", "discovery.kubernetes.services", "discovery.kubernetes.port_name",
		"discovery.kubernetes.label_selector", "discovery.kubernetes.zone", "discovery.kubernetes.prefer_zone",
		"discovery.kubernetes.grace", "discovery.kubernetes.resync"}
	if d := ChangedKeys(def, c); !reflect.DeepEqual(d, want8) {
		t.Errorf("ChangedKeys = %v", d)
	}
}

func TestKubernetesErrors(t *testing.T) {
	in := "discovery:\n  kubernetes:\n" + // lines 1, 2
		"    services:\n" + // 3
		"      - chat\n" + // 4
		"      - Chat/app\n" + // 5
		"      - chat/9lives\n" + // 6
		"      - chat/app\n" + // 7
		"      - chat/app\n" + // 8
		"      - chat/a/b\n" + // 9
		"    port_name: HTTP\n" + // 10
		"    label_selector: 'a in (b'\n" + // 11
		"    zone: 'eu west'\n" + // 12
		"    grace: -1s\n" + // 13
		"    resync: -1s\n" // 14
	_, err := Parse("k.yaml", []byte(in))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`k.yaml:4: discovery.kubernetes.services[0]: "chat" is not namespace/name`,
		`k.yaml:5: discovery.kubernetes.services[1]: "Chat/app": "Chat" is not a namespace name (lowercase letters, digits and '-', at most 63)`,
		`k.yaml:6: discovery.kubernetes.services[2]: "chat/9lives": "9lives" is not a service name (lowercase letters, digits and '-', starting with a letter, at most 63)`,
		`k.yaml:8: discovery.kubernetes.services[4]: duplicate service "chat/app"`,
		`k.yaml:9: discovery.kubernetes.services[5]: "chat/a/b": "a/b" is not a service name (lowercase letters, digits and '-', starting with a letter, at most 63)`,
		`k.yaml:10: discovery.kubernetes.port_name: "HTTP" is not a port name (lowercase letters, digits and '-', at most 63)`,
		`k.yaml:11: discovery.kubernetes.label_selector: "a in (b": unable to parse requirement: found '', expected: ',' or ')'`,
		`k.yaml:12: discovery.kubernetes.zone: "eu west" must not contain spaces or control characters`,
		`k.yaml:13: discovery.kubernetes.grace: must not be negative (got -1s)`,
		`k.yaml:14: discovery.kubernetes.resync: must not be negative (got -1s)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	_, err = Parse("k.yaml", []byte(minimal+"discovery:\n  kubernetes:\n    prefer_zone: true\n"))
	if err == nil || err.Error() != "k.yaml:5: discovery.kubernetes.prefer_zone: needs discovery.kubernetes.zone (the proxy's own zone)" {
		t.Errorf("prefer_zone without zone: %v", err)
	}
	_, err = Parse("k.yaml", []byte("discovery:\n  kubernetes:\n    servics: [a/b]\n"))
	if err == nil || !strings.Contains(err.Error(), "k.yaml:3: discovery.kubernetes.servics: unknown key") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestIsDNSLabel(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "a-1": true, "1a": true, "-a": false, "a-": false, "": false, "A": false,
		"a_b": false, "a.b": false, strings.Repeat("a", 63): true, strings.Repeat("a", 64): false} {
		if got := isDNSLabel(s, false); got != want {
			t.Errorf("isDNSLabel(%q) = %v", s, got)
		}
	}
	if isDNSLabel("1a", true) || !isDNSLabel("a1", true) {
		t.Error("letterFirst")
	}
}

// FuzzKubernetesService: the namespace/name check never panics, and what it accepts is two DNS
// labels joined by one slash, the way the watcher splits it.
func FuzzKubernetesService(f *testing.F) {
	for _, s := range []string{"chat/socketio", "a/b", "chat", "/", "a/b/c", "Chat/x", "a-/b", strings.Repeat("a", 64) + "/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkKubernetesService(s) != nil {
			return
		}
		ns, name, ok := strings.Cut(s, "/")
		if !ok || strings.Contains(name, "/") || !isDNSLabel(ns, false) || !isDNSLabel(name, true) || len(s) > 2*maxDNSLabel+1 {
			t.Fatalf("accepted %q", s)
		}
	})
}
