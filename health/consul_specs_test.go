package health

import (
	"slices"
	"testing"

	"github.com/hashicorp/consul/api"

	"sioproxy/balancer"
)

// check builds a health check; service "" is a node check.
func check(id, status string) *api.HealthCheck {
	return &api.HealthCheck{CheckID: id, Status: status}
}

// entry builds a health endpoint entry on node n1 (127.0.0.9) unless changed by mod.
func entry(id, addr string, port int, checks []*api.HealthCheck, mod ...func(*api.ServiceEntry)) *api.ServiceEntry {
	e := &api.ServiceEntry{
		Node:    &api.Node{Node: "n1", Address: "127.0.0.9"},
		Service: &api.AgentService{ID: id, Service: "web", Address: addr, Port: port, Weights: api.AgentWeights{Passing: 1, Warning: 1}},
		Checks:  append(api.HealthChecks{check("serfHealth", api.HealthPassing)}, checks...),
	}
	for _, m := range mod {
		m(e)
	}
	return e
}

func spec(id, addr string, w int, st balancer.State) balancer.Spec {
	return balancer.Spec{ID: id, Addr: addr, Weight: w, State: st, Source: SourceConsul}
}

func TestSpecsFromEntries(t *testing.T) {
	pass := []*api.HealthCheck{check("service:a", api.HealthPassing)}
	warn := []*api.HealthCheck{check("service:a", api.HealthWarning)}
	crit := []*api.HealthCheck{check("service:a", api.HealthCritical)}
	weights := func(p, w int) func(*api.ServiceEntry) {
		return func(e *api.ServiceEntry) { e.Service.Weights = api.AgentWeights{Passing: p, Warning: w} }
	}
	meta := func(v string) func(*api.ServiceEntry) {
		return func(e *api.ServiceEntry) { e.Service.Meta = map[string]string{MetaWeight: v} }
	}
	tests := []struct {
		name      string
		warningOK bool
		entries   []*api.ServiceEntry
		want      []balancer.Spec
	}{
		{"passing", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass)},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)}},
		{"no service checks", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, nil)},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)}},
		{"warning drains", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, warn, weights(5, 2))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 2, balancer.Draining)}},
		{"warning eligible", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, warn, weights(5, 2))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 2, balancer.Active)}},
		{"critical", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, crit)},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)}},
		{"critical node check", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, []*api.HealthCheck{check("serfHealth", api.HealthCritical)})},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)}},
		{"unknown status drains", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, []*api.HealthCheck{check("x", "bogus")})},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)}},
		{"service maintenance", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, append(slices.Clone(pass), check(api.ServiceMaintPrefix+"a", api.HealthCritical)))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)}},
		{"node maintenance", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, append(slices.Clone(pass), check(api.NodeMaint, api.HealthCritical)))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)}},
		{"maintenance wins over warning eligible", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, append(slices.Clone(warn), check(api.NodeMaint, api.HealthCritical)))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)}},
		{"passing weight", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass, weights(7, 3))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 7, balancer.Active)}},
		{"warning weight zero", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, warn, weights(7, 0))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 0, balancer.Active)}},
		{"meta weight overrides passing weight", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass, weights(7, 3), meta(" 42 "))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 42, balancer.Active)}},
		{"meta weight zero", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass, meta("0"))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 0, balancer.Active)}},
		{"bad meta weight ignored", false, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass, weights(7, 3), meta("-3")), entry("b", "10.0.0.2", 80, pass, meta("x"))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 7, balancer.Active), spec("b", "10.0.0.2:80", 1, balancer.Active)}},
		{"meta weight not used in warning", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, warn, weights(7, 3), meta("42"))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 3, balancer.Active)}},
		{"unset weights default to 1", true, []*api.ServiceEntry{entry("a", "10.0.0.1", 80, warn, weights(0, 0))},
			[]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)}},
		{"node address fallback", false, []*api.ServiceEntry{entry("a", "", 8080, pass)},
			[]balancer.Spec{spec("a", "127.0.0.9:8080", 1, balancer.Active)}},
		{"ipv6", false, []*api.ServiceEntry{entry("a", "::1", 80, pass)},
			[]balancer.Spec{spec("a", "[::1]:80", 1, balancer.Active)}},
		{"no address or port skipped", false, []*api.ServiceEntry{
			entry("a", "", 80, pass, func(e *api.ServiceEntry) { e.Node.Address = "" }),
			entry("b", "10.0.0.2", 0, pass), nil, {Node: &api.Node{}},
		}, []balancer.Spec{}},
		{"deterministic order", false, []*api.ServiceEntry{
			entry("c", "10.0.0.3", 80, pass), entry("a", "10.0.0.1", 80, pass), entry("b", "10.0.0.2", 80, crit),
		}, []balancer.Spec{
			spec("a", "10.0.0.1:80", 1, balancer.Active), spec("b", "10.0.0.2:80", 1, balancer.Draining), spec("c", "10.0.0.3:80", 1, balancer.Active),
		}},
		{"same id on two nodes", false, []*api.ServiceEntry{
			entry("web", "10.0.0.2", 80, pass, func(e *api.ServiceEntry) { e.Node.Node = "n2" }),
			entry("web", "10.0.0.1", 80, pass),
			entry("other", "10.0.0.3", 80, pass),
		}, []balancer.Spec{
			spec("n1/web", "10.0.0.1:80", 1, balancer.Active), spec("n2/web", "10.0.0.2:80", 1, balancer.Active), spec("other", "10.0.0.3:80", 1, balancer.Active),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SpecsFromEntries(tc.entries, ConsulOptions{WarningEligible: tc.warningOK})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
