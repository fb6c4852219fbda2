package sqlitestore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// TestSignIn checks that SignIn has the outcomes of ConsumeAssertion
// followed by Provision.
func TestSignIn(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, openDB(t, sqlitestore.DSN(tempPath(t))))
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	exp := now.Add(5 * time.Minute)

	p, err := s.SignIn(ctx, k.Issuer, "_a1", exp, k, userstore.Profile{Email: "ada@example.com", Groups: []string{"g"}}, now)
	require.NoError(t, err)
	require.True(t, p.Created())
	require.Equal(t, "ada@example.com", p.User.Profile.Email)

	// The same assertion again: replayed, nothing written.
	_, err = s.SignIn(ctx, k.Issuer, "_a1", exp, k, userstore.Profile{Email: "other@example.com"}, now.Add(time.Second))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	u, err := s.Lookup(ctx, k)
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", u.Profile.Email)

	// A returning sign-in updates the user.
	p, err = s.SignIn(ctx, k.Issuer, "_a2", exp, k, userstore.Profile{Email: "ada@example.org"}, now.Add(time.Minute))
	require.NoError(t, err)
	require.False(t, p.Created())
	require.Equal(t, "ada@example.com", p.Before.Profile.Email)
	require.Equal(t, "ada@example.org", p.User.Profile.Email)
	require.Equal(t, u.ID, p.User.ID)

	// A suspended user is returned unchanged and the assertion stays used.
	require.NoError(t, s.Suspend(ctx, k))
	p, err = s.SignIn(ctx, k.Issuer, "_a3", exp, k, userstore.Profile{Email: "changed@example.com"}, now.Add(2*time.Minute))
	require.NoError(t, err)
	require.Equal(t, userstore.Suspended, p.User.Status)
	require.Equal(t, "ada@example.org", p.User.Profile.Email)
	u, err = s.Lookup(ctx, k)
	require.NoError(t, err)
	require.Equal(t, "ada@example.org", u.Profile.Email)
	require.ErrorIs(t, s.ConsumeAssertion(ctx, k.Issuer, "_a3", exp, now.Add(2*time.Minute)), userstore.ErrReplayed)

	// A failure writes nothing, not even the record of the assertion.
	_, err = s.SignIn(ctx, k.Issuer, "_a4", exp, userstore.Key{Issuer: k.Issuer}, userstore.Profile{}, now)
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
				if _, err := s.SignIn(ctx, k.Issuer, fmt.Sprintf("_%d_%d", g, i), now.Add(time.Minute), k, userstore.Profile{}, now); err != nil {
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
