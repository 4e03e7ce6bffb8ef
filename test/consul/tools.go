//go:build tools

// Package consul pins the Consul agent that the end-to-end tests run. It is
// a separate module so that the proxy's own module never depends on Consul.
package consul

import _ "github.com/hashicorp/consul"
