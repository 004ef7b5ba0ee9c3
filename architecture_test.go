package ordergrid_test

import (
	"errors"
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ordergrid/ordergrid/"

// rule is one line of the house's plan: the packages it covers must not
// import any of forbidden. The module's packages are named by their path
// inside the module, others by their import path; "x/..." is x and
// everything under it, "..." everything.
type rule struct {
	why string
	// linked checks everything the packages link (their imports, and
	// those of the module's packages they import, transitively), not only
	// what they import themselves.
	linked    bool
	packages  []string
	except    []string
	forbidden []string
}

// grid is every package of the running system below the transport.
var grid = []string{"intake", "actors", "statemachine", "cluster/...", "ledger/...", "retention", "routing", "channels",
	"privacy", "lifecycle", "batching", "jsonshape", "config", "internal/gridpb"}

// pure are the packages of logic alone: no storage, no network, no actors.
var pure = []string{"routing", "channels", "privacy", "lifecycle", "batching", "jsonshape", "ledger/merkle", "ledger/checkpoint", "tracking",
	"limits", "address", "risk", "screening"}

// infrastructure is what pure logic never touches.
var infrastructure = []string{"github.com/cockroachdb/pebble/...", "github.com/hashicorp/raft/...", "github.com/asynkron/protoactor-go/...",
	"google.golang.org/grpc/...", "github.com/prometheus/...", "github.com/hyperledger/...", "net", "os/exec"}

var rules = []rule{
	{why: "the grid knows no transport", packages: grid,
		forbidden: []string{"gateway/...", "cmd/...", "bench/..."}},
	{why: "intake is transport-free", packages: []string{"intake"},
		forbidden: []string{"net/http", "google.golang.org/grpc/..."}},
	{why: "the judge knows no grains", packages: []string{"statemachine"}, linked: true,
		forbidden: []string{"actors", "intake", "retention", "github.com/asynkron/protoactor-go/..."}},
	{why: "cluster knows no domain", packages: []string{"cluster/..."}, linked: true,
		forbidden: []string{"statemachine", "actors", "intake", "ledger/...", "routing", "channels", "privacy", "lifecycle",
			"retention", "internal/gridpb", "proto/..."}},
	{why: "the ledger knows no domain", packages: []string{"ledger/..."},
		forbidden: []string{"statemachine", "actors", "intake", "routing", "channels", "privacy", "lifecycle", "retention",
			"internal/gridpb", "proto/..."}},
	{why: "pure logic touches no infrastructure", packages: pure,
		forbidden: append([]string{"cluster/...", "actors", "statemachine", "intake", "ledger", "retention"}, infrastructure...)},
	{why: "the transport reaches the grid through intake and small interfaces it owns, not the grains or the judge",
		packages: []string{"gateway"}, forbidden: []string{"actors", "statemachine", "internal/gridpb/grains", "github.com/asynkron/protoactor-go/..."}},
	{why: "only the grains link the actor system", packages: []string{"..."},
		except:    []string{"actors/...", "internal/gridpb/grains", "failure", "cmd/...", "e2e", "bench/..."},
		forbidden: []string{"github.com/asynkron/protoactor-go/...", "internal/gridpb/grains"}},
	{why: "the platforms' API clients call out; they know the channels, not the grid", packages: []string{"platforms"}, linked: true,
		forbidden: []string{"actors", "statemachine", "cluster/...", "intake", "gateway/...", "cmd/...", "github.com/asynkron/protoactor-go/..."}},
	{why: "verifying an archive needs no actor system", packages: []string{"retention"}, linked: true,
		forbidden: []string{"actors", "github.com/asynkron/protoactor-go/..."}},
	{why: "the product does not link test support", packages: []string{"..."},
		except:    []string{"e2e", "simulation", "internal/fabrictest", "cluster/clustertest", "actors/memgrid", "internal/testseed", "internal/browsertest"},
		forbidden: []string{"internal/fabrictest", "cluster/clustertest", "actors/memgrid", "internal/testseed", "internal/browsertest", "testing"}},
}

// TestArchitecture fails when a package imports what the house's plan says
// it must not (non-test files only: tests may reach anywhere).
func TestArchitecture(t *testing.T) {
	imports := modulePackages(t)
	for _, r := range rules {
		covered := 0
		for pkg, deps := range imports {
			if !matchesAny(pkg, r.packages) || matchesAny(pkg, r.except) {
				continue
			}
			covered++
			if r.linked {
				deps = linked(imports, pkg)
			}
			for _, d := range deps {
				if matchesAny(d, r.forbidden) {
					t.Errorf("%s imports %s, but %s", pkg, d, r.why)
				}
			}
		}
		if covered == 0 {
			t.Errorf("rule %q covers no package: the plan names packages that do not exist", r.why)
		}
	}
}

// modulePackages maps each package of the module (relative path) to its
// non-test imports (relative for the module's own, full otherwise).
func modulePackages(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		p, err := build.Default.ImportDir(path, 0)
		if err != nil {
			var none *build.NoGoError
			if errors.As(err, &none) {
				return nil
			}
			return err
		}
		rel := filepath.ToSlash(path)
		var deps []string
		for _, imp := range p.Imports {
			deps = append(deps, strings.TrimPrefix(imp, module))
		}
		sort.Strings(deps)
		out[rel] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found %d packages: not run from the module root?", len(out))
	}
	return out
}

// linked is everything pkg links: its imports and, for the module's own
// packages among them, theirs, transitively (sorted).
func linked(imports map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range imports[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func matchesAny(pkg string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(pkg, p) })
}

func matches(pkg, pattern string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func TestPatternMatching(t *testing.T) {
	for _, c := range []struct {
		pkg, pattern string
		want         bool
	}{
		{"ledger", "ledger/...", true}, {"ledger/merkle", "ledger/...", true}, {"ledgerx", "ledger/...", false},
		{"cluster/clusterpb", "cluster", false}, {"anything/at/all", "...", true}, {"net/http", "net", false},
	} {
		if got := matches(c.pkg, c.pattern); got != c.want {
			t.Errorf("matches(%q, %q) = %v, want %v", c.pkg, c.pattern, got, c.want)
		}
	}
}
