// Package testenv is what the project's tests share for external
// components (PostgreSQL, Chromium, SimpleSAMLphp, a filesystem feature):
// a test that needs one calls [Need], which skips it with a message when
// the component is absent and fails it when CI=true, where nothing may
// pass by skipping; a package whose tests do that runs them through
// [Main], which prints, once, what was skipped and how to enable it.
//
// go test shows a passing package's output only with -v, so a plain
// go test ./... would hide every skip. Main writes its summary to the
// terminal go test was started from (/dev/tty), which go test does not
// capture, and to standard error, which -v and a failing package show.
package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// skips are the tests skipped so far, by the reason given to Need.
var skips = struct {
	sync.Mutex
	byReason map[string][]string
	reasons  []string
}{byReason: map[string][]string{}}

// InCI reports whether the tests run in CI (CI=true), where a missing
// component is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need ends t because a component it needs is missing: missing says what
// is absent, enable how to provide it. It skips t, recording the skip for
// Main's summary; with CI=true it fails t instead.
func Need(t testing.TB, missing, enable string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s; CI=true, so this test must run: %s", missing, enable)
	}
	reason := missing + "; to run: " + enable
	skips.Lock()
	if _, ok := skips.byReason[reason]; !ok {
		skips.reasons = append(skips.reasons, reason)
	}
	skips.byReason[reason] = append(skips.byReason[reason], t.Name())
	skips.Unlock()
	t.Skip(reason)
}

// Main runs the package's tests and, when Need skipped any, prints one
// summary line per reason; it then exits with the tests' status. Call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if s := Summary(); s != "" {
		report(s)
	}
	os.Exit(code)
}

// Summary returns the lines Main prints: for each reason, how many tests
// of this package were skipped for it and how to enable them; "" when
// none was.
func Summary() string {
	skips.Lock()
	defer skips.Unlock()
	var b strings.Builder
	for _, r := range skips.reasons {
		names := slices.Compact(slices.Sorted(slices.Values(topLevel(skips.byReason[r]))))
		if len(names) > 3 {
			names = append(names[:3], fmt.Sprintf("%d more", len(names)-3))
		}
		fmt.Fprintf(&b, "SKIP %s: %d test(s) skipped (%s): %s\n", packageDir(), len(skips.byReason[r]), strings.Join(names, ", "), r)
	}
	return b.String()
}

// topLevel returns the top-level test of each subtest name.
func topLevel(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i], _, _ = strings.Cut(n, "/")
	}
	return out
}

// packageDir is the package's directory relative to the module root, as
// ./path; go test runs a test binary in its package's directory.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return wd
		}
		dir = parent
	}
}

// report writes the summary where a person running go test sees it: the
// terminal, unless go test shows the package's output anyway (-v), and
// standard error.
func report(s string) {
	fmt.Fprint(os.Stderr, s)
	if testing.Verbose() {
		return
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		return // no terminal: -v or a failure shows standard error
	}
	defer tty.Close()
	_, _ = io.WriteString(tty, s)
}

// PostgresHowTo is how to enable the PostgreSQL tests.
const PostgresHowTo = "start PostgreSQL and set SAMLJIT_TEST_POSTGRES_DSN, e.g. postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable (bash .ci/run does both)"
