// Package configs is the sioproxy configuration schema: Go types, defaults, strict YAML loading with
// file:line errors, validation, and the example YAML files embedded beside it.
//
// Loading is strict: an unknown key, a value of the wrong type or an invalid value is an error of one
// line, "file:line: key.path: message". A key that is absent or null keeps its default.
package configs

import "time"

// Config is the whole sioproxy configuration. Build one with Default, Parse or Load.
type Config struct {
	Listen    string         `yaml:"listen"`    // client-facing host:port; default "127.0.0.1:8080"
	Backends  []Backend      `yaml:"backends"`  // static backends
	Sticky    Sticky         `yaml:"sticky"`    // Engine.IO session affinity
	Balancer  BalancerConfig `yaml:"balancer"`  // placement of new sessions
	Proxy     Proxy          `yaml:"proxy"`     // forwarding, timeouts and limits
	Log       Log            `yaml:"log"`       // logging
	Admin     Admin          `yaml:"admin"`     // admin/metrics listener
	Discovery Discovery      `yaml:"discovery"` // dynamic backends
	Health    Health         `yaml:"health"`    // active health probes
	Mirror    Mirror         `yaml:"mirror"`    // session mirroring to a shadow cluster

	// ProxyProtocolFrom lists peers (IPs or CIDRs) whose connections must begin with a PROXY
	// protocol v1 or v2 header, whose source address is then the client's (default none).
	ProxyProtocolFrom []string  `yaml:"proxy_protocol_from"`
	TLS               ServerTLS `yaml:"tls"` // TLS termination on the client listener

	src *source // where the config came from (for file:line in Validate); nil for configs built in code
}

// source records the file a Config was parsed from and the line of every key path in it, and the
// keys that command-line flags set (path -> flag name).
type source struct {
	file  string
	lines map[string]int
	flags map[string]string
}

// Backend is one statically configured backend (also used for mirror targets).
type Backend struct {
	ID     string     `yaml:"id"`     // stable id (sid tag, metrics, logs); default: the URL
	URL    string     `yaml:"url"`    // http, https, ws or wss URL with an explicit port and no path
	Weight *int       `yaml:"weight"` // relative weight for new sessions; default 1; 0 = no new sessions
	Drain  bool       `yaml:"drain"`  // keep existing sessions, take no new ones
	TLS    BackendTLS `yaml:"tls"`    // verification of an https/wss backend
}

// BackendTLS says how the certificate of an https or wss backend is verified (always verified).
type BackendTLS struct {
	CAFile     string `yaml:"ca_file"`     // PEM bundle of the CAs it must chain to ("" = the system roots)
	ServerName string `yaml:"server_name"` // name it must carry, also sent as SNI ("" = the URL's host)
}

// Sticky configures Engine.IO session affinity.
type Sticky struct {
	Paths      []string `yaml:"paths"`       // Engine.IO path prefixes; default ["/socket.io/"]
	TagSIDs    bool     `yaml:"tag_sids"`    // tag sids with their backend; default true
	SessionTTL Duration `yaml:"session_ttl"` // idle expiry when the open packet gives no timers; default 60s
	TTLMargin  Duration `yaml:"ttl_margin"`  // added to pingInterval+pingTimeout; default 15s; 0 allowed
	Cookie     string   `yaml:"cookie"`      // non-Engine.IO paths: affinity cookie name ("" = off)
}

// BalancerConfig configures the placement of new sessions.
type BalancerConfig struct {
	Policy    string   `yaml:"policy"`     // round_robin, least_sessions, p2c or hash; default p2c
	HashKey   HashKey  `yaml:"hash_key"`   // affinity key for the hash policy
	Epsilon   float64  `yaml:"epsilon"`    // bounded-load slack for hash (load <= (1+epsilon)*mean); default 0.25
	SlowStart Duration `yaml:"slow_start"` // weight ramp-up of a new backend; default 30s; 0 = off
	// RemoveGrace is how long a backend that leaves the static list (a reload) keeps its sessions,
	// draining, before it is dropped; default 30s; 0 = dropped at once. Discovered backends have
	// their provider's grace (discovery.consul.deregister_grace).
	RemoveGrace Duration  `yaml:"remove_grace"`
	Admission   Admission `yaml:"admission"` // per-backend handshake admission control
	Ejection    Ejection  `yaml:"ejection"`  // passive failure ejection
}

// HashKey says where the hash policy takes its affinity key from.
type HashKey struct {
	Source string `yaml:"source"` // ip, header, cookie or query; default ip
	Name   string `yaml:"name"`   // header, cookie or query parameter name (not used with ip)
}

