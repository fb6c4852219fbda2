package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut.String(), "loadtest") {
		t.Errorf("help does not list loadtest:\n%s", errOut.String())
	}
	if code := run([]string{"loadtest", "-h"}, &out, &errOut); code != 0 {
		t.Fatalf("loadtest -h: exit %d", code)
	}
	if code := run([]string{"nonesuch"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

func TestLoadtestSmall(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"loadtest", "-n", "20", "-c", "4", "-batch", "8", "-baseline"}, &out, &errOut)
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == "20" && f[2] == "0" {
			rows[f[0]] = true
		}
	}
	if !rows["samljit"] || !rows["samlsp"] || !strings.Contains(out.String(), "throughput") {
		t.Errorf("want a row of 20 requests and 0 errors for samljit and samlsp, and a comparison")
	}
}
