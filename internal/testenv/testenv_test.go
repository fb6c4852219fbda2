package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
)

const fixture = "./testdata/skipper"

// goTest runs go test -count=1 on the fixture package, through script(1)
// when tty is set so that it has a terminal as a person's shell does, and
// returns its combined output and whether it succeeded.
func goTest(t *testing.T, tty bool, env ...string) (string, bool) {
	t.Helper()
	var cmd *exec.Cmd
	if tty {
		script, err := exec.LookPath("script")
		if err != nil {
			testenv.Need(t, "script(1) is not installed", "apt-get install -y bsdutils")
		}
		cmd = exec.Command(script, "-qec", "go test -count=1 "+fixture, "/dev/null")
	} else {
		cmd = exec.Command("go", "test", "-count=1", fixture)
	}
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.ReplaceAll(string(out), "\r\n", "\n"), err == nil
}

// TestPlainGoTestShowsSkips: without -v, go test hides a passing
// package's output, yet the summary of what was skipped, and how to
// enable it, reaches the person's terminal, once for the package.
func TestPlainGoTestShowsSkips(t *testing.T) {
	out, ok := goTest(t, true, "CI=")
	require.True(t, ok, out)
	assert.Equal(t, 1, strings.Count(out, "SKIP ./internal/testenv/testdata/skipper: 2 test(s) skipped (TestNeedsUnicorn): no unicorn in the stable; to run: buy a unicorn\n"), out)
	assert.Contains(t, out, "ok  \tgithub.com/samljit/samljit/internal/testenv/testdata/skipper")
}

// TestCIFailsInsteadOfSkipping: with CI=true a missing component fails
// the test.
func TestCIFailsInsteadOfSkipping(t *testing.T) {
	out, ok := goTest(t, false, "CI=true")
	require.False(t, ok, out)
	assert.Contains(t, out, "--- FAIL: TestNeedsUnicorn")
	assert.Contains(t, out, "no unicorn in the stable; CI=true, so this test must run: buy a unicorn")
	assert.NotContains(t, out, "SKIP ./internal", "nothing was skipped")
}

func TestSummary(t *testing.T) {
	assert.Empty(t, testenv.Summary())
	t.Setenv("CI", "")
	t.Run("Skipped", func(t *testing.T) { testenv.Need(t, "no widget", "fit a widget") })
	assert.Equal(t, "SKIP ./internal/testenv: 1 test(s) skipped (TestSummary): no widget; to run: fit a widget\n", testenv.Summary())
}
