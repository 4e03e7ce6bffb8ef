package configs

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// maxDNSLabel is the longest DNS label (RFC 1123) Kubernetes accepts as a name.
const maxDNSLabel = validation.DNS1123LabelMaxLength

func (v *validator) kubernetes(k *Kubernetes) {
	seen := map[string]bool{}
	for i, s := range k.Services {
		p := fmt.Sprintf("discovery.kubernetes.services[%d]", i)
		if err := checkKubernetesService(s); err != nil {
			v.add(p, "%v", err)
			continue
		}
		if seen[s] {
			v.add(p, "duplicate service %q", s)
		}
		seen[s] = true
	}
	if k.PortName != "" && !isDNSLabel(k.PortName, false) {
		v.add("discovery.kubernetes.port_name", "%q is not a port name (lowercase letters, digits and '-', at most %d)", k.PortName, maxDNSLabel)
	}
	if k.LabelSelector != "" {
		if _, err := labels.Parse(k.LabelSelector); err != nil {
			v.add("discovery.kubernetes.label_selector", "%q: %v", k.LabelSelector, err)
		}
	}
	if strings.ContainsFunc(k.Zone, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		v.add("discovery.kubernetes.zone", "%q must not contain spaces or control characters", k.Zone)
	}
	if k.PreferZone && k.Zone == "" {
		v.add("discovery.kubernetes.prefer_zone", "needs discovery.kubernetes.zone (the proxy's own zone)")
	}
	v.nonNegative("discovery.kubernetes.grace", k.Grace)
	v.nonNegative("discovery.kubernetes.resync", k.Resync)
}

// checkKubernetesService accepts "namespace/name": a namespace (RFC 1123 label) and a
// service name (RFC 1035 label: it starts with a letter).
func checkKubernetesService(s string) error {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("%q is not namespace/name", s)
	}
	if !isDNSLabel(ns, false) {
		return fmt.Errorf("%q: %q is not a namespace name (lowercase letters, digits and '-', at most %d)", s, ns, maxDNSLabel)
	}
	if !isDNSLabel(name, true) {
		return fmt.Errorf("%q: %q is not a service name (lowercase letters, digits and '-', starting with a letter, at most %d)", s, name, maxDNSLabel)
	}
	return nil
}

// isDNSLabel reports whether s is an RFC 1123 label (RFC 1035 when letterFirst), as the API
// server checks names: 1 to 63 lowercase letters, digits and '-', starting and ending with a
// letter or digit.
func isDNSLabel(s string, letterFirst bool) bool {
	if letterFirst {
		return len(validation.IsDNS1035Label(s)) == 0
	}
	return len(validation.IsDNS1123Label(s)) == 0
}
