package kubetest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by label of the slices tests
// write (the EndpointSlice controller would write its own name).
const ManagedBy = "sioproxy-tests"

// Condition is the state of an endpoint, as the EndpointSlice controller sets it.
type Condition int

const (
	// Ready is a running pod that passes its readiness probe.
	Ready Condition = iota
	// Terminating is a pod in its termination grace period that still passes its
	// readiness probe (serving).
	Terminating
	// NotReady is a pod failing its readiness probe.
	NotReady
	// Gone is a terminating pod that no longer serves.
	Gone
)

// Endpoint is the endpoint of pod at addr in zone ("" = none) in the given condition.
func Endpoint(namespace, pod, addr, zone string, c Condition) discoveryv1.Endpoint {
	ready, serving, terminating := true, true, false
	switch c {
	case Terminating:
		ready, terminating = false, true
	case NotReady:
		ready, serving = false, false
	case Gone:
		ready, serving, terminating = false, false, true
	}
	ep := discoveryv1.Endpoint{
		Addresses: []string{addr},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(serving),
			Terminating: ptr.To(terminating)},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: pod},
	}
	if zone != "" {
		ep.Zone = ptr.To(zone)
	}
	return ep
}

// Slice is an IPv4 EndpointSlice called name of service, with one TCP port named
// portName ("" = unnamed).
func Slice(namespace, service, name, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	p := discoveryv1.EndpointPort{Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}
	if portName != "" {
		p.Name = ptr.To(portName)
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: ManagedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{p},
		Endpoints:   eps,
	}
}

// Apply creates the slice, or replaces the one of that name.
func Apply(t testing.TB, c kubernetes.Interface, s *discoveryv1.EndpointSlice) {
	t.Helper()
	api := c.DiscoveryV1().EndpointSlices(s.Namespace)
	_, err := api.Create(Ctx(t), s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *discoveryv1.EndpointSlice
		if cur, err = api.Get(Ctx(t), s.Name, metav1.GetOptions{}); err == nil {
			s = s.DeepCopy()
			s.ResourceVersion = cur.ResourceVersion
			_, err = api.Update(Ctx(t), s, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("apply EndpointSlice %s/%s: %v", s.Namespace, s.Name, err)
	}
}

// Delete deletes the slice namespace/name.
func Delete(t testing.TB, c kubernetes.Interface, namespace, name string) {
	t.Helper()
	if err := c.DiscoveryV1().EndpointSlices(namespace).Delete(Ctx(t), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete EndpointSlice %s/%s: %v", namespace, name, err)
	}
}

// Namespace creates namespace name.
func Namespace(t testing.TB, c kubernetes.Interface, name string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(Ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// Grant lets user do verbs on endpointslices.discovery.k8s.io in namespace (a Role and a
// RoleBinding named after the user).
func Grant(t testing.TB, c kubernetes.Interface, namespace, user string, verbs ...string) {
	t.Helper()
	name := "endpointslices-" + user
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{discoveryv1.GroupName}, Resources: []string{"endpointslices"}, Verbs: verbs}}}
	if _, err := c.RbacV1().Roles(namespace).Create(Ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role %s: %v", name, err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	if _, err := c.RbacV1().RoleBindings(namespace).Create(Ctx(t), rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding %s: %v", name, err)
	}
}
