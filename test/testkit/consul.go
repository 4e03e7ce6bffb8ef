package testkit

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// ConsulCheckInterval is the interval of the HTTP check RegisterBackend gives each backend.
const ConsulCheckInterval = "1s"

// ConsulCheckID is the Consul check ID RegisterBackend gives the backend named name.
func ConsulCheckID(name string) string { return "http:" + name }

// RegisterBackend registers b in a Consul agent as an instance of service (service ID b.Name),
// with an HTTP check against its Engine.IO handshake URL every ConsulCheckInterval, as
// deploy/consul-service.json does. The check starts passing, so that a proxy that reads the
// service next sees the backend at once (no slow-start ramp); Consul runs the real check within
// the interval.
func RegisterBackend(t testing.TB, c *api.Client, b *Backend, service string) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: b.Name, Name: service, Address: "127.0.0.1", Port: b.Port,
		Check: &api.AgentServiceCheck{
			CheckID: ConsulCheckID(b.Name), Name: "engine.io handshake",
			HTTP:     b.URL() + "/socket.io/?EIO=4&transport=polling",
			Interval: ConsulCheckInterval, Timeout: "1s", Status: api.HealthPassing,
		},
	})
	if err != nil {
		t.Fatalf("register %s in consul: %v", b.Name, err)
	}
}

// ConsulCheckStatus returns the status of the check of the backend named name as Consul reports
// it for service ("" when it has none).
func ConsulCheckStatus(t testing.TB, c *api.Client, service, name string) string {
	t.Helper()
	checks, _, err := c.Health().Checks(service, nil)
	if err != nil {
		t.Fatalf("consul health checks: %v", err)
	}
	for _, ch := range checks {
		if ch.CheckID == ConsulCheckID(name) {
			return ch.Status
		}
	}
	return ""
}
