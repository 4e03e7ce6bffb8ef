package configs

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one configuration problem. Parse, Load and Validate return these, joined with errors.Join
// (one per line, in file order); use errors.As to get the first one.
type Error struct {
	File string // file name as given to Parse or Load; "" for a Config built in code
	Line int    // 1-based line of the key; 0 when unknown (e.g. a default that is invalid)
	Path string // key path such as "proxy.upstream_timeout" or "backends[1].url"; "" for the document
	Msg  string // what is wrong
}

// Error formats e as "file:line: key.path: message" (parts that are unknown are left out).
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return oneLine(b.String())
}

// oneLine escapes line breaks so that every error stays on one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// joinErrors sorts errs by line (unknown lines last, otherwise stable) and joins them.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = int(^uint(0) >> 1)
		}
		if lb == 0 {
			lb = int(^uint(0) >> 1)
		}
		return cmp.Compare(la, lb)
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// describe names the kind of a node for type errors: "a mapping", "a sequence", or the quoted scalar.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	default:
		return "an unexpected node"
	}
}

// keyName renders a user-supplied key for a key path, quoting it when it is not a plain word.
func keyName(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// suggest proposes a known key for an unknown one: the closest sibling key, or else the full path of
// a key with the same name elsewhere in the schema (e.g. "upstream_timeout" at the top level).
func suggest(unknown string, siblings []string) string {
	best, bestDist := "", -1
	for _, s := range siblings {
		d := levenshtein(unknown, s)
		if d > 0 && d*3 <= len(s)+1 {
			if bestDist < 0 || d < bestDist {
				best, bestDist = s, d
			}
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	match := ""
	for _, p := range knownPaths() {
		if p == unknown || strings.HasSuffix(p, "."+unknown) {
			if match != "" {
				return "" // ambiguous
			}
			match = p
		}
	}
	if match != "" {
		return fmt.Sprintf(" (did you mean %s?)", match)
	}
	return ""
}

// levenshtein is the edit distance between a and b (bytes; keys are ASCII).
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
