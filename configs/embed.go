package configs

import (
	"embed"
	"io/fs"
	"slices"
)

//go:embed *.yaml
var exampleFS embed.FS

// Example returns sioproxy.example.yaml: every key, each commented, with its default.
func Example() []byte { return mustExample("sioproxy.example.yaml") }

// Demo returns demo.yaml, the configuration of `sioproxy demo`.
func Demo() []byte { return mustExample("demo.yaml") }

// ExampleFile returns the embedded example file with the given name (see ExampleNames).
func ExampleFile(name string) ([]byte, bool) {
	data, err := fs.ReadFile(exampleFS, name)
	return data, err == nil
}

// ExampleNames lists the embedded example files, sorted.
func ExampleNames() []string {
	names, _ := fs.Glob(exampleFS, "*.yaml")
	slices.Sort(names)
	return names
}

func mustExample(name string) []byte {
	data, ok := ExampleFile(name)
	if !ok {
		panic("configs: missing embedded " + name)
	}
	return data
}
