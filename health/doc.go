// Package health decides which backends take new sessions: it watches Consul health
// (blocking queries) and actively probes static backends, and hands the result to the
// balancer through small interfaces. It never touches client requests.
package health
