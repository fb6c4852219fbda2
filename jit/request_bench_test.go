package jit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore/memstore"
)

// BenchmarkRequestGroups is an authenticated request through RequireUser
// for a user with 5 groups and one with 150, on one middleware and one
// SQLite file, the two alternating request by request (each first every
// other time), so that a noisy machine slows both alike. It reports each
// side's median and the ratio of 150 groups to 5: what the group count
// adds to a request, on a SQLite file and on memstore. "bare" is a handler that reads nothing; "user" one
// that reads the user from the context and checks a role, as an
// application's handler does.
func BenchmarkRequestGroups(b *testing.B) {
	for _, store := range []string{"sqlite", "memstore"} {
		for _, handler := range []string{"bare", "user"} {
			b.Run(store+"/"+handler, func(b *testing.B) {
				var next http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
				if handler == "user" {
					next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						u, ok := jit.UserFromContext(r.Context())
						if !ok || u.ID == "" || u.HasRole("admin") {
							w.WriteHeader(http.StatusInternalServerError)
							return
						}
						w.WriteHeader(http.StatusNoContent)
					})
				}
				benchRequestGroups(b, store == "memstore", next)
			})
		}
	}
}

func benchRequestGroups(b *testing.B, mem bool, next http.Handler) {
	idp := benchIdP(b)
	var mw *jit.Middleware
	if mem {
		key, cert := spKeyPair()
		var err error
		mw, err = jit.New(context.Background(), jit.Options{
			RootURL: benchRoot, Key: key, Certificate: cert, Store: memstore.New(),
			SessionKeys: [][]byte{make32()},
			Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Connections: []jit.Connection{{IDPMetadata: idp.Metadata(), AllowIDPInitiated: true}},
		})
		if err != nil {
			b.Fatal(err)
		}
	} else {
		mw, _ = newBenchJIT(b, idp, filepath.Join(b.TempDir(), "users.db"))
	}
	protected := mw.RequireUser(next)
	counts := []int{5, 150}
	reqs := make([]*http.Request, len(counts))
	for i, n := range counts {
		w := postACS(mw, mint(b, idp, addUsers(idp, 1, n), 1)[0])
		signInOK(b, w)
		reqs[i] = httptest.NewRequest(http.MethodGet, benchRoot+"/app", nil)
		for _, c := range liveCookies(w.Result().Cookies()) {
			reqs[i].AddCookie(c)
		}
	}
	took := [][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for k := range reqs {
			i := (k + n) % len(reqs)
			w := httptest.NewRecorder()
			start := time.Now()
			protected.ServeHTTP(w, reqs[i])
			took[i] = append(took[i], time.Since(start))
			if w.Code != http.StatusNoContent {
				b.Fatalf("request with %d groups: status %d: %s", counts[i], w.Code, w.Body.String())
			}
		}
	}
	b.StopTimer()
	med := make([]float64, len(took))
	for i, d := range took {
		slices.Sort(d)
		med[i] = float64(d[len(d)/2].Nanoseconds())
		b.ReportMetric(med[i], fmt.Sprintf("g%d-ns", counts[i]))
	}
	b.ReportMetric(med[1]/med[0], "g150/g5")
}
