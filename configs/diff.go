package configs

import (
	"reflect"
)

// Diff lists the top-level sections (YAML keys such as "backends", "proxy") whose values differ
// between old and new, in schema order; nil when none do. A nil Config counts as the zero Config;
// nil and empty lists are equal. For hot-reload logs.
func Diff(old, new *Config) []string {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	f := fieldsOf(reflect.TypeFor[Config]())
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	var changed []string
	for _, name := range f.names {
		i := f.index[name]
		if !sameValue(ov.Field(i), nv.Field(i)) {
			changed = append(changed, name)
		}
	}
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
