package health

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"sioproxy/balancer"
)

// SourceConsul is the balancer.Spec Source of backends discovered in Consul.
const SourceConsul = "consul"

// MetaWeight is the service meta key whose integer value (>= 0) sets the weight of a
// passing instance, overriding Service.Weights.Passing.
const MetaWeight = "weight"

// consulStatus is the aggregated health of one service instance.
type consulStatus uint8

const (
	statusPassing consulStatus = iota
	statusWarning
	statusCritical // also maintenance and unknown statuses
)

// entryStatus aggregates the checks of one entry (service and node checks): any
// maintenance check or critical check makes it critical; an unknown status counts as
// critical too, so that a new Consul status never sends new sessions anywhere.
func entryStatus(checks api.HealthChecks) consulStatus {
	st := statusPassing
	for _, c := range checks {
		if c == nil {
			continue
		}
		if c.CheckID == api.NodeMaint || strings.HasPrefix(c.CheckID, api.ServiceMaintPrefix) {
			return statusCritical
		}
		switch c.Status {
		case api.HealthPassing:
		case api.HealthWarning:
			st = statusWarning
		default:
			return statusCritical
		}
	}
	return st
}

// entryWeight picks the weight for an instance in the given status: meta "weight" for a
// passing instance, else Service.Weights (Warning for a warning instance), else 1.
// Zero Weights (Passing == 0: not set, Consul never stores that) count as unset.
func entryWeight(s *api.AgentService, st consulStatus) int {
	set := s.Weights.Passing > 0
	if st == statusWarning && set {
		return max(s.Weights.Warning, 0)
	}
	if v, ok := s.Meta[MetaWeight]; ok {
		if w, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && w >= 0 {
			return w
		}
	}
	if set {
		return s.Weights.Passing
	}
	return 1
}

// SpecsFromEntries maps the answer of the Consul health endpoint to backend specs,
// sorted by ID. All checks passing: Active; warning: Active when opts.WarningEligible,
// else Draining; critical, or a service or node maintenance check: Draining (the
// instance keeps its sessions but gets no new ones). ID is the service ID (prefixed with
// "node/" when two nodes register the same service ID); Addr is the service address,
// else the node address, and the port. Entries without an address or port are left out.
func SpecsFromEntries(entries []*api.ServiceEntry, opts ConsulOptions) []balancer.Spec {
	ids := make(map[string]int, len(entries))
	for _, e := range entries {
		if e != nil && e.Service != nil {
			ids[e.Service.ID]++
		}
	}
	specs := make([]balancer.Spec, 0, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil || e.Service.Port <= 0 || e.Service.Port > 65535 {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		if host == "" {
			continue
		}
		id := e.Service.ID
		if ids[id] > 1 && e.Node != nil {
			id = e.Node.Node + "/" + id
		}
		st := entryStatus(e.Checks)
		state := balancer.Active
		if st == statusCritical || (st == statusWarning && !opts.WarningEligible) {
			state = balancer.Draining
		}
		specs = append(specs, balancer.Spec{
			ID:     id,
			Addr:   net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
			Weight: entryWeight(e.Service, st),
			State:  state,
			Source: SourceConsul,
		})
	}
	slices.SortFunc(specs, func(a, b balancer.Spec) int { return cmp.Compare(a.ID, b.ID) })
	return specs
}
