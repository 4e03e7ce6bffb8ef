package testkit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Sample is one sample of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed /metrics page.
type Metrics []Sample

// ParseMetrics parses the Prometheus text format (version 0.0.4): comment and blank lines are
// skipped; each other line is `name{label="value",...} value [timestamp]`.
func ParseMetrics(text string) (Metrics, error) {
	var out Metrics
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
func parsePromLine(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
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
func (s Sample) matches(name string, kv []string) bool {
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

// Value returns the one sample of name with the given labels (key, value, ...).
func (m Metrics) Value(name string, kv ...string) (float64, bool) {
	for _, s := range m {
		if s.matches(name, kv) {
			return s.Value, true
		}
	}
	return 0, false
}

// Sum adds the samples of name with the given labels; absent series count 0.
func (m Metrics) Sum(name string, kv ...string) float64 {
	t := 0.0
	for _, s := range m {
		if s.matches(name, kv) {
			t += s.Value
		}
	}
	return t
}

// ByLabel maps the value of label key to the sample value, over the samples of name.
func (m Metrics) ByLabel(name, key string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.Name == name {
			out[s.Labels[key]] += s.Value
		}
	}
	return out
}
