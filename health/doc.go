// Package health decides which backends take new sessions: it watches Consul health
// (blocking queries) and the EndpointSlices of Kubernetes services (client-go informers),
// actively probes static backends, and hands the result to the balancer through small
// interfaces. It never touches client requests.
package health
