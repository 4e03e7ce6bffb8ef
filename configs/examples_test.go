package configs

import (
	"bytes"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestExamplesLoad(t *testing.T) {
	names := ExampleNames()
	want := []string{"consul.yaml", "demo.yaml", "sioproxy.example.yaml", "static.yaml"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("ExampleNames() = %v, want %v", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, ok := ExampleFile(name)
			if !ok || len(data) == 0 {
				t.Fatalf("ExampleFile(%q) missing", name)
			}
			if _, err := Parse(name, data); err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			// The embedded copy is the file on disk.
			disk, err := Load(name)
			if err != nil {
				t.Fatalf("Load(%q): %v", name, err)
			}
			emb, _ := Parse(name, data)
			if d := ChangedKeys(disk, emb); len(d) != 0 {
				t.Errorf("embedded copy differs from disk in %v", d)
			}
		})
	}
	if _, ok := ExampleFile("nope.yaml"); ok {
		t.Errorf("ExampleFile(nope.yaml) found something")
	}
}

func TestExampleShapes(t *testing.T) {
	static, err := Parse("static.yaml", mustExample("static.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(static.Backends) != 3 || static.Discovery.Consul.Enabled() {
		t.Errorf("static.yaml: %d backends, consul %v; want 3 static backends and no Consul", len(static.Backends), static.Discovery.Consul.Enabled())
	}
	consul, err := Parse("consul.yaml", mustExample("consul.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !consul.Discovery.Consul.Enabled() || len(consul.Backends) != 0 {
		t.Errorf("consul.yaml: consul %v, %d static backends; want Consul discovery only", consul.Discovery.Consul.Enabled(), len(consul.Backends))
	}
	if !bytes.Equal(Example(), mustExample("sioproxy.example.yaml")) || !bytes.Equal(Demo(), mustExample("demo.yaml")) {
		t.Errorf("Example/Demo return the wrong files")
	}
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// TestExampleCoversEveryKey keeps sioproxy.example.yaml complete: every key of the schema appears.
func TestExampleCoversEveryKey(t *testing.T) {
	c, err := Parse("sioproxy.example.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for p := range c.src.lines {
		present[indexRE.ReplaceAllString(p, "[]")] = true
	}
	var missing []string
	for _, p := range KeyPaths() {
		if !present[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("sioproxy.example.yaml lacks keys: %v", missing)
	}
	if len(KeyPaths()) < 60 {
		t.Errorf("KeyPaths() has only %d entries; the schema walk is broken", len(KeyPaths()))
	}
}

// TestExampleCommentsEveryKey: every key line carries a comment, on the line or the line above.
func TestExampleCommentsEveryKey(t *testing.T) {
	c, err := Parse("sioproxy.example.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(Example()), "\n")
	var bare []string
	for p, l := range c.src.lines {
		if strings.HasSuffix(p, "]") {
			continue // a list item: scalars share their key's line, mappings are checked by key
		}
		cur, prev := lines[l-1], ""
		if l >= 2 {
			prev = strings.TrimSpace(lines[l-2])
		}
		if !strings.Contains(cur, "#") && !strings.HasPrefix(prev, "#") {
			bare = append(bare, p)
		}
	}
	slices.Sort(bare)
	if len(bare) > 0 {
		t.Errorf("keys without a comment in sioproxy.example.yaml: %v", bare)
	}
}
