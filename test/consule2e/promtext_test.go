package consule2e

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// promSample is one sample of the Prometheus text exposition format.
type promSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// promMetrics is a parsed /metrics page.
type promMetrics []promSample

// parsePromText parses the Prometheus text format (version 0.0.4): comment and blank lines are
// skipped; each other line is `name{label="value",...} value [timestamp]`.
func parsePromText(text string) (promMetrics, error) {
	var out promMetrics
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", n+1, err, line)
		}
		out = append(out, s)
	}
	return out, nil
}

func isNameChar(c byte, first bool) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

// parsePromLine parses one sample line.
func parsePromLine(line string) (promSample, error) {
	s := promSample{Labels: map[string]string{}}
	i := 0
	for i < len(line) && isNameChar(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.Name = line[:i]
	if i < len(line) && line[i] == '{' {
		i++
		for {
			for i < len(line) && line[i] == ' ' {
				i++
			}
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			j := i
			for j < len(line) && isNameChar(line[j], j == i) {
				j++
			}
			if j == i || j+1 >= len(line) || line[j] != '=' || line[j+1] != '"' {
				return s, fmt.Errorf("bad label at offset %d", i)
			}
			key := line[i:j]
			val, rest, err := unquoteLabel(line[j+2:])
			if err != nil {
				return s, err
			}
			if _, dup := s.Labels[key]; dup {
				return s, fmt.Errorf("label %q twice", key)
			}
			s.Labels[key] = val
			i = len(line) - len(rest)
			if i < len(line) && line[i] == ',' {
				i++
				continue
			}
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			return s, fmt.Errorf("want , or } at offset %d", i)
		}
	}
	fields := strings.Fields(line[i:])
	if len(fields) < 1 || len(fields) > 2 || (i < len(line) && line[i] != ' ' && line[i] != '\t') {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := parsePromValue(fields[0])
	if err != nil {
		return s, err
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	s.Value = v
	return s, nil
}

// unquoteLabel reads an escaped label value up to its closing quote and returns the rest.
func unquoteLabel(s string) (val, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 >= len(s) {
				return "", "", fmt.Errorf("dangling escape")
			}
			i++
			switch s[i] {
			case '\\':
				b.WriteByte('\\')
			case '"':
				b.WriteByte('"')
			case 'n':
				b.WriteByte('\n')
			default:
				return "", "", fmt.Errorf("bad escape \\%c", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated label value")
}

func parsePromValue(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

// matches reports whether the sample has name and every label pair of kv (key, value, ...).
func (s promSample) matches(name string, kv []string) bool {
	if s.Name != name {
		return false
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if s.Labels[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// value returns the one sample of name with the given labels (key, value, ...).
func (m promMetrics) value(name string, kv ...string) (float64, bool) {
	for _, s := range m {
		if s.matches(name, kv) {
			return s.Value, true
		}
	}
	return 0, false
}

// sum adds the samples of name with the given labels; absent series count 0.
func (m promMetrics) sum(name string, kv ...string) float64 {
	t := 0.0
	for _, s := range m {
		if s.matches(name, kv) {
			t += s.Value
		}
	}
	return t
}

// byLabel maps the value of label key to the sample value, over the samples of name.
func (m promMetrics) byLabel(name, key string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.Name == name {
			out[s.Labels[key]] += s.Value
		}
	}
	return out
}

// format renders samples back into the text format (tests of the parser).
func (m promMetrics) format() string {
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

func samplesEqual(a, b promMetrics) bool {
	return slices.EqualFunc(a, b, func(x, y promSample) bool {
		same := x.Value == y.Value || (math.IsNaN(x.Value) && math.IsNaN(y.Value))
		return x.Name == y.Name && same && maps.Equal(x.Labels, y.Labels)
	})
}

func TestParsePromText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want promMetrics // nil with wantErr
		err  bool
	}{
		{name: "comments and blank lines", in: "# HELP x y\n# TYPE x counter\n\nx 3\n",
			want: promMetrics{{Name: "x", Labels: map[string]string{}, Value: 3}}},
		{name: "labels and timestamp", in: `sioproxy_handshakes_total{backend="chat-1"} 17 1700000000000`,
			want: promMetrics{{Name: "sioproxy_handshakes_total", Labels: map[string]string{"backend": "chat-1"}, Value: 17}}},
		{name: "escapes and trailing comma", in: `m{a="x\"y\\z\n",b="",} 1.5e-3`,
			want: promMetrics{{Name: "m", Labels: map[string]string{"a": "x\"y\\z\n", "b": ""}, Value: 0.0015}}},
		{name: "special values", in: "a +Inf\nb -Inf\nc{le=\"+Inf\"} 2",
			want: promMetrics{{Name: "a", Labels: map[string]string{}, Value: math.Inf(1)},
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
			got, err := parsePromText(tt.in)
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
	m := promMetrics{
		{Name: "h", Labels: map[string]string{"backend": "a"}, Value: 2},
		{Name: "h", Labels: map[string]string{"backend": "b"}, Value: 3},
		{Name: "r", Labels: map[string]string{"kind": "poll", "code": "2xx"}, Value: 7},
	}
	if v, ok := m.value("h", "backend", "b"); !ok || v != 3 {
		t.Errorf("value(h, backend=b) = %v %v", v, ok)
	}
	if _, ok := m.value("h", "backend", "c"); ok {
		t.Errorf("value(h, backend=c) found")
	}
	if s := m.sum("h"); s != 5 {
		t.Errorf("sum(h) = %v", s)
	}
	if got := m.byLabel("h", "backend"); !maps.Equal(got, map[string]float64{"a": 2, "b": 3}) {
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
		m, err := parsePromText(in)
		if err != nil {
			return
		}
		again, err := parsePromText(m.format())
		if err != nil {
			t.Fatalf("formatted output of %q does not parse: %v\n%s", in, err, m.format())
		}
		if !samplesEqual(m, again) {
			t.Fatalf("round trip of %q: %v != %v", in, m, again)
		}
	})
}
