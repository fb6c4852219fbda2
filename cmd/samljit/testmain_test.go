package main

import (
	"testing"

	"github.com/samljit/samljit/internal/testenv"
)

// TestMain prints, once, which tests skipped for a missing component and
// how to enable them, where a plain go test shows it.
func TestMain(m *testing.M) { testenv.Main(m) }
