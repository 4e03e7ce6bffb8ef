package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// maxSIDLen bounds the sid a probe accepts (real ones are 20 characters).
const maxSIDLen = 256

// parseOpenPacket reads the sid from an Engine.IO v4 polling handshake body: packets
// separated by 0x1e, the first an open packet "0" followed by a JSON object with a
// non-empty "sid".
func parseOpenPacket(body []byte) (string, error) {
	first, _, _ := bytes.Cut(body, []byte{0x1e})
	if len(first) < 2 || first[0] != '0' || first[1] != '{' {
		return "", fmt.Errorf("not an Engine.IO v4 open packet: %q", truncate(body, 40))
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(first[1:], &open); err != nil {
		return "", fmt.Errorf("open packet: %w", err)
	}
	if open.SID == "" || len(open.SID) > maxSIDLen {
		return "", errors.New("open packet: missing or oversized sid")
	}
	return open.SID, nil
}

// truncate returns at most n bytes of b, for error messages.
func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
