package jit_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/samljit/samljit/jit"
)

// discardActivity is a Recorder that keeps nothing.
type discardActivity struct{}

func (discardActivity) SessionSeen(context.Context, jit.Activity) error { return nil }

// BenchmarkRequestActivity is an authenticated request through
// RequireUser without and with Options.Activity, the two alternating
// request by request, each first every other time, so that a noisy
// machine slows both alike: what the
// once-a-minute limiter costs every request (the one report is made by
// the first request). It reports each side's ns/op and their ratio.
func BenchmarkRequestActivity(b *testing.B) {
	idp := benchIdP(b)
	users := addUsers(idp, 2, 5)
	bodies := mint(b, idp, users, 2)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var handlers [2]http.Handler
	var reqs [2]*http.Request
	for i, on := range []bool{false, true} {
		st, _ := openSQLite(b, filepath.Join(b.TempDir(), "users.db"))
		key, cert := spKeyPair()
		opts := jit.Options{
			RootURL: benchRoot, Key: key, Certificate: cert, Store: st,
			SessionKeys: [][]byte{make32()},
			Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Connections: []jit.Connection{{IDPMetadata: idp.Metadata(), AllowIDPInitiated: true}},
		}
		if on {
			opts.Activity.Recorder = discardActivity{}
		}
		mw, err := jit.New(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		w := postACS(mw, bodies[i])
		signInOK(b, w)
		reqs[i] = httptest.NewRequest(http.MethodGet, benchRoot+"/app", nil)
		for _, c := range liveCookies(w.Result().Cookies()) {
			reqs[i].AddCookie(c)
		}
		handlers[i] = mw.RequireUser(ok)
	}
	var spent [2]time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for k := range handlers {
			i := (k + n) % 2 // each side goes first every other time
			w := httptest.NewRecorder()
			start := time.Now()
			handlers[i].ServeHTTP(w, reqs[i])
			spent[i] += time.Since(start)
			if w.Code != http.StatusNoContent {
				b.Fatalf("request: status %d: %s", w.Code, w.Body.String())
			}
		}
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "off-ns/op")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "on-ns/op")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "on/off")
}
