package scim_test

import (
	"go/build"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDoesNotImportJIT fails if package scim, or any package of this
// module it imports, imports jit: SCIM is the path that deprovisions, and
// it shares with the sign-in path only the store and the role mapping it
// is given.
func TestDoesNotImportJIT(t *testing.T) {
	const module = "github.com/samljit/samljit"
	seen := map[string]bool{}
	var walk func(path, dir string)
	walk = func(path, dir string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.Import(path, dir, 0)
		require.NoError(t, err, path)
		for _, imp := range pkg.Imports {
			require.False(t, imp == module+"/jit" || strings.HasPrefix(imp, module+"/jit/"), "%s imports %s", path, imp)
			if strings.HasPrefix(imp, module+"/") {
				walk(imp, pkg.Dir)
			}
		}
	}
	walk(module+"/scim", ".")
	require.True(t, seen[module+"/userstore"], "the walk reached userstore: %v", seen)
}
