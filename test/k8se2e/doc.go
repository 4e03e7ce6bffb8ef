// Package k8se2e tests sioproxy's Kubernetes discovery end to end: a real kube-apiserver on
// a real etcd, EndpointSlices written by the test (as the EndpointSlice controller would),
// real socket.io backends, the real sioproxy binary and real socket.io-client sessions, all
// inside a network namespace that the test binary makes for itself (`unshare --net`), whose
// loopback carries the pods' 10.x addresses. It also applies deploy/kubernetes to the API
// server (kubectl apply --dry-run=server, then for real) and checks its RBAC.
package k8se2e
