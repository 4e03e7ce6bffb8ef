package health

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry number attempt (1 for the first retry):
// min·2^(attempt-1) capped at max, then "equal jitter": half of it fixed, the other
// half scaled by r, a number in [0, 1).
func backoff(attempt int, min, max time.Duration, r float64) time.Duration {
	d := min
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(float64(d-half)*r)
}

// defaultRand is the production jitter source.
func defaultRand() float64 { return rand.Float64() }
