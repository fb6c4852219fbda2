package sqlitestore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// profile returns a decide function for SignIn that always signs in with p.
func profile(p userstore.Profile) func(*userstore.User) (userstore.Profile, error) {
	return func(*userstore.User) (userstore.Profile, error) { return p, nil }
}

// TestSignIn checks that SignIn has the outcomes of ConsumeAssertion
// followed by Provision.
func TestSignIn(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, openDB(t, sqlitestore.DSN(tempPath(t))))
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	exp := now.Add(5 * time.Minute)

	p, err := s.SignIn(ctx, k.Issuer, "_a1", exp, k, now, profile(userstore.Profile{Email: "ada@example.com", Groups: []string{"g"}}))
	require.NoError(t, err)
	require.True(t, p.Created())
	require.Equal(t, "ada@example.com", p.User.Profile.Email)

	// The same assertion again: replayed, nothing written.
	_, err = s.SignIn(ctx, k.Issuer, "_a1", exp, k, now.Add(time.Second), profile(userstore.Profile{Email: "other@example.com"}))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	u, err := s.Lookup(ctx, k)
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", u.Profile.Email)

	// A returning sign-in updates the user.
	p, err = s.SignIn(ctx, k.Issuer, "_a2", exp, k, now.Add(time.Minute), profile(userstore.Profile{Email: "ada@example.org"}))
	require.NoError(t, err)
	require.False(t, p.Created())
	require.Equal(t, "ada@example.com", p.Before.Profile.Email)
	require.Equal(t, "ada@example.org", p.User.Profile.Email)
	require.Equal(t, u.ID, p.User.ID)

	// A suspended user is returned unchanged and the assertion stays used.
	require.NoError(t, s.Suspend(ctx, k))
	p, err = s.SignIn(ctx, k.Issuer, "_a3", exp, k, now.Add(2*time.Minute), profile(userstore.Profile{Email: "changed@example.com"}))
	require.NoError(t, err)
	require.Equal(t, userstore.Suspended, p.User.Status)
	require.Equal(t, "ada@example.org", p.User.Profile.Email)
	u, err = s.Lookup(ctx, k)
	require.NoError(t, err)
	require.Equal(t, "ada@example.org", u.Profile.Email)
	require.ErrorIs(t, s.ConsumeAssertion(ctx, k.Issuer, "_a3", exp, now.Add(2*time.Minute)), userstore.ErrReplayed)

	// A failure writes nothing, not even the record of the assertion.
	_, err = s.SignIn(ctx, k.Issuer, "_a4", exp, userstore.Key{Issuer: k.Issuer}, now, profile(userstore.Profile{}))
	require.ErrorIs(t, err, userstore.ErrInvalidKey)
	require.NoError(t, s.ConsumeAssertion(ctx, k.Issuer, "_a4", exp, now))
}

// TestConcurrentWritesDoNotReportBusy signs in many users at once through
// one store: its writes queue in the process instead of competing in
// SQLite's busy handler, so none fails with "database is locked".
func TestConcurrentWritesDoNotReportBusy(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, openDB(t, sqlitestore.DSN(tempPath(t))))
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 64*4)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				k := userstore.Key{Issuer: "https://idp.example/", Subject: fmt.Sprintf("u-%d-%d", g, i)}
				if _, err := s.SignIn(ctx, k.Issuer, fmt.Sprintf("_%d_%d", g, i), now.Add(time.Minute), k, now, profile(userstore.Profile{})); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSignInDecidePanics checks that a panic in decide rolls the
// transaction back: nothing is written and the store's only connection is
// left without a transaction.
func TestSignInDecidePanics(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	db := openDB(t, sqlitestore.DSN(path))
	db.SetMaxOpenConns(1)
	s := openStore(t, db)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

	require.PanicsWithValue(t, "decide failed", func() {
		_, _ = s.SignIn(ctx, k.Issuer, "_p1", now.Add(time.Minute), k, now,
			func(*userstore.User) (userstore.Profile, error) { panic("decide failed") })
	})

	// Another connection can write: no transaction was left open.
	other := openDB(t, path)
	_, err := other.ExecContext(ctx, "DELETE FROM replay WHERE issuer = 'nobody'")
	require.NoError(t, err, "the panic left a transaction open")
	_, err = s.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	p, err := s.SignIn(ctx, k.Issuer, "_p1", now.Add(time.Minute), k, now, profile(userstore.Profile{}))
	require.NoError(t, err, "the panicking SignIn recorded its assertion")
	require.True(t, p.Created())
}

// BenchmarkSignInReturning is the hot path of every returning sign-in: one
// transaction that records the assertion, reads the user, calls decide and
// writes the profile.
func BenchmarkSignInReturning(b *testing.B) {
	s, k, p, now := returningUser(b)
	ctx := b.Context()
	decide := profile(p)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		t := now.Add(time.Duration(i) * time.Millisecond)
		if _, err := s.SignIn(ctx, k.Issuer, fmt.Sprint("_b", i), t.Add(5*time.Minute), k, t, decide); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSignInDecideErrorKeepsTheConnection: a decide error rolls the
// transaction back and returns that error alone, and the connection,
// whose rollback succeeded, goes back to the pool to be used again (a
// connection is discarded only when its rollback fails).
func TestSignInDecideErrorKeepsTheConnection(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, sqlitestore.DSN(tempPath(t)))
	db.SetMaxOpenConns(1)
	s := openStore(t, db)
	// A temporary table lives as long as its connection.
	_, err := db.ExecContext(ctx, "CREATE TEMP TABLE connection_marker (x)")
	require.NoError(t, err)

	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	refused := errors.New("refused by policy")
	_, err = s.SignIn(ctx, k.Issuer, "_d1", now.Add(time.Minute), k, now,
		func(*userstore.User) (userstore.Profile, error) { return userstore.Profile{}, refused })
	require.ErrorIs(t, err, refused)
	require.NotContains(t, err.Error(), "rollback", "a rollback that succeeded is not reported")
	_, err = s.SignIn(ctx, k.Issuer, "_d2", now.Add(time.Minute), k, now, profile(userstore.Profile{}))
	require.NoError(t, err)
	_, err = s.SignIn(ctx, k.Issuer, "_d2", now.Add(time.Minute), k, now, profile(userstore.Profile{}))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	require.NotContains(t, err.Error(), "rollback", "a rollback that succeeded is not reported")

	_, err = db.ExecContext(ctx, "SELECT count(*) FROM temp.connection_marker")
	require.NoError(t, err, "the connection was discarded after a successful rollback")
}
