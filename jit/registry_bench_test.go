package jit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// newBenchStoredJIT returns a middleware whose only connections are stored
// ones: "target", trusting idp, and n-1 others, each trusting an IdP of its
// own (distinct entity IDs) and claiming a domain of its own. Users are
// kept in a SQLite file in dbPath.
func newBenchStoredJIT(b *testing.B, idp *jittest.IdP, dbPath string, n int) *jit.Middleware {
	b.Helper()
	st, _ := openSQLite(b, dbPath)
	conns := memstore.NewConnections()
	ctx := context.Background()
	md := string(idp.Metadata())
	put := func(name, metadata string, domain string) {
		_, err := conns.PutConnection(ctx, userstore.Connection{Name: name, IDPMetadata: []byte(metadata), Enabled: true,
			Domains: []userstore.Domain{{Name: domain, Verified: true}}}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
	}
	put("target", md, "target.example")
	for i := 1; i < n; i++ {
		other := strings.Replace(md, `entityID="`+benchIssuer+`"`, fmt.Sprintf(`entityID="https://idp-%d.bench.example/"`, i), 1)
		put(fmt.Sprintf("c%05d", i), other, fmt.Sprintf("customer-%d.example", i))
	}
	key, cert := spKeyPair()
	mw, err := jit.New(ctx, jit.Options{
		RootURL:         benchRoot,
		Key:             key,
		Certificate:     cert,
		Store:           st,
		SessionKeys:     [][]byte{make32()},
		Logger:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
		ConnectionStore: conns,
		ConfigureConnection: func(_ context.Context, _ userstore.Connection, c *jit.Connection) error {
			c.AllowIDPInitiated = true
			return nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mw.Close() })
	if got := len(mw.Connections()); got != n {
		b.Fatalf("%d connections served, want %d", got, n)
	}
	return mw
}

// BenchmarkConnections measures, paired in each iteration and in rotating
// order, a sign-in through a stored connection and an authenticated
// request, on a middleware with 1 stored connection and on one with
// 10,000, and an email's discovery (/saml/login?email=) on both. It
// reports the medians (one-*-ns, many-*-ns) and the ratios
// (signin-ratio, request-ratio, discover-ratio: 10,000 against 1).
func BenchmarkConnections(b *testing.B) {
	const many = 10000
	idp := benchIdP(b)
	one := newBenchStoredJIT(b, idp, filepath.Join(b.TempDir(), "one.db"), 1)
	lots := newBenchStoredJIT(b, idp, filepath.Join(b.TempDir(), "many.db"), many)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mws := []*jit.Middleware{one, lots}
	protected := []http.Handler{one.RequireUser(ok), lots.RequireUser(ok)}

	users := addUsers(idp, b.N+1, 5)
	mintTarget := func(user string) string {
		f, err := idp.Unsolicited(benchRoot+"/saml/target/metadata", benchRoot+"/saml/target/acs", user, "")
		if err != nil {
			b.Fatal(err)
		}
		return url.Values{"SAMLResponse": {f.SAMLResponse}}.Encode()
	}
	post := func(h http.Handler, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, benchRoot+"/saml/target/acs", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		signInOK(b, w)
		return w
	}
	// A signed-in browser per middleware, for the requests.
	first := mintTarget(users[b.N])
	reqs := make([]*http.Request, len(mws))
	for k, mw := range mws {
		w := post(mw, first)
		reqs[k] = httptest.NewRequest(http.MethodGet, benchRoot+"/app", nil)
		for _, c := range liveCookies(w.Result().Cookies()) {
			reqs[k].AddCookie(c)
		}
	}
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = mintTarget(users[i])
	}
	discover := httptest.NewRequest(http.MethodGet, benchRoot+"/saml/login?email=ada%40target.example", nil)

	// Steps: sign-in, request, discovery, each on one and on many.
	steps := []func(i int){}
	for k := range mws {
		steps = append(steps,
			func(i int) { post(mws[k], bodies[i]) },
			func(int) {
				w := httptest.NewRecorder()
				protected[k].ServeHTTP(w, reqs[k])
				if w.Code != http.StatusNoContent {
					b.Fatalf("request: status %d", w.Code)
				}
			},
			func(int) {
				w := httptest.NewRecorder()
				mws[k].ServeHTTP(w, discover)
				if w.Code != http.StatusFound {
					b.Fatalf("discovery: status %d", w.Code)
				}
			})
	}
	took := make([][]time.Duration, len(steps))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range steps {
			k := (i + j) % len(steps)
			start := time.Now()
			steps[k](i)
			took[k] = append(took[k], time.Since(start))
		}
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	for s, name := range []string{"signin", "request", "discover"} {
		oneNS, manyNS := med(took[s]), med(took[3+s])
		b.ReportMetric(oneNS, "one-"+name+"-ns")
		b.ReportMetric(manyNS, "many-"+name+"-ns")
		b.ReportMetric(manyNS/oneNS, name+"-ratio")
	}
}
