package jit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// timedStore is a SQLite store that adds the time spent in each of its
// calls to spent: what the store costs a sign-in, measured inside it. It
// has the optional interfaces of the store it wraps that the sign-in
// path uses, so the middleware takes the same paths as on the store
// itself.
type timedStore struct {
	s     *sqlitestore.Store
	spent time.Duration            // in all calls
	by    map[string]time.Duration // in the calls of SignIn, LookupEmail and CreateSession
}

// since adds the time since start to t.spent, and to t.by[name] when t.by
// is set and name is not empty.
func (t *timedStore) since(name string, start time.Time) {
	d := time.Since(start)
	t.spent += d
	if t.by != nil && name != "" {
		t.by[name] += d
	}
}

func (t *timedStore) Lookup(ctx context.Context, k userstore.Key) (userstore.User, error) {
	defer t.since("", time.Now())
	return t.s.Lookup(ctx, k)
}

func (t *timedStore) Provision(ctx context.Context, k userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	defer t.since("", time.Now())
	return t.s.Provision(ctx, k, p, now)
}

func (t *timedStore) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	defer t.since("", time.Now())
	return t.s.ConsumeAssertion(ctx, issuer, id, expires, now)
}

func (t *timedStore) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	defer t.since("", time.Now())
	return t.s.ReleaseAssertion(ctx, issuer, id)
}

func (t *timedStore) SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key userstore.Key, now time.Time, decide func(before *userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	defer t.since("SignIn", time.Now())
	return t.s.SignIn(ctx, issuer, assertionID, expires, key, now, decide)
}

func (t *timedStore) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	defer t.since("SignIn", time.Now())
	return t.s.SignInWith(ctx, r)
}

func (t *timedStore) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	defer t.since("LookupEmail", time.Now())
	return t.s.LookupEmail(ctx, email)
}

func (t *timedStore) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	defer t.since("", time.Now())
	return t.s.Link(ctx, id, key, p, now)
}

func (t *timedStore) CreateSession(ctx context.Context, s userstore.Session) error {
	defer t.since("CreateSession", time.Now())
	return t.s.CreateSession(ctx, s)
}

func (t *timedStore) LookupSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, error) {
	defer t.since("", time.Now())
	return t.s.LookupSession(ctx, id, now)
}

func (t *timedStore) EndSession(ctx context.Context, id string) error {
	defer t.since("", time.Now())
	return t.s.EndSession(ctx, id)
}

func (t *timedStore) EndSessions(ctx context.Context, key userstore.Key, sessionIndex string, now time.Time) (int, error) {
	defer t.since("", time.Now())
	return t.s.EndSessions(ctx, key, sessionIndex, now)
}

func (t *timedStore) EndSessionsByNameID(ctx context.Context, issuer, nameID, sessionIndex string, now time.Time) (int, error) {
	defer t.since("", time.Now())
	return t.s.EndSessionsByNameID(ctx, issuer, nameID, sessionIndex, now)
}

func (t *timedStore) ListSessions(ctx context.Context, key userstore.Key, now time.Time) ([]userstore.Session, error) {
	defer t.since("", time.Now())
	return t.s.ListSessions(ctx, key, now)
}

// BenchmarkSignInStoreShare measures the store's share of a sign-in on a
// real SQLite file: each iteration posts a distinct signed response to
// the ACS (sequentially, so the store's time is the sign-in's own) and
// divides the time spent inside the store's calls (replay record, user
// read and write in one transaction, the email lookup of a first
// sign-in, the session record) by the ACS's whole time. It reports the
// median share, the median of each time, and the median time of each
// call: SignIn (SignInWith on a store that has it: the one transaction of
// the sign-in, email read and session record included; on a plain
// SignInStore both transactions of a first sign-in), and LookupEmail and
// CreateSession where they run apart from it.
func BenchmarkSignInStoreShare(b *testing.B) {
	for _, groups := range []int{5, 150} {
		for _, kind := range []string{"first", "returning"} {
			b.Run(fmt.Sprintf("groups=%d/%s", groups, kind), func(b *testing.B) {
				idp := benchIdP(b)
				sqlite, _ := openSQLite(b, filepath.Join(b.TempDir(), "users.db"))
				st := &timedStore{s: sqlite}
				key, cert := spKeyPair()
				mw, err := jit.New(context.Background(), jit.Options{
					RootURL: benchRoot, Key: key, Certificate: cert, Store: st,
					SessionKeys: [][]byte{make32()},
					Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
					Connections: []jit.Connection{{IDPMetadata: idp.Metadata(), AllowIDPInitiated: true}},
				})
				if err != nil {
					b.Fatal(err)
				}
				users := addUsers(idp, b.N, groups)
				if kind == "returning" {
					for _, body := range mint(b, idp, users, b.N) {
						signInOK(b, postACS(mw, body))
					}
				}
				bodies := mint(b, idp, users, b.N)
				total := make([]time.Duration, 0, b.N)
				inStore := make([]time.Duration, 0, b.N)
				shares := make([]float64, 0, b.N)
				per := map[string][]time.Duration{}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					st.spent = 0
					st.by = map[string]time.Duration{}
					start := time.Now()
					signInOK(b, postACS(mw, bodies[i]))
					d := time.Since(start)
					total, inStore = append(total, d), append(inStore, st.spent)
					shares = append(shares, float64(st.spent)/float64(d))
					for _, k := range []string{"SignIn", "LookupEmail", "CreateSession"} {
						per[k] = append(per[k], st.by[k])
					}
				}
				b.StopTimer()
				slices.Sort(total)
				slices.Sort(inStore)
				slices.Sort(shares)
				b.ReportMetric(float64(total[len(total)/2].Nanoseconds()), "signin-ns")
				b.ReportMetric(float64(inStore[len(inStore)/2].Nanoseconds()), "store-ns")
				b.ReportMetric(100*shares[len(shares)/2], "store-%")
				for k, v := range per {
					slices.Sort(v)
					b.ReportMetric(float64(v[len(v)/2].Nanoseconds()), k+"-ns")
				}
			})
		}
	}
}
