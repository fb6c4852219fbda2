package entragraph_test

import (
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"
)

// BenchmarkOverageSignIn measures complete sign-ins through jit over real
// HTTP (login, the jittest IdP, the ACS, a SQLite write) of three people
// of one Entra connection, in rotating order within each iteration:
//
//   - small: 5 groups in the assertion's groups claim
//   - full: 150 groups in the claim, the most Entra ID sends
//   - overage: 300 groups, so Entra's groups.link claim instead, resolved
//     by the Resolver from three pages of 100 against the Graph double on
//     127.0.0.1 (the app-only token cached after the first sign-in, as in
//     production)
//
// Each is a returning person (the first sign-ins are untimed). It reports
// the median of each (small-ns, full-ns, overage-ns) and the overage
// sign-in's ratio to the other two; ns/op is the sum of all three.
func BenchmarkOverageSignIn(b *testing.B) {
	a := newApp(b)
	overageGroups := append(slices.Clone(a.groups), guids(50)...)
	a.g.setMembers(a.tenant, a.user, overageGroups)
	a.addPerson("overage", a.user, nil)
	a.addPerson("full", guid(), append(guids(149), a.editor))
	a.addPerson("small", guid(), append(guids(4), a.editor))
	people := []string{"small", "full", "overage"}
	for _, who := range people {
		if resp, body := a.signIn(who); resp.StatusCode != http.StatusSeeOther {
			b.Fatalf("%s: %d %s", who, resp.StatusCode, body)
		}
	}
	_, before := a.g.calls()
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range people {
			who := people[(i+j)%len(people)]
			start := time.Now()
			resp, body := a.signIn(who)
			times[who] = append(times[who], time.Since(start))
			if resp.StatusCode != http.StatusSeeOther {
				b.Fatalf("%s: %d %s", who, resp.StatusCode, body)
			}
		}
	}
	b.StopTimer()
	_, after := a.g.calls()
	if pages, n := after-before, len(times["overage"]); pages != 3*n {
		b.Fatalf("%d Graph pages for %d overage sign-ins, want 3 each", pages, n)
	}
	med := map[string]float64{}
	for _, who := range people {
		med[who] = float64(median(times[who]))
		b.ReportMetric(med[who], who+"-ns")
	}
	b.ReportMetric(med["overage"]/med["small"], "overage/small")
	b.ReportMetric(med["overage"]/med["full"], "overage/full")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		panic("no samples")
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}
