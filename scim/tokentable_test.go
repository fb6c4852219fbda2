package scim_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// instance is one application instance: its own pool on the shared
// database, its token table and its SCIM endpoint on real HTTP.
type instance struct {
	tokens *scim.TokenTable
	url    string
}

// sharedDatabase opens n instances over one database: a SQLite file, or
// a PostgreSQL schema.
func sharedDatabase(t *testing.T, dialect string, n int, now func() time.Time) []instance {
	t.Helper()
	var driver, dsn string
	switch dialect {
	case "sqlite":
		driver, dsn = "sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "shared.db"))
	case "postgres":
		driver, dsn = "pgx", pgDSN(t)
	}
	dbs := make([]*sql.DB, n)
	for i := range dbs {
		db, err := sql.Open(driver, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		dbs[i] = db
	}
	// The instances start at once: creating the table races.
	tables := make([]*scim.TokenTable, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range dbs {
		wg.Go(func() {
			tables[i], errs[i] = scim.OpenTokenTable(t.Context(), dbs[i], scim.TokenTableOptions{Now: now})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	out := make([]instance, n)
	for i, db := range dbs {
		var store scim.Store
		var err error
		if dialect == "sqlite" {
			store, err = sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
		} else {
			store, err = pgstore.Open(t.Context(), db, pgstore.Options{})
		}
		require.NoError(t, err)
		h, err := scim.New(scim.Options{Store: store, Issuer: oktaIssuer, Connection: "okta",
			Subject: scim.PersistentNameID(), Tokens: tables[i].Source("okta"), Now: now})
		require.NoError(t, err)
		srv := httptest.NewServer(http.StripPrefix("/scim/v2", h))
		t.Cleanup(srv.Close)
		out[i] = instance{tokens: tables[i], url: srv.URL + "/scim/v2"}
	}
	return out
}

// status is the status of GET /Users with token at in.
func (in instance) status(t *testing.T, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, in.url+"/Users", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokenTableSharedByInstances: two instances sharing a database see
// a token added, rotated and revoked through either at once, and the old
// token's overlap end at the same moment on both.
func TestTokenTableSharedByInstances(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC).UnixMilli())
			now := func() time.Time { return time.UnixMilli(clock.Load()) }
			ins := sharedDatabase(t, dialect, 2, now)
			a, b := ins[0], ins[1]
			ctx := t.Context()

			first, hash, err := scim.NewToken()
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, b.status(t, first), "an empty table accepts nothing")
			require.NoError(t, a.tokens.Add(ctx, "okta", hash))
			require.NoError(t, a.tokens.Add(ctx, "okta", hash), "adding again is harmless")
			assert.Equal(t, http.StatusOK, b.status(t, first), "the other instance sees the token at once")

			// A rotation on b: both tokens valid on both instances
			// during the overlap, the new one alone after.
			second, err := b.tokens.Rotate(ctx, "okta", time.Hour)
			require.NoError(t, err)
			for _, in := range ins {
				assert.Equal(t, http.StatusOK, in.status(t, first), "the old token holds during the overlap")
				assert.Equal(t, http.StatusOK, in.status(t, second), "the new token holds at once")
			}
			clock.Add(time.Hour.Milliseconds())
			for _, in := range ins {
				assert.Equal(t, http.StatusUnauthorized, in.status(t, first), "the old token ends with the overlap")
				assert.Equal(t, http.StatusOK, in.status(t, second))
			}

			// A rotation with no overlap ends the old token at once; a
			// revocation ends a token at once.
			third, err := a.tokens.Rotate(ctx, "okta", 0)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, b.status(t, second))
			assert.Equal(t, http.StatusOK, b.status(t, third))
			require.NoError(t, b.tokens.Revoke(ctx, "okta", scim.HashToken(third)))
			assert.Equal(t, http.StatusUnauthorized, a.status(t, third))
			require.NoError(t, b.tokens.Revoke(ctx, "okta", scim.HashToken(third)), "revoking again is harmless")

			// Another connection's tokens open nothing here, and the
			// table keeps hashes, never tokens.
			other, err := a.tokens.Rotate(ctx, "entra", 0)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, b.status(t, other))
			hashes, err := a.tokens.Hashes(ctx, "entra")
			require.NoError(t, err)
			assert.Equal(t, []scim.TokenHash{scim.HashToken(other)}, hashes)

			// A rotation's overlap never lengthens a token that was to
			// end sooner.
			fourth, err := a.tokens.Rotate(ctx, "okta", 0)
			require.NoError(t, err)
			fifth, err := a.tokens.Rotate(ctx, "okta", time.Minute) // fourth ends in a minute
			require.NoError(t, err)
			sixth, err := a.tokens.Rotate(ctx, "okta", time.Hour) // fifth in an hour; fourth still in a minute
			require.NoError(t, err)
			clock.Add(2 * time.Minute.Milliseconds())
			assert.Equal(t, http.StatusUnauthorized, b.status(t, fourth))
			assert.Equal(t, http.StatusOK, b.status(t, fifth))
			assert.Equal(t, http.StatusOK, b.status(t, sixth))
		})
	}
}

// TestTokenTableFailsClosed: a table the handler cannot read refuses the
// request.
func TestTokenTableFailsClosed(t *testing.T) {
	ins := sharedDatabase(t, "sqlite", 1, time.Now)
	token, err := ins[0].tokens.Rotate(t.Context(), "okta", 0)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ins[0].status(t, token))
	_, err = scim.OpenTokenTable(t.Context(), nil, scim.TokenTableOptions{})
	require.Error(t, err)

	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "t.db")))
	require.NoError(t, err)
	tt, err := scim.OpenTokenTable(t.Context(), db, scim.TokenTableOptions{})
	require.NoError(t, err)
	token, err = tt.Rotate(t.Context(), "okta", 0)
	require.NoError(t, err)
	h, err := scim.New(scim.Options{Store: sqliteStore(t), Issuer: oktaIssuer, Subject: scim.PersistentNameID(), Tokens: tt.Source("okta")})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	req := httptest.NewRequest(http.MethodGet, "/Users", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a token table that cannot be read refuses")
}

// A token table in the application's database: every instance's SCIM
// endpoint reads it at each request, so a rotation made on one instance
// holds on all of them at once.
func ExampleTokenTable() {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file::memory:?cache=shared") // the application's database
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	tokens, err := scim.OpenTokenTable(ctx, db, scim.TokenTableOptions{})
	if err != nil {
		log.Fatal(err)
	}
	first, err := tokens.Rotate(ctx, "acme", 0) // give it to acme's IdP
	if err != nil {
		log.Fatal(err)
	}
	// Later: a new token; the first one stays valid for a day, while the
	// IdP is given the new one.
	second, err := tokens.Rotate(ctx, "acme", 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	hashes, err := tokens.Source("acme").TokenHashes(ctx) // what scim.Options.Tokens asks
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(hashes), first != second)
	// Output:
	// 2 true
}
