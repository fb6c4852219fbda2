package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samljit/samljit/jit/jittest"
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

// TestLoadtestSmall runs a small load test: two alternating rounds per
// target after a warm-up, and each target's peak memory in a child
// process, and checks every round and both memory runs are reported, with
// no failed sign-in.
func TestLoadtestSmall(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"loadtest", "-n", "12", "-c", "4", "-batch", "8", "-rounds", "2", "-warmup", "4"}, &out, &errOut)
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	rows := map[string]int{}
	var order []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) == 8 && f[2] == "12" && f[3] == "0" {
			rows[f[1]]++
			order = append(order, f[1])
		}
	}
	if rows["samljit"] != 2 || rows["samlsp"] != 2 {
		t.Errorf("want two rounds of 12 requests and 0 errors for samljit and samlsp, got %v", rows)
	}
	if len(order) == 4 && (order[0] == order[2] || order[0] != order[3]) {
		t.Errorf("the targets did not alternate who goes first: %v", order)
	}
	for _, want := range []string{
		"samljit: throughput median", "samlsp: throughput median", "samljit/samlsp by round: throughput median",
		"samljit: peak resident memory", "samlsp: peak resident memory", "samljit/samlsp: peak resident memory",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output", want)
		}
	}
}

// TestLoadtestFailsOnError checks that a failed sign-in fails the run: a
// target that refuses every response (minted for another ACS) is an
// error, not a slow result.
func TestLoadtestFailsOnError(t *testing.T) {
	idp, err := jittest.NewServer(jittest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	a, err := startApp("samljit", idp.Metadata(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	wrong := *a
	wrong.entityID = "http://127.0.0.1:1/saml/metadata" // an audience the app is not
	res, err := drive(&wrong, idp, loadConfig{n: 3, concurrency: 2, batch: 3, groups: 1}, "samljit")
	if err != nil {
		t.Fatal(err)
	}
	if res.errors != 3 || res.failed() == nil {
		t.Fatalf("%d errors, failed() = %v: want every sign-in refused and the run failed", res.errors, res.failed())
	}
}

// TestSpreadOf checks the median and range the load test reports.
func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want spreadStats
	}{
		{[]float64{3, 1, 2}, spreadStats{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, spreadStats{2.5, 1, 4}},
		{[]float64{7}, spreadStats{7, 7, 7}},
		{nil, spreadStats{}},
	} {
		if got := spreadOf(c.in); got != c.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}
