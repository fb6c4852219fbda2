package jit_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// countingStore is a SQLite store that counts how sign-ins reach it: one
// SignIn or SignInWith call per transaction, separate ConsumeAssertion
// calls, and the email lookups and session records made apart from a
// transaction.
type countingStore struct {
	*sqlitestore.Store
	signIns, consumes, lookups, sessions atomic.Int32
}

func (c *countingStore) SignIn(ctx context.Context, issuer, id string, expires time.Time, k userstore.Key, now time.Time, decide func(*userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	c.signIns.Add(1)
	return c.Store.SignIn(ctx, issuer, id, expires, k, now, decide)
}

func (c *countingStore) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	c.signIns.Add(1)
	return c.Store.SignInWith(ctx, r)
}

func (c *countingStore) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	c.lookups.Add(1)
	return c.Store.LookupEmail(ctx, email)
}

func (c *countingStore) CreateSession(ctx context.Context, s userstore.Session) error {
	c.sessions.Add(1)
	return c.Store.CreateSession(ctx, s)
}

func (c *countingStore) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	c.consumes.Add(1)
	return c.Store.ConsumeAssertion(ctx, issuer, id, expires, now)
}

// countingCache is a replay cache of its own, apart from the store.
type countingCache struct {
	userstore.ReplayCache
	consumes atomic.Int32
}

func (c *countingCache) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	c.consumes.Add(1)
	return c.ReplayCache.ConsumeAssertion(ctx, issuer, id, expires, now)
}

// TestReplayOption: Options.Replay set to the store itself keeps the
// one-transaction sign-in, as leaving it nil does; another cache is used
// instead of the store's own record, step by step, and still refuses a
// replay.
func TestReplayOption(t *testing.T) {
	for _, tt := range []struct {
		name     string
		replay   func(st *countingStore) userstore.ReplayCache
		inSignIn bool
	}{
		{name: "Nil", replay: func(*countingStore) userstore.ReplayCache { return nil }, inSignIn: true},
		{name: "TheStore", replay: func(st *countingStore) userstore.ReplayCache { return st }, inSignIn: true},
		{name: "AnotherCache", replay: func(*countingStore) userstore.ReplayCache { return &countingCache{ReplayCache: memstore.New()} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sq, _ := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
			st := &countingStore{Store: sq}
			replay := tt.replay(st)
			h := newHarness(t, harnessConfig{store: st, configure: func(o *jit.Options) { o.Replay = replay }})
			h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
			for _, want := range []jit.EventKind{jit.EventCreated, jit.EventUpdated} {
				resp, body := h.signIn(h.client(), "", "p-ada")
				require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
				assert.Equal(t, want, h.lastEvent().Kind)
			}
			if tt.inSignIn {
				assert.Positive(t, st.signIns.Load(), "one transaction")
				assert.Zero(t, st.consumes.Load(), "no separate record")
			} else {
				assert.Zero(t, st.signIns.Load(), "the store's own record is not used")
				assert.Zero(t, st.consumes.Load())
				assert.EqualValues(t, 2, replay.(*countingCache).consumes.Load(), "recorded in the cache given")
			}

			c := h.client()
			f := h.respond(c, "", "p-ada")
			attacker := h.replayer(c, f)
			resp, body := h.post(c, f)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			resp, body = h.post(attacker, f)
			refusal(t, resp, body, http.StatusForbidden)
			assert.ErrorIs(t, h.lastRefusal(), jit.ErrReplayed)
		})
	}
}

// funcStore is a store whose values Go cannot compare.
type funcStore struct {
	*memstore.Store
	hook func()
}

// TestReplayOptionUncomparableStore: telling whether Replay is the store
// itself does not panic on a store value Go cannot compare.
func TestReplayOptionUncomparableStore(t *testing.T) {
	st := funcStore{Store: memstore.New(), hook: func() {}}
	key, cert := spKeyPair()
	require.NotPanics(t, func() {
		_, err := jit.New(context.Background(), jit.Options{
			RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: st, Replay: st,
			SessionKeys: [][]byte{make32()}, Connections: []jit.Connection{{IDPMetadata: jittest.New(t).Metadata()}},
		})
		require.NoError(t, err)
	})
}

