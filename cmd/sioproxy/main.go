// Command sioproxy is a reverse proxy and load balancer for Socket.IO / Engine.IO clusters.
//
//	sioproxy [-config FILE] [-listen ADDR] [-backend URL]... [-log-level LEVEL] [-log-format json|console]
//	sioproxy check -config FILE
//	sioproxy demo
//	sioproxy -version
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
