package admin

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDrainQuery(t *testing.T) {
	good := []struct {
		q    string
		want DrainParams
	}{
		{"", DrainParams{0, DefaultDrainRate}},
		{"deadline=30s", DrainParams{30 * time.Second, DefaultDrainRate}},
		{"deadline=1ns&rate=0.01", DrainParams{1, 0.01}},
		{"deadline=24h&rate=100000", DrainParams{24 * time.Hour, 100000}},
		{"rate=5&deadline=1m30s", DrainParams{90 * time.Second, 5}},
		{"deadline=200ms&rate=20", DrainParams{200 * time.Millisecond, 20}},
		{"deadline=1s&rate=1e2", DrainParams{time.Second, 100}},
	}
	for _, tt := range good {
		got, err := ParseDrainQuery(tt.q)
		if err != nil || got != tt.want {
			t.Errorf("ParseDrainQuery(%q) = %+v, %v; want %+v", tt.q, got, err, tt.want)
		}
	}
	bad := []struct{ q, reason string }{
		{"deadline=soon", "not a duration"},
		{"deadline=30", "not a duration"},
		{"deadline=NaN", "not a duration"},
		{"deadline=Inf", "not a duration"},
		{"deadline=-1s", "not positive"},
		{"deadline=0", "not positive"},
		{"deadline=0s", "not positive"},
		{"deadline=-0s", "not positive"},
		{"deadline=24h0m0.000000001s", "more than 24h"},
		{"deadline=1000h", "more than 24h"},
		{"deadline=9999999999999h", "not a duration"}, // overflows time.Duration
		{"deadline=", "not a duration"},
		{"deadline=1s&rate=NaN", "not a finite number"},
		{"deadline=1s&rate=nan", "not a finite number"},
		{"deadline=1s&rate=Inf", "not a finite number"},
		{"deadline=1s&rate=%2BInf", "not a finite number"},
		{"deadline=1s&rate=-Inf", "not a finite number"},
		{"deadline=1s&rate=infinity", "not a finite number"},
		{"deadline=1s&rate=1e400", "out of range"},
		{"deadline=1s&rate=1e-400", "out of range"},
		{"deadline=1s&rate=0", "out of range"},
		{"deadline=1s&rate=-0", "out of range"},
		{"deadline=1s&rate=-5", "out of range"},
		{"deadline=1s&rate=0.001", "out of range"},
		{"deadline=1s&rate=4.9e-324", "out of range"},
		{"deadline=1s&rate=100001", "out of range"},
		{"deadline=1s&rate=1e300", "out of range"},
		{"deadline=1s&rate=fast", "not a number"},
		{"deadline=1s&rate=", "not a number"},
		{"deadline=1s&rate=10/s", "not a number"},
		{"rate=5", "without a deadline"},
		{"rate=NaN", "without a deadline"},
		{"deadline=1s&deadline=2s", "given 2 times"},
		{"deadline=1s&rate=1&rate=NaN", "given 2 times"},
		{"deadine=30s", `unknown parameter "deadine"`},
		{"deadline=1s&force=1", `unknown parameter "force"`},
		{"deadline=%zz", "malformed query"},
		{"deadline=1s;rate=2", "malformed query"},
	}
	for _, tt := range bad {
		got, err := ParseDrainQuery(tt.q)
		if err == nil {
			t.Errorf("ParseDrainQuery(%q) = %+v, want an error about %q", tt.q, got, tt.reason)
			continue
		}
		if !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("ParseDrainQuery(%q): %q, want it to say %q", tt.q, err, tt.reason)
		}
	}
}

func TestParseDrainQueryQuotesLittle(t *testing.T) {
	_, err := ParseDrainQuery("deadline=" + strings.Repeat("x", 10000))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("a long bad value is quoted whole: %d bytes", len(err.Error()))
	}
}

func TestParseSampleQuery(t *testing.T) {
	good := []struct {
		q   string
		f   float64
		set bool
	}{
		{"", 0, false}, {"sample=0", 0, true}, {"sample=0.25", 0.25, true}, {"sample=1", 1, true}, {"sample=1e-3", 0.001, true},
	}
	for _, tt := range good {
		f, set, err := ParseSampleQuery(tt.q)
		if err != nil || f != tt.f || set != tt.set {
			t.Errorf("ParseSampleQuery(%q) = %v, %v, %v", tt.q, f, set, err)
		}
	}
	for _, q := range []string{"sample=NaN", "sample=Inf", "sample=-Inf", "sample=-0.1", "sample=1.0001", "sample=2",
		"sample=", "sample=half", "sample=1e400", "sample=0.5&sample=1", "rate=1", "sample=%"} {
		if f, _, err := ParseSampleQuery(q); err == nil {
			t.Errorf("ParseSampleQuery(%q) = %v, want an error", q, f)
		}
	}
}

func TestParseSinceAndProfileQuery(t *testing.T) {
	if n, err := ParseSinceQuery("since=42"); n != 42 || err != nil {
		t.Errorf("since=42: %d %v", n, err)
	}
	if n, err := ParseSinceQuery(""); n != 0 || err != nil {
		t.Errorf("no since: %d %v", n, err)
	}
	for _, q := range []string{"since=-1", "since=NaN", "since=1.5", "since=", "since=99999999999999999999", "since=1&since=2", "x=1"} {
		if _, err := ParseSinceQuery(q); err == nil {
			t.Errorf("ParseSinceQuery(%q): no error", q)
		}
	}
	for _, q := range []string{"", "seconds=1", "seconds=300", "debug=1"} {
		if err := parseProfileQuery(q); err != nil {
			t.Errorf("parseProfileQuery(%q): %v", q, err)
		}
	}
	for _, q := range []string{"seconds=0", "seconds=-5", "seconds=301", "seconds=NaN", "seconds=1e9", "seconds=1&seconds=2", "seconds=%"} {
		if err := parseProfileQuery(q); err == nil {
			t.Errorf("parseProfileQuery(%q): no error", q)
		}
	}
}

// FuzzAdminQueries feeds any query to every admin query parser: none panics, and whatever one
// accepts is within its documented bounds, so that what the admin API passes on cannot panic later
// (the drain scheduler divides a second by the rate and draws a random jitter below half of it).
func FuzzAdminQueries(f *testing.F) {
	for _, s := range []string{"", "deadline=30s&rate=10", "deadline=1s&rate=NaN", "rate=Inf", "deadline=-1s",
		"deadline=1s&rate=1e-300", "sample=0.5", "sample=NaN", "since=7", "seconds=30", "deadline=%zz", "a=1&a=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if p, err := ParseDrainQuery(raw); err == nil {
			if p.Deadline < 0 || p.Deadline > MaxDrainDeadline {
				t.Fatalf("%q: deadline %v out of bounds", raw, p.Deadline)
			}
			if math.IsNaN(p.Rate) || p.Rate < MinDrainRate || p.Rate > MaxDrainRate {
				t.Fatalf("%q: rate %v out of bounds", raw, p.Rate)
			}
			if interval := time.Duration(float64(time.Second) / p.Rate); interval <= 0 || int64(interval)/2+1 <= 0 {
				t.Fatalf("%q: rate %v gives interval %v", raw, p.Rate, interval)
			}
		}
		if s, set, err := ParseSampleQuery(raw); err == nil && (!(s >= 0 && s <= 1) || !set && s != 0) {
			t.Fatalf("%q: sample %v (set %v)", raw, s, set)
		}
		_, _ = ParseSinceQuery(raw)
		_ = parseProfileQuery(raw)
	})
}
