package testkit

import "time"

// NowMs is the wall clock in unix milliseconds, comparable with the times the node scripts report.
func NowMs() int64 { return time.Now().UnixMilli() }

// PollInterval is how often WaitFor looks again: for state read over HTTP, where there is no event
// to wait on.
const PollInterval = 20 * time.Millisecond

// WaitFor calls cond every PollInterval until it returns true or timeout passes, and reports
// whether it did.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}
