package configs

import (
	"reflect"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Keys lists the settable keys of the schema as dotted paths, in declaration order: every field
// that is not a section, a list counting as one key ("backends", "sticky.paths"). A reload plan
// maps each of them, or a section above it, to how a running process applies it.
func Keys() []string { return schemaKeys() }

var schemaKeys = sync.OnceValue(func() []string {
	var out []string
	walkKeys(reflect.TypeFor[Config](), "", func(path string) { out = append(out, path) })
	return out
})

// isSection reports whether a field of type t is a section (a struct whose fields are keys of their
// own) rather than a value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != reflect.TypeFor[Duration]()
}

func walkKeys(t reflect.Type, prefix string, visit func(string)) {
	f := fieldsOf(t)
	for _, name := range f.names {
		p := joinPath(prefix, name)
		if ft := t.Field(f.index[name]).Type; isSection(ft) {
			walkKeys(ft, p, visit)
		} else {
			visit(p)
		}
	}
}

// ChangedKeys lists the keys (as Keys names them) whose values differ between old and new, in schema
// order; nil when none do. nil and empty lists are equal; a nil Config counts as the zero Config.
func ChangedKeys(old, new *Config) []string {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	var changed []string
	var walk func(a, b reflect.Value, prefix string)
	walk = func(a, b reflect.Value, prefix string) {
		f := fieldsOf(a.Type())
		for _, name := range f.names {
			i := f.index[name]
			p := joinPath(prefix, name)
			if isSection(a.Field(i).Type()) {
				walk(a.Field(i), b.Field(i), p)
			} else if !sameValue(a.Field(i), b.Field(i)) {
				changed = append(changed, p)
			}
		}
	}
	walk(reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem(), "")
	return changed
}

// sameValue compares schema values: exported struct fields, pointees, list elements (nil == empty).
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() && !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	default:
		return a.Equal(b)
	}
}

// redactedValue replaces a secret in Redacted.
const redactedValue = "<redacted>"

// Redacted returns a copy of c with its secrets (admin.token, discovery.consul.token) replaced, fit
// to be shown by the admin API or logged.
func (c *Config) Redacted() *Config {
	r := *c
	if r.Admin.Token != "" {
		r.Admin.Token = redactedValue
	}
	if r.Discovery.Consul.Token != "" {
		r.Discovery.Consul.Token = redactedValue
	}
	return &r
}

// YAML encodes c in the schema's YAML, as a config file would hold it.
func (c *Config) YAML() ([]byte, error) { return yaml.Marshal(c) }
