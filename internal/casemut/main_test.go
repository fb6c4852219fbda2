package main

import (
	"go/format"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const src = `package p

func f(a, b int, s string) int {
	switch {
	case a < b && s != "x":
		return 1
	case a+1 >= b, s+"y" == "z":
		return 2
	}
	if a == b {
		return 3
	}
	switch a {
	case 4 * 2:
	}
	select {}
}
`

// TestCaseMutants: every operator of a case clause's conditions gets
// gremlins' mutants, at gremlins' line and column; conditions outside
// case clauses, and + on a string literal, get none.
func TestCaseMutants(t *testing.T) {
	ms, err := caseMutants("p.go", []byte(src))
	require.NoError(t, err)
	type got struct {
		line, col int
		from, to  string
		kind      string
	}
	var all []got
	for _, m := range ms {
		all = append(all, got{m.line, m.col, m.from, m.to, m.kind})
		mutated := m.apply([]byte(src))
		_, err := format.Source(mutated)
		require.NoError(t, err, "%s:%d:%d %s", m.file, m.line, m.col, m.to)
		assert.Equal(t, m.from, src[m.offset:m.offset+len(m.from)])
	}
	assert.Equal(t, []got{
		{5, 9, "<", "<=", "CONDITIONALS_BOUNDARY"},
		{5, 9, "<", ">=", "CONDITIONALS_NEGATION"},
		{5, 18, "!=", "==", "CONDITIONALS_NEGATION"},
		{7, 8, "+", "-", "ARITHMETIC_BASE"},
		{7, 11, ">=", ">", "CONDITIONALS_BOUNDARY"},
		{7, 11, ">=", "<", "CONDITIONALS_NEGATION"},
		{7, 23, "==", "!=", "CONDITIONALS_NEGATION"},
		{14, 9, "*", "/", "ARITHMETIC_BASE"},
	}, all)
}

// TestParseDiff: the lines a zero-context diff adds or changes, per file
// of the new side; a deleted file has none.
func TestParseDiff(t *testing.T) {
	diff := `diff --git a/slo.go b/slo.go
--- a/slo.go
+++ b/slo.go
@@ -10,0 +11,2 @@ func a() {
+x
+y
@@ -40 +42 @@ func b() {
-old
+new
@@ -50,3 +52,0 @@
-gone
diff --git a/old.go b/old.go
--- a/old.go
+++ /dev/null
@@ -1,2 +0,0 @@
-a
-b
diff --git a/sub/new.go b/sub/new.go
--- /dev/null
+++ b/sub/new.go
@@ -0,0 +1 @@
+package sub
`
	changed, err := parseDiff([]byte(diff))
	require.NoError(t, err)
	assert.Equal(t, map[string]map[int]bool{
		"slo.go":     {11: true, 12: true, 42: true},
		"sub/new.go": {1: true},
	}, changed)
}
