package configs

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds nesting; the schema is a few levels deep, so deeper means a recursive alias.
const maxDepth = 64

// decodeBudget bounds the nodes visited while decoding, so that alias and merge-key expansion
// ("billion laughs") cannot blow up. Real configs visit a few hundred nodes.
const decodeBudget = 200_000

// decoder walks a yaml.Node tree alongside the Go schema. Every key must name a field, every value
// must fit its field; it records the line of every key path and collects all errors.
type decoder struct {
	file   string
	lines  map[string]int
	errs   []*Error
	budget int
	depth  int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}, budget: decodeBudget}
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n into v. A null value leaves v (its default) unchanged.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.errorf(n.Line, path, "document too complex (too much alias expansion)")
		}
		return
	}
	if d.depth >= maxDepth {
		d.errorf(n.Line, path, "nested too deeply (recursive alias or merge?)")
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	n = resolve(n)
	if n == nil {
		d.errorf(0, path, "unresolvable alias")
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			d.value(n.Content[0], v, path)
		}
		return
	}
	if isNull(n) {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n.Line, path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Pointer:
		before := len(d.errs)
		nv := reflect.New(v.Type().Elem())
		d.value(n, nv.Elem(), path)
		if len(d.errs) == before {
			v.Set(nv)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n.Line, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, ok := scalarInt(n)
		if !ok || v.OverflowInt(i) {
			d.errorf(n.Line, path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			d.errorf(n.Line, path, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		panic("configs: unsupported schema type " + v.Type().String())
	}
}

// scalarInt reads an integer scalar; an integral float such as 1e6 is accepted too.
func scalarInt(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		return i, n.Decode(&i) == nil
	case "!!float":
		var f float64
		if n.Decode(&f) != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// mapping decodes a mapping into a struct. Merge keys ("<<") are applied first, so that explicit keys
// override merged ones wherever they appear.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			line := n.Content[i].Line
			d.errorf(line, path, "keys must be strings")
			continue
		}
		if isMergeKey(k) {
			continue
		}
		p := joinPath(path, keyName(k.Value))
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, p, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields.index[k.Value]
		if !ok {
			d.errorf(k.Line, p, "unknown key%s", suggest(k.Value, fields.names))
			continue
		}
		d.lines[p] = k.Line
		d.value(val, v.Field(idx), p)
	}
}

// merge applies the value of a merge key: a mapping, or a sequence of mappings where earlier ones win.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.value(n, v, path)
	case yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			m := resolve(n.Content[i])
			if m == nil || m.Kind != yaml.MappingNode {
				d.errorf(n.Line, path, "merge key (<<) needs a mapping or a sequence of mappings")
				return
			}
			d.value(m, v, path)
		}
	default:
		d.errorf(n.Line, path, "merge key (<<) needs a mapping or a sequence of mappings")
	}
}

// sequence decodes a sequence into a slice, replacing any default.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a sequence, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = e.Line
		d.value(e, s.Index(i), p)
	}
	v.Set(s)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps the YAML keys of a struct to field indexes.
type structFields struct {
	index map[string]int
	names []string // in declaration order
}

var fieldCache sync.Map // reflect.Type -> *structFields; derived from the static schema only

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	fieldCache.Store(t, f)
	return f
}

// knownPaths lists every key path of the schema, with "[]" for sequence elements
// (e.g. "backends[].url"), in declaration order.
var knownPaths = sync.OnceValue(func() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		f := fieldsOf(t)
		for _, name := range f.names {
			p := joinPath(prefix, name)
			out = append(out, p)
			ft := t.Field(f.index[name]).Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, p)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), p+"[]")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
})

// KeyPaths lists every key path of the schema, with "[]" marking sequence elements
// (e.g. "backends[].url"). Useful for documentation and tests.
func KeyPaths() []string { return append([]string(nil), knownPaths()...) }
