//go:build tools

// Package k8s pins the kube-apiserver that the Kubernetes tests run. It is a
// separate module so that the proxy's own module never depends on
// k8s.io/kubernetes (only on client-go).
package k8s

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
