package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest config file Parse accepts.
const MaxFileSize = 1 << 20

// Load reads the file at path and parses it with Parse, naming errors after path.
func Load(path string) (*Config, error) {
	c, err := Read(path)
	if err != nil {
		return nil, err
	}
	if err := c.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// Read reads the file at path and decodes it with Decode: the Config is not normalized or
// validated yet, so that command-line flags can be applied over it first (then call Finish).
func Read(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Decode(path, data)
}

// Parse builds a Config from YAML with Decode, then normalizes and validates it (Finish). name is
// the file name used in errors. On failure it returns nil and every problem found, joined with
// errors.Join, one "name:line: key.path: message" per line (see Error). Decoding problems are
// reported without validation problems, so a value that failed to decode is not reported twice.
func Parse(name string, data []byte) (*Config, error) {
	c, err := Decode(name, data)
	if err != nil {
		return nil, err
	}
	if err := c.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode builds a Config from YAML: defaults first, then a strict decode of data (unknown keys,
// wrong types and duplicate keys are errors). It records the line of every key for the errors of a
// later Finish, and neither normalizes nor validates.
func Decode(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file too large (%d bytes, at most %d)", len(data), MaxFileSize)}
	}
	root, perr := parseNode(name, data)
	if perr != nil {
		return nil, perr
	}
	c := Default()
	d := newDecoder(name)
	if root != nil {
		d.value(root, reflect.ValueOf(c).Elem(), "")
	}
	if len(d.errs) > 0 {
		return nil, joinErrors(d.errs)
	}
	c.src = &source{file: name, lines: d.lines}
	return c, nil
}

// Finish normalizes and validates a decoded Config (after any flags were applied with SetByFlag).
func (c *Config) Finish() error {
	c.Normalize()
	return c.Validate()
}

// SetByFlag records that the key at path (such as "listen" or "backends") was set by the
// command-line flag named flag, so that a validation error about it names the flag, not a line of
// the file.
func (c *Config) SetByFlag(path, flag string) {
	if c.src == nil {
		c.src = &source{lines: map[string]int{}}
	}
	if c.src.flags == nil {
		c.src.flags = map[string]string{}
	}
	c.src.flags[path] = flag
}

// parseNode parses data into a node tree; nil for an empty document.
func parseNode(name string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil { // the YAML library must not take the process down on bad input
			root, err = nil, &Error{File: name, Msg: fmt.Sprintf("YAML parser failure: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, syntaxError(name, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, syntaxError(name, data, err)
	default:
		return nil, &Error{File: name, Line: extra.Line, Msg: "more than one YAML document (remove the second ---)"}
	}
	return &doc, nil
}

var (
	yamlLineRE   = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// syntaxError turns a YAML library error into an Error with the line number pulled out. The library
// leaves the line out for a problem on line 1, and for an unknown anchor, whose alias is searched for.
func syntaxError(name string, data []byte, err error) error {
	msg := strings.TrimPrefix(oneLine(err.Error()), "yaml: ")
	e := &Error{File: name, Line: 1, Msg: "YAML syntax error: " + msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if line, aerr := strconv.Atoi(m[1]); aerr == nil {
			e.Line, e.Msg = line, "YAML syntax error: "+m[2]
		}
	} else if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		e.Line = lineAt(data, bytes.Index(data, []byte("*"+m[1])))
	} else if strings.Contains(msg, "UTF-8") || strings.Contains(msg, "Unicode") || strings.Contains(msg, "control characters") {
		e.Line = lineAt(data, badCharAt(data))
	}
	return e
}

// lineAt returns the 1-based line of byte offset i; 0 when i < 0.
func lineAt(data []byte, i int) int {
	if i < 0 {
		return 0
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

// badCharAt returns the offset of the first byte YAML rejects (invalid UTF-8 or a control
// character other than tab and line breaks), or -1.
func badCharAt(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f || r == 0xFFFE || r == 0xFFFF {
			return i
		}
		i += size
	}
	return -1
}
