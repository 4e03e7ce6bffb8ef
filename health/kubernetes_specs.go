package health

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"sioproxy/balancer"
)

// SourceKubernetes is the balancer.Spec Source of backends discovered from EndpointSlices.
const SourceKubernetes = "kubernetes"

// DefaultKubernetesPortName is the port taken from a slice with several ports when
// KubernetesOptions.PortName is "".
const DefaultKubernetesPortName = "http"

// endpointState maps the conditions of an endpoint onto a backend state. ok is false
// for an endpoint that is neither ready nor serving while terminating: it takes no
// traffic at all (a pod failing its readiness probe, or past serving in its shutdown).
// Nil conditions read as the API says: ready and serving nil = true, terminating nil =
// false.
func endpointState(c discoveryv1.EndpointConditions) (st balancer.State, ok bool) {
	ready := c.Ready == nil || *c.Ready
	serving := c.Serving == nil || *c.Serving
	terminating := c.Terminating != nil && *c.Terminating
	switch {
	case ready && !terminating:
		return balancer.Active, true
	case serving && terminating:
		return balancer.Draining, true // finishes its sessions, takes no new one
	}
	return balancer.Draining, false
}

// slicePort picks the TCP port of a slice: the one called name, or with name "" the
// slice's only port, else the one called DefaultKubernetesPortName.
func slicePort(ports []discoveryv1.EndpointPort, name string) (int, bool) {
	usable := func(p discoveryv1.EndpointPort) bool {
		return p.Port != nil && *p.Port > 0 && *p.Port <= 65535 && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP)
	}
	if name == "" && len(ports) == 1 {
		if p := ports[0]; usable(p) {
			return int(*p.Port), true
		}
		return 0, false
	}
	if name == "" {
		name = DefaultKubernetesPortName
	}
	for _, p := range ports {
		if usable(p) && p.Name != nil && *p.Name == name {
			return int(*p.Port), true
		}
	}
	return 0, false
}

// KubernetesID is the stable backend id of an endpoint of service namespace/service:
// "namespace/pod" when it points at a pod (its sid tag then survives proxy restarts and
// address changes do not matter), else "namespace/service/address".
func KubernetesID(namespace, service, address string, ref *corev1.ObjectReference) string {
	if ref != nil && ref.Kind == "Pod" && ref.Name != "" {
		ns := ref.Namespace
		if ns == "" {
			ns = namespace
		}
		return ns + "/" + ref.Name
	}
	return namespace + "/" + service + "/" + address
}

// SpecsFromSlices merges the EndpointSlices of one service (namespace/service) into
// backend specs, sorted by ID. Ready endpoints are Active; serving and terminating ones
// Draining; the others are left out (the caller keeps them draining for a grace). Only
// IPv4 and IPv6 slices count; a slice without the wanted port (see slicePort) is
// skipped and named in skipped. An endpoint listed twice (two slices, or an IPv4 and an
// IPv6 slice of a dual-stack pod) is kept once: the Active copy, else IPv4, else the
// lowest address.
func SpecsFromSlices(namespace, service string, list []*discoveryv1.EndpointSlice, portName string) (specs []balancer.Spec, skipped []string) {
	type cand struct {
		spec balancer.Spec
		v6   bool
	}
	byID := make(map[string]cand)
	for _, sl := range list {
		if sl == nil {
			continue
		}
		v6 := sl.AddressType == discoveryv1.AddressTypeIPv6
		if !v6 && sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue // FQDN slices are deprecated and name no address to dial
		}
		port, ok := slicePort(sl.Ports, portName)
		if !ok {
			skipped = append(skipped, sl.Name)
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(ep.Addresses[0]) // consumers use the first address
			if err != nil || ip.Is6() != v6 || ip.Zone() != "" {
				continue
			}
			st, ok := endpointState(ep.Conditions)
			if !ok {
				continue
			}
			addr := ip.String()
			sp := balancer.Spec{
				ID:     KubernetesID(namespace, service, addr, ep.TargetRef),
				Addr:   net.JoinHostPort(addr, strconv.Itoa(port)),
				Weight: 1,
				State:  st,
				Source: SourceKubernetes,
			}
			if ep.Zone != nil {
				sp.Zone = *ep.Zone
			}
			if old, dup := byID[sp.ID]; dup && !better(sp, v6, old.spec, old.v6) {
				continue
			}
			byID[sp.ID] = cand{sp, v6}
		}
	}
	specs = make([]balancer.Spec, 0, len(byID))
	for _, c := range byID {
		specs = append(specs, c.spec)
	}
	slices.SortFunc(specs, func(a, b balancer.Spec) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(skipped)
	return specs, skipped
}

// better orders two copies of one endpoint: Active first, then IPv4, then the lower address.
func better(a balancer.Spec, av6 bool, b balancer.Spec, bv6 bool) bool {
	if a.State != b.State {
		return a.State == balancer.Active
	}
	if av6 != bv6 {
		return !av6
	}
	return a.Addr < b.Addr
}
