package mirror

import "encoding/json"

// EventName returns the event name of an EVENT or BINARY_EVENT payload (`["name", ...]`). It reads
// only the first array element, without decoding the rest of the payload (eioclient decodes the
// whole array to dispatch an event; the mirror only counts events by name).
func EventName(data []byte) (string, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return "", false
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] != '"' {
		return "", false
	}
	end := i + 1
	for end < len(data) {
		c := data[end]
		if c == '\\' {
			end += 2
			continue
		}
		if c == '"' {
			break
		}
		end++
	}
	if end >= len(data) {
		return "", false
	}
	tok := data[i : end+1]
	simple := true
	for _, c := range tok[1 : len(tok)-1] {
		if c == '\\' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple {
		return string(tok[1 : len(tok)-1]), true
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return "", false
	}
	return s, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
