// Package skipper is a fixture for testenv's own test: one test needs a
// component that is never there, one passes.
package skipper

import (
	"testing"

	"github.com/samljit/samljit/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestNeedsUnicorn(t *testing.T) {
	t.Run("Horn", func(t *testing.T) { testenv.Need(t, "no unicorn in the stable", "buy a unicorn") })
	t.Run("Mane", func(t *testing.T) { testenv.Need(t, "no unicorn in the stable", "buy a unicorn") })
}

func TestNeedsNothing(t *testing.T) {}
