package admin

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Bounds of the admin API's query parameters. A value outside them is refused with 400 and the
// reason; nothing the admin API accepts can make the process misbehave later.
const (
	// MaxDrainDeadline bounds drain?deadline: a drain longer than a day is a typo.
	MaxDrainDeadline = 24 * time.Hour
	// MinDrainRate and MaxDrainRate bound drain?rate (sessions closed per second after the
	// deadline): below one session per 100 s the drain never ends in practice; above 100,000/s it
	// is a storm, which the rate exists to prevent.
	MinDrainRate = 0.01
	MaxDrainRate = 100_000.0
	// DefaultDrainRate is drain?rate when a deadline is given without a rate.
	DefaultDrainRate = 10.0
	// MaxProfileSeconds bounds /debug/pprof/profile?seconds= and /debug/pprof/trace?seconds=.
	MaxProfileSeconds = 300
)

// DrainParams is the parsed query of POST /backends/{id}/drain.
type DrainParams struct {
	Deadline time.Duration // 0: the backend takes no new sessions, and its sessions are left to end
	Rate     float64       // sessions closed per second once Deadline has passed (DefaultDrainRate without one)
}

// ParseDrainQuery parses the raw query of a drain request: optional deadline (a Go duration, more
// than 0 and at most MaxDrainDeadline) and rate (a number of sessions per second, from MinDrainRate
// to MaxDrainRate, only with a deadline; DefaultDrainRate when omitted, always a valid rate).
// Unknown or repeated
// parameters and malformed queries are errors.
func ParseDrainQuery(raw string) (DrainParams, error) {
	q, err := strictQuery(raw, "deadline", "rate")
	if err != nil {
		return DrainParams{}, err
	}
	p := DrainParams{Rate: DefaultDrainRate}
	if v, ok := q["deadline"]; ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return DrainParams{}, fmt.Errorf("deadline: %q is not a duration; want one such as 30s or 5m", short(v))
		case d <= 0:
			return DrainParams{}, fmt.Errorf("deadline: %s is not positive; omit deadline to drain without closing sessions", d)
		case d > MaxDrainDeadline:
			return DrainParams{}, fmt.Errorf("deadline: %s is more than %s", d, MaxDrainDeadline)
		}
		p.Deadline = d
	}
	if v, ok := q["rate"]; ok {
		if p.Deadline == 0 {
			return DrainParams{}, fmt.Errorf("rate: has no effect without a deadline (sessions are only closed after one)")
		}
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return DrainParams{}, fmt.Errorf("rate: %q is out of range; want %g to %g sessions per second", short(v), MinDrainRate, MaxDrainRate)
		case err != nil:
			return DrainParams{}, fmt.Errorf("rate: %q is not a number", short(v))
		case math.IsNaN(f) || math.IsInf(f, 0):
			return DrainParams{}, fmt.Errorf("rate: %q is not a finite number", short(v))
		case f < MinDrainRate || f > MaxDrainRate:
			return DrainParams{}, fmt.Errorf("rate: %g sessions per second is out of range; want %g to %g", f, MinDrainRate, MaxDrainRate)
		}
		p.Rate = f
	}
	return p, nil
}

// ParseSampleQuery parses the raw query of POST /mirror/enable: an optional sample, the fraction of
// new sessions mirrored, from 0 to 1 as in the config file. set is false when sample is omitted.
func ParseSampleQuery(raw string) (sample float64, set bool, err error) {
	q, err := strictQuery(raw, "sample")
	if err != nil {
		return 0, false, err
	}
	v, ok := q["sample"]
	if !ok {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, false, fmt.Errorf("sample: %q is not a fraction; want a number from 0 to 1", short(v))
	}
	return f, true, nil
}

// ParseSinceQuery parses the raw query of GET /overview: an optional since, the sequence number of
// the last history sample the caller has (0 or omitted: the whole history).
func ParseSinceQuery(raw string) (uint64, error) {
	q, err := strictQuery(raw, "since")
	if err != nil {
		return 0, err
	}
	v, ok := q["since"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("since: %q is not a sample number", short(v))
	}
	return n, nil
}

// parseProfileQuery checks the seconds parameter of the CPU profile and trace endpoints (pprof reads
// the query itself; this only bounds it, so that one request cannot hold the profiler for days).
func parseProfileQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("malformed query: %v", err)
	}
	vs, ok := q["seconds"]
	if !ok {
		return nil
	}
	if len(vs) > 1 {
		return fmt.Errorf("seconds: given %d times", len(vs))
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 1 || n > MaxProfileSeconds {
		return fmt.Errorf("seconds: %q; want a whole number from 1 to %d", short(vs[0]), MaxProfileSeconds)
	}
	return nil
}

// strictQuery parses raw, refusing malformed queries and parameters that are unknown or repeated,
// and returns each known parameter's value.
func strictQuery(raw string, known ...string) (map[string]string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %v", err)
	}
	out := make(map[string]string, len(q))
	for k, vs := range q {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("unknown parameter %q (want %s)", short(k), listOf(known))
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("%s: given %d times", k, len(vs))
		}
		out[k] = vs[0]
	}
	return out, nil
}

func listOf(names []string) string {
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			s += " or "
		default:
			s += ", "
		}
		s += n
	}
	return s
}

// short truncates a caller's value quoted in an error.
func short(v string) string {
	const max = 40
	if len(v) <= max {
		return v
	}
	return v[:max] + "..."
}
