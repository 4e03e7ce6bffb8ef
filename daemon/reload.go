package daemon

import (
	"fmt"
	"slices"
	"strings"
)

// Change says how a running process takes a changed config key.
type Change uint8

// The ways a key is applied.
const (
	// Restart: the running process cannot take the change; a reload that changes the key is refused
	// (restart instead: SO_REUSEPORT lets the new process start beside the old one).
	Restart Change = iota
	// Settings: the proxy's settings are swapped whole; new requests and tunnels use them.
	Settings
	// Clients: as Settings, and every backend, existing ones included, gets a client built with them.
	Clients
	// Policy: the balancer's placement policy (and the hash key) is swapped.
	Policy
	// Backends: the static backend set is republished (a removed backend drains for remove_grace).
	Backends
	// Discovery: the discovery watchers are built anew, then swapped for the running ones.
	Discovery
	// Mirror: the mirror's enabled flag, sample and shadow backends.
	Mirror
	// LogLevel: the level of the process's logger.
	LogLevel
	// Grace: the grace given to backends removed from now on.
	Grace
	// AtStop: read when the process stops.
	AtStop
	// TLS: the certificate, key and CA files are read again (on every reload, changed keys or not)
	// and served to new handshakes; established connections keep theirs.
	TLS
	// Limits: the client connection limits; connections already accepted stay.
	Limits
)

var changeNames = [...]string{"restart", "settings", "clients", "policy", "backends", "discovery", "mirror", "log level", "grace", "at stop", "tls", "limits"}

// String names the change as the reload log line and the README do.
func (c Change) String() string {
	if int(c) < len(changeNames) {
		return changeNames[c]
	}
	return fmt.Sprintf("change(%d)", c)
}

// reloadPlan maps every config key (or a section, for all its keys) to how a running process applies
// a change of it. It is the one table of the reload: TestReloadPlanCoversEveryKey fails for a key of
// configs.Config that is in neither the table nor a section of it.
var reloadPlan = map[string]Change{
	"listen":   Restart,
	"backends": Backends,

	"sticky.paths":       Settings,
	"sticky.tag_sids":    Restart, // tags are part of every backend of the snapshot
	"sticky.session_ttl": Settings,
	"sticky.ttl_margin":  Settings,
	"sticky.cookie":      Settings,

	"balancer.policy":       Policy,
	"balancer.hash_key":     Policy,
	"balancer.epsilon":      Policy,
	"balancer.slow_start":   Restart,
	"balancer.remove_grace": Grace,
	"balancer.admission":    Restart,
	"balancer.ejection":     Restart,

	"proxy.max_body_bytes":        Settings,
	"proxy.header_timeout":        Settings,
	"proxy.read_timeout":          Settings,
	"proxy.write_timeout":         Settings,
	"proxy.upstream_timeout":      Clients,
	"proxy.dial_timeout":          Clients,
	"proxy.tunnel_idle_timeout":   Settings,
	"proxy.max_conns_per_backend": Clients,
	"proxy.shutdown_timeout":      AtStop,
	"proxy.trusted_proxies":       Settings,
	"proxy.max_client_conns":      Limits,
	"proxy.max_conns_per_ip":      Limits,
	"proxy.reserved_fds":          Limits,
	"proxy.max_tunnels":           Settings,

	"proxy_protocol_from": Restart,
	"tls":                 TLS, // turning it on or off is refused (a restart)
	"tls.redirect_listen": Restart,

	"log.level":  LogLevel,
	"log.format": Restart,

	"admin": Restart,

	"discovery": Discovery,
	// The zone preference is built into the balancer (every snapshot's zone view).
	"discovery.kubernetes.zone":        Restart,
	"discovery.kubernetes.prefer_zone": Restart,

	"health.active": Restart,

	"mirror.enabled":        Mirror,
	"mirror.sample":         Mirror,
	"mirror.backends":       Mirror,
	"mirror.consul_service": Discovery, // the shadow service is one of the discovery watches
	"mirror.queue":          Restart,
}

// changeOf returns how key (as configs.Keys names it) is applied: its own entry or its nearest
// section's; ok is false when the plan has neither.
func changeOf(key string) (c Change, ok bool) {
	for k := key; k != ""; {
		if c, ok := reloadPlan[k]; ok {
			return c, true
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return Restart, false
}

// plan is what a reload will do: the changes it applies, by kind.
type plan struct {
	keys    []string
	changes map[Change]bool
}

// makePlan maps changed keys to changes, or refuses the reload naming every key that needs a
// restart.
func makePlan(keys []string) (plan, error) {
	p := plan{keys: keys, changes: map[Change]bool{}}
	var restart []string
	for _, k := range keys {
		c, _ := changeOf(k)
		if c == Restart {
			restart = append(restart, k)
			continue
		}
		p.changes[c] = true
	}
	if len(restart) > 0 {
		return plan{}, fmt.Errorf("%s cannot change on reload; restart instead (SO_REUSEPORT lets the new process start beside the old one)", strings.Join(restart, ", "))
	}
	return p, nil
}

func (p plan) has(c Change) bool { return p.changes[c] }

// applied lists the changes of the plan, for the reload log line.
func (p plan) applied() []string {
	var out []string
	for c := range p.changes {
		out = append(out, c.String())
	}
	slices.Sort(out)
	return out
}