// TestSessionStoreReplacesTheSessionOnly: with a server-side SessionStore
// the signed-in session is kept there (its cookie carries only an ID),
// RequireUser reads it and logout ends it; the sign-in itself still rides
// on the request-tracking cookie sealed with SessionKeys.
func TestSessionStoreReplacesTheSessionOnly(t *testing.T) {
	dir := t.TempDir()
	store := sessions.NewFilesystemStore(dir, bytes.Repeat([]byte{3}, 32))
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) { o.SessionStore = store }})
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1, "the session is kept in the SessionStore")

	resp, u := h.me(c)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "p-ada", u.Key.Subject)

	out := logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
	require.Equal(t, http.StatusSeeOther, out.StatusCode)
	resp, _ = h.me(c)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "logout ended the session")
}

// TestSessionStoreStillNeedsSessionKeys: New says why SessionKeys are
// required when a SessionStore is set.
func TestSessionStoreStillNeedsSessionKeys(t *testing.T) {
	key, cert := spKeyPair()
	_, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: memstore.New(),
		SessionStore: sessions.NewCookieStore(make32()),
		Connections:  []jit.Connection{{IDPMetadata: jittest.New(t).Metadata()}},
	})
	require.ErrorContains(t, err, "SessionKeys is required even with a SessionStore")
}

// noEmailStore is a SignInStore that cannot look users up by email, so a
// first sign-in's decision needs nothing from outside the transaction.
type noEmailStore struct {
	testStore
	userstore.SignInStore
}

// signInOnlyStore is a SignInStore and Linker that is no SignInWithStore:
// the users holding an email are looked up apart from the transaction.
type signInOnlyStore struct {
	testStore
	userstore.SignInStore
	userstore.Linker
}

// TestSignInTransactions: a returning sign-in is one transaction; so is a
// first sign-in on a SignInWithStore, which reads the users holding the
// email and records the session in it, and a first sign-in whose decision
// needs nothing from outside. On a store that is no SignInWithStore, one
// that needs the users holding its email ends the first transaction
// without writing, looks them up and runs a second.
func TestSignInTransactions(t *testing.T) {
	for _, tt := range []struct {
		name           string
		wrap           func(cs *countingStore) testStore
		first, lookups int32
		sessionsApart  int32 // CreateSession calls of the two sign-ins
	}{
		{name: "SignInWith", wrap: func(cs *countingStore) testStore { return cs }, first: 1},
		{name: "EmailLookupNeeded", wrap: func(cs *countingStore) testStore {
			return signInOnlyStore{testStore: cs, SignInStore: cs, Linker: cs}
		}, first: 2, lookups: 1, sessionsApart: 2},
		{name: "NothingNeededFromOutside", wrap: func(cs *countingStore) testStore {
			return noEmailStore{testStore: cs, SignInStore: cs}
		}, first: 1, sessionsApart: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sq, _ := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
			cs := &countingStore{Store: sq}
			h := newHarness(t, harnessConfig{store: tt.wrap(cs)})
			h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
			c := h.client()
			resp, body := h.signIn(c, "", "p-ada")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			require.Equal(t, jit.EventCreated, h.lastEvent().Kind)
			assert.Equal(t, tt.first, cs.signIns.Load(), "transactions of the first sign-in")
			assert.Equal(t, tt.lookups, cs.lookups.Load(), "email lookups apart from the transaction")
			resp, u := h.me(c)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the session recorded is live")
			assert.Equal(t, "p-ada", u.Key.Subject)

			resp, body = h.signIn(h.client(), "", "p-ada")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			require.Equal(t, jit.EventUpdated, h.lastEvent().Kind)
			assert.Equal(t, tt.first+1, cs.signIns.Load(), "a returning sign-in is one transaction")
			assert.Equal(t, tt.sessionsApart, cs.sessions.Load(), "sessions recorded apart from the transaction")
			assert.Zero(t, cs.consumes.Load())
		})
	}
}

// TestFirstSignInRefusalReadsAlike: a first sign-in the policy refuses on
// a SignInStore, with nothing to gather outside the transaction, is
// refused with the policy's reason as it stands, not wrapped in the
// store's error, and writes nothing.
func TestFirstSignInRefusalReadsAlike(t *testing.T) {
	sq, _ := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
	cs := &countingStore{Store: sq}
	h := newHarness(t, harnessConfig{store: noEmailStore{testStore: cs, SignInStore: cs}, configure: func(o *jit.Options) {
		o.Connections[0].Policy.DisableCreate = true
	}})
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	resp, body := h.signIn(h.client(), "", "p-ada")
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrUnknownUser)
	assert.Equal(t, jit.ErrUnknownUser.Error(), h.lastRefusal().Error())
	assert.Empty(t, h.users())
}
