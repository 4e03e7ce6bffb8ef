package health

import (
	"time"

	"sioproxy/internal/fakeclock"
)

// newFakeClock is the manual clock of the tests (see package fakeclock).
func newFakeClock() *fakeclock.Clock { return fakeclock.New(time.Unix(1_700_000_000, 0)) }
