package configs

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse: Parse never panics; every error line starts with the file name; a config that parses
// validates, and written back as YAML parses to the same config.
func FuzzParse(f *testing.F) {
	for _, name := range ExampleNames() {
		data, _ := ExampleFile(name)
		f.Add(data)
	}
	for _, s := range []string{
		"", minimal, "listen: [1]\n", "a: b: c\n", "proxy: &p\n  <<: *p\n", "x: *nope\n",
		minimal + "proxy:\n  upstream_timout: 1s\n", minimal + "---\na: 1\n",
		"backends:\n  - &b {url: 'http://a:1'}\n  - <<: [*b, *b]\n    id: x\n",
		minimal + "balancer: {epsilon: .nan, admission: {rate: .inf}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("config and error both returned")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml:") {
					t.Fatalf("error line %q does not start with the file name", line)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config: %v\n%s", err, out)
		}
		if d := ChangedKeys(c, back); d != nil {
			t.Fatalf("round trip changed %v\n%s", d, out)
		}
	})
}
