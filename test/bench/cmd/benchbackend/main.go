// Command benchbackend serves the Go Engine.IO v4 / Socket.IO v5 server (eioserver, with its
// built-in "echo" ack) on one or more loopback ports, as the backend of the proxy benchmark.
//
//	benchbackend -n 4 -ping-interval 10s
//
// It prints one base URL per line ("http://127.0.0.1:port") once every listener is up, then
// serves until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"sioproxy/eioserver"
)

func main() {
	n := flag.Int("n", 1, "number of backend listeners (one eioserver each)")
	ping := flag.Duration("ping-interval", 25*time.Second, "Engine.IO pingInterval")
	flag.Parse()
	log := zap.NewNop()
	for i := 1; i <= *n; i++ {
		eio := eioserver.New(eioserver.Options{Name: fmt.Sprintf("b%d", i), PingInterval: *ping, Logger: log})
		l, err := eio.Listen("127.0.0.1:0", "benchbackend")
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchbackend:", err)
			os.Exit(1)
		}
		fmt.Println(l.URL)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig // exit without Shutdown: it would wait for idle keep-alive connections
}
