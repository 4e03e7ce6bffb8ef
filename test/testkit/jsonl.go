package testkit

import (
	"encoding/json"
	"strings"
	"time"
)

// HasEvent returns a line matcher for the JSON lines of the node scripts with "event":"name".
func HasEvent(name string) func(string) bool {
	key := `"event":"` + name + `"`
	return func(l string) bool { return strings.Contains(l, key) }
}

// DecodeLines decodes the lines that are JSON values of type T and skips the others.
func DecodeLines[T any](lines []string) []T {
	var out []T
	for _, l := range lines {
		var v T
		if json.Unmarshal([]byte(l), &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// WaitJSON waits until an output line of p at index from or later decodes into a T that satisfies
// match, and returns it with its index. Lines that are not such JSON are skipped.
func WaitJSON[T any](p *Proc, from int, timeout time.Duration, match func(T) bool) (T, int, error) {
	var got T
	_, i, err := p.WaitLine(from, timeout, func(l string) bool {
		var v T
		if json.Unmarshal([]byte(l), &v) != nil || !match(v) {
			return false
		}
		got = v
		return true
	})
	return got, i, err
}

// LastLine returns the last of lines that starts with prefix.
func LastLine(lines []string, prefix string) (string, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i], true
		}
	}
	return "", false
}
