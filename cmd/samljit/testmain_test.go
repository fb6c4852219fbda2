package main

import (
	"os"
	"testing"

	"github.com/samljit/samljit/internal/testenv"
)

// TestMain prints, once, which tests skipped for a missing component and
// how to enable them, where a plain go test shows it. Re-executed by a
// load test to measure a target's memory, the test binary serves that
// target instead, as the samljit binary does.
func TestMain(m *testing.M) {
	if target := loadChild(); target != "" {
		os.Exit(runLoadChild(target, os.Stdin, os.Stdout, os.Stderr))
	}
	testenv.Main(m)
}
