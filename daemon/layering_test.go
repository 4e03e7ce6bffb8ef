package daemon

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layer is the rank of each package of the process: a package imports only packages of a lower
// rank, so the house reads one way (cmd -> daemon -> admin, mirror -> proxy, health -> sticky ->
// eioproto, balancer). configs is read by daemon and cmd only: the packages under daemon take
// explicit values, and the mapping from config to runtime lives in daemon.
var layer = map[string]int{
	"eioproto": 0, "balancer": 0, "configs": 0, "internal/fakeclock": 0, "internal/cachedbin": 0,
	"sticky": 1, "internal/backendtls": 1, "internal/testpki": 1,
	"proxy": 2, "health": 2, "eioclient": 2, "eioserver": 2,
	"proxy/mirror": 3, "admin": 3, "demo": 3,
	"daemon":       4,
	"cmd/sioproxy": 5, "cmd/sioload": 5,
}

// testHelpers are packages that only tests import (agents, fake servers): not layered.
var testHelpers = map[string]bool{"health/consultest": true, "health/kubetest": true, "eioserver/eiotest": true}

// TestImportsGoOneWay reads the imports of every non-test file of the process's packages (not
// test/, whose harnesses may import anything) and fails for an import against the layering, for
// configs imported below daemon, and for a package missing from the table.
func TestImportsGoOneWay(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "test" || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "tmp" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		if testHelpers[pkg] {
			return nil
		}
		rank, ok := layer[pkg]
		if !ok {
			t.Errorf("%s: package %s has no layer in daemon/layering_test.go", rel, pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		seen++
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			dep, ours := strings.CutPrefix(p, "sioproxy/")
			if !ours {
				continue
			}
			if dep == "configs" && rank < layer["daemon"] {
				t.Errorf("%s imports configs: packages under daemon take explicit values", rel)
			}
			dr, ok := layer[dep]
			if !ok {
				t.Errorf("%s imports %s, which has no layer", rel, dep)
				continue
			}
			if dr >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go down only", rel, rank, dep, dr)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 50 {
		t.Fatalf("read only %d files: the walk missed the packages", seen)
	}
}