// Admission limits new sessions per backend.
type Admission struct {
	Rate        float64 `yaml:"rate"`         // handshakes per second per backend; 0 = off
	Burst       int     `yaml:"burst"`        // token bucket size; default ceil(rate) when rate > 0
	MaxSessions int     `yaml:"max_sessions"` // live sessions per backend before it takes no new ones; 0 = no limit
}

// Ejection configures passive ejection of failing backends.
type Ejection struct {
	Cooldown    Duration `yaml:"cooldown"`     // how long a failing backend gets no new sessions; default 10s
	MaxFraction float64  `yaml:"max_fraction"` // at most this fraction of backends ejected at once; default 0.5
}

// Proxy configures forwarding, timeouts and limits.
type Proxy struct {
	MaxBodyBytes       int      `yaml:"max_body_bytes"`        // request body limit (413 beyond); default 1_000_000
	HeaderTimeout      Duration `yaml:"header_timeout"`        // a request head must arrive within this (408); default 10s
	ReadTimeout        Duration `yaml:"read_timeout"`          // a request body must arrive within this after its head; default 60s
	WriteTimeout       Duration `yaml:"write_timeout"`         // a write to a client must progress within this; default 30s
	UpstreamTimeout    Duration `yaml:"upstream_timeout"`      // backend response timeout; default 90s, >= 60s
	DialTimeout        Duration `yaml:"dial_timeout"`          // backend connect timeout; default 3s
	TunnelIdleTimeout  Duration `yaml:"tunnel_idle_timeout"`   // WebSocket idle timeout; default 90s, >= 60s
	MaxConnsPerBackend int      `yaml:"max_conns_per_backend"` // HTTP connections per backend; default 20000
	ShutdownTimeout    Duration `yaml:"shutdown_timeout"`      // graceful drain on shutdown; default 30s
	TrustedProxies     []string `yaml:"trusted_proxies"`       // CIDRs or IPs whose X-Forwarded-For is honoured
	MaxClientConns     int      `yaml:"max_client_conns"`      // client connections at once; 0 = auto from RLIMIT_NOFILE
	MaxConnsPerIP      int      `yaml:"max_conns_per_ip"`      // client connections per client address; 0 = off (default)
	MaxTunnels         int      `yaml:"max_tunnels"`           // WebSocket tunnels at once; 0 = auto from RLIMIT_NOFILE
	ReservedFDs        int      `yaml:"reserved_fds"`          // descriptors kept free for backend dials; default 64
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error; default info
	Format string `yaml:"format"` // json or console; default json
}

// Admin configures the admin/metrics listener.
type Admin struct {
	Listen    string `yaml:"listen"`     // host:port; default "127.0.0.1:9090"; "" disables the listener
	Token     string `yaml:"token"`      // bearer token required by the admin API ("" = none)
	TokenFile string `yaml:"token_file"` // file holding the token (exclusive with token)
}

// Discovery configures dynamic backend discovery.
type Discovery struct {
	Consul     Consul     `yaml:"consul"`     // Consul catalog/health discovery
	Kubernetes Kubernetes `yaml:"kubernetes"` // Kubernetes EndpointSlice discovery
}

// Kubernetes configures discovery from the EndpointSlices of Kubernetes services.
type Kubernetes struct {
	Kubeconfig    string   `yaml:"kubeconfig"`     // kubeconfig file; "" = $KUBECONFIG, else the pod's in-cluster service account
	Services      []string `yaml:"services"`       // "namespace/name" of each service; empty = Kubernetes discovery off
	PortName      string   `yaml:"port_name"`      // port of the slices; "" = a slice's only port, else the one named http
	LabelSelector string   `yaml:"label_selector"` // extra label selector of the slices, ANDed with kubernetes.io/service-name
	Zone          string   `yaml:"zone"`           // the proxy's own topology zone ("" = unknown)
	PreferZone    bool     `yaml:"prefer_zone"`    // new sessions go to endpoints in zone while any can take them; default false
	Grace         Duration `yaml:"grace"`          // a removed or unready endpoint keeps its sessions this long; default 30s; 0 = none
	Resync        Duration `yaml:"resync"`         // informer resync period; default 10m; 0 = none
}

// Consul configures discovery through Consul health (blocking queries).
type Consul struct {
	Address         string   `yaml:"address"`          // host:port or http(s)://host:port; "" = consul/api default (CONSUL_HTTP_ADDR or 127.0.0.1:8500)
	Token           string   `yaml:"token"`            // ACL token ("" = consul/api default)
	TokenFile       string   `yaml:"token_file"`       // file holding the ACL token (exclusive with token)
	Datacenter      string   `yaml:"datacenter"`       // "" = the agent's datacenter
	Services        []string `yaml:"services"`         // service names to watch; empty = Consul discovery off
	Tag             string   `yaml:"tag"`              // only instances with this tag ("" = all)
	TLS             TLS      `yaml:"tls"`              // TLS to the Consul agent
	WarningEligible bool     `yaml:"warning_eligible"` // instances in warning state take new sessions; default true
	DeregisterGrace Duration `yaml:"deregister_grace"` // a vanished instance keeps its sessions this long; default 30s; 0 allowed
	WaitTime        Duration `yaml:"wait_time"`        // blocking query wait; default 30s, at most 10m
}

