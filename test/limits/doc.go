// Package limits holds the front-door tests of sioproxy's resource limits (issue 10, points 3 and
// 4): the process at its descriptor limit (run under prlimit), a slowloris of 1,000 connections,
// the header timeout, and request bodies that are declared but never sent. Memory is asserted as a
// bound on growth, never as a speed.
//
//	go test -count=1 -v ./test/limits/
package limits
