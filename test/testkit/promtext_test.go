package testkit

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// format renders samples back into the text format (tests of the parser).
func (m Metrics) format() string {
	var b strings.Builder
	for _, s := range m {
		b.WriteString(s.Name)
		if len(s.Labels) > 0 {
			b.WriteByte('{')
			for i, k := range slices.Sorted(maps.Keys(s.Labels)) {
				if i > 0 {
					b.WriteByte(',')
				}
				r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
				fmt.Fprintf(&b, `%s="%s"`, k, r.Replace(s.Labels[k]))
			}
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		switch {
		case math.IsNaN(s.Value):
			b.WriteString("NaN")
		case math.IsInf(s.Value, 1):
			b.WriteString("+Inf")
		case math.IsInf(s.Value, -1):
			b.WriteString("-Inf")
		default:
			b.WriteString(strconv.FormatFloat(s.Value, 'g', -1, 64))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func samplesEqual(a, b Metrics) bool {
	return slices.EqualFunc(a, b, func(x, y Sample) bool {
		same := x.Value == y.Value || (math.IsNaN(x.Value) && math.IsNaN(y.Value))
		return x.Name == y.Name && same && maps.Equal(x.Labels, y.Labels)
	})
}

func TestParsePromText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Metrics // nil with wantErr
		err  bool
	}{
		{name: "comments and blank lines", in: "# HELP x y\n# TYPE x counter\n\nx 3\n",
			want: Metrics{{Name: "x", Labels: map[string]string{}, Value: 3}}},
		{name: "labels and timestamp", in: `sioproxy_handshakes_total{backend="chat-1"} 17 1700000000000`,
			want: Metrics{{Name: "sioproxy_handshakes_total", Labels: map[string]string{"backend": "chat-1"}, Value: 17}}},
		{name: "escapes and trailing comma", in: `m{a="x\"y\\z\n",b="",} 1.5e-3`,
			want: Metrics{{Name: "m", Labels: map[string]string{"a": "x\"y\\z\n", "b": ""}, Value: 0.0015}}},
		{name: "special values", in: "a +Inf\nb -Inf\nc{le=\"+Inf\"} 2",
			want: Metrics{{Name: "a", Labels: map[string]string{}, Value: math.Inf(1)},
				{Name: "b", Labels: map[string]string{}, Value: math.Inf(-1)},
				{Name: "c", Labels: map[string]string{"le": "+Inf"}, Value: 2}}},
		{name: "no value", in: "x\n", err: true},
		{name: "bad value", in: "x abc", err: true},
		{name: "unterminated label", in: `x{a="b} 1`, err: true},
		{name: "bad escape", in: `x{a="\t"} 1`, err: true},
		{name: "duplicate label", in: `x{a="1",a="2"} 1`, err: true},
		{name: "name starting with a digit", in: "1x 1", err: true},
		{name: "value glued to labels", in: `x{a="1"}1`, err: true},
		{name: "too many fields", in: "x 1 2 3", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetrics(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("parsed %q as %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !samplesEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	m := Metrics{
		{Name: "h", Labels: map[string]string{"backend": "a"}, Value: 2},
		{Name: "h", Labels: map[string]string{"backend": "b"}, Value: 3},
		{Name: "r", Labels: map[string]string{"kind": "poll", "code": "2xx"}, Value: 7},
	}
	if v, ok := m.Value("h", "backend", "b"); !ok || v != 3 {
		t.Errorf("value(h, backend=b) = %v %v", v, ok)
	}
	if _, ok := m.Value("h", "backend", "c"); ok {
		t.Errorf("value(h, backend=c) found")
	}
	if s := m.Sum("h"); s != 5 {
		t.Errorf("sum(h) = %v", s)
	}
	if got := m.ByLabel("h", "backend"); !maps.Equal(got, map[string]float64{"a": 2, "b": 3}) {
		t.Errorf("byLabel = %v", got)
	}
}

// FuzzParsePromText: the parser never panics, and what it accepts survives a format/parse round trip.
func FuzzParsePromText(f *testing.F) {
	for _, s := range []string{
		"# HELP x y\nx 1\n", `a{b="c\"d",e="\\"} -1.5e9 123`, "x NaN", `m{le="+Inf"} +Inf`, "x{} 0", `y{a="1",} 2`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseMetrics(in)
		if err != nil {
			return
		}
		again, err := ParseMetrics(m.format())
		if err != nil {
			t.Fatalf("formatted output of %q does not parse: %v\n%s", in, err, m.format())
		}
		if !samplesEqual(m, again) {
			t.Fatalf("round trip of %q: %v != %v", in, m, again)
		}
	})
}