// TLS holds client TLS settings.
type TLS struct {
	CAFile             string `yaml:"ca_file"`              // PEM CA bundle ("" = system roots)
	CertFile           string `yaml:"cert_file"`            // client certificate (with key_file)
	KeyFile            string `yaml:"key_file"`             // client key (with cert_file)
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // do not verify the server certificate
}

// Health configures health checking beyond Consul and passive ejection.
type Health struct {
	Active ActiveProbe `yaml:"active"` // active probes against every backend
}

// ActiveProbe configures active health probes.
type ActiveProbe struct {
	Enabled  bool     `yaml:"enabled"`  // default false
	Kind     string   `yaml:"kind"`     // engineio (a polling handshake) or http (GET, 2xx = up); default engineio
	Path     string   `yaml:"path"`     // default: the first sticky path for engineio, "/" for http
	Interval Duration `yaml:"interval"` // default 5s
	Timeout  Duration `yaml:"timeout"`  // default 2s, at most interval
	Rise     int      `yaml:"rise"`     // consecutive successes to mark up; default 2
	Fall     int      `yaml:"fall"`     // consecutive failures to mark down; default 3
}

// Mirror configures mirroring of sampled sessions to a shadow cluster.
type Mirror struct {
	Enabled       bool      `yaml:"enabled"`        // default false
	Sample        float64   `yaml:"sample"`         // fraction of new sessions mirrored, 0..1; default 1
	Backends      []Backend `yaml:"backends"`       // static shadow backends (exclusive with consul_service)
	ConsulService string    `yaml:"consul_service"` // shadow backends from this Consul service
	Queue         int       `yaml:"queue"`          // per-session queue of mirrored packets; default 256
}

// Policy names accepted by balancer.policy.
const (
	PolicyRoundRobin    = "round_robin"
	PolicyLeastSessions = "least_sessions"
	PolicyP2C           = "p2c"
	PolicyHash          = "hash"
)

// Policies lists the known balancer policies.
var Policies = []string{PolicyRoundRobin, PolicyLeastSessions, PolicyP2C, PolicyHash}

// Default returns a new Config holding every default. It has no backends, so it does not validate
// until some are added.
func Default() *Config {
	return &Config{
		Listen: "127.0.0.1:8080",
		Sticky: Sticky{
			Paths:      []string{"/socket.io/"},
			TagSIDs:    true,
			SessionTTL: Duration(60 * time.Second),
			TTLMargin:  Duration(15 * time.Second),
		},
		Balancer: BalancerConfig{
			Policy:      PolicyP2C,
			HashKey:     HashKey{Source: "ip"},
			Epsilon:     0.25,
			SlowStart:   Duration(30 * time.Second),
			RemoveGrace: Duration(30 * time.Second),
			Ejection:    Ejection{Cooldown: Duration(10 * time.Second), MaxFraction: 0.5},
		},
		Proxy: Proxy{
			MaxBodyBytes:       1_000_000,
			HeaderTimeout:      Duration(10 * time.Second),
			ReadTimeout:        Duration(60 * time.Second),
			WriteTimeout:       Duration(30 * time.Second),
			UpstreamTimeout:    Duration(90 * time.Second),
			DialTimeout:        Duration(3 * time.Second),
			TunnelIdleTimeout:  Duration(90 * time.Second),
			MaxConnsPerBackend: 20000,
			ShutdownTimeout:    Duration(30 * time.Second),
			ReservedFDs:        64,
		},
		TLS:   ServerTLS{MinVersion: TLS12, ClientAuth: ClientAuth{Mode: ClientAuthRequired}},
		Log:   Log{Level: "info", Format: "json"},
		Admin: Admin{Listen: "127.0.0.1:9090"},
		Discovery: Discovery{
			Consul: Consul{
				WarningEligible: true,
				DeregisterGrace: Duration(30 * time.Second),
				WaitTime:        Duration(30 * time.Second),
			},
			Kubernetes: Kubernetes{
				Grace:  Duration(30 * time.Second),
				Resync: Duration(10 * time.Minute),
			},
		},
		Health: Health{Active: ActiveProbe{
			Kind:     "engineio",
			Interval: Duration(5 * time.Second),
			Timeout:  Duration(2 * time.Second),
			Rise:     2,
			Fall:     3,
		}},
		Mirror: Mirror{Sample: 1, Queue: 256},
	}
}
